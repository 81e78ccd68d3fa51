"""`POST /runs/{run_id}/resume`: let a held run go on (`durable.services.resume`).

    POST /runs/{run_id}/resume    200 the run (its hold cleared, or resumed and due);
                                  404 unknown run; 409 run_not_held; 400 malformed id

The caller (`durable.api.caller`) is recorded in the run's audit entry.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from durable.api.caller import caller_of
from durable.api.models import ErrorResponse, RunBody
from durable.client import Client

# As `durable.api.app.RunId`: a longer id names no run.
RunId = Annotated[str, Path(max_length=512, description="the run's id")]

_JSON = content_types.APPLICATION_JSON
_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {
        "description": "the run, resumed: the next worker replays it with its code",
        "content": {_JSON: {"model": RunBody}},
    },
    400: {"description": "a malformed run id", "content": {_JSON: {"model": ErrorResponse}}},
    404: {"description": "no such run", "content": {_JSON: {"model": ErrorResponse}}},
    409: {
        "description": "run_not_held: the run is not held (the message says what it is doing)",
        "content": {_JSON: {"model": ErrorResponse}},
    },
}


def register_resume_routes(app: APIGatewayHttpResolver, client: Client) -> None:
    """Add `POST /runs/{run_id}/resume` to `app`, acting through `client`."""

    @app.post(
        "/runs/<run_id>/resume",
        summary="Resume a held run",
        description="A run held for a code fix (WAITING `fix:nondeterminism` or "
        "`fix:unknown-task`) is replayed by the next worker whatever its code; a run held "
        "for a code version nobody runs (`code-version:V`) is re-pinned to this API's code "
        "version and replayed (held again, visibly, if it diverges). Audited in the run's "
        "history with the caller. Safe to repeat.",
        responses=_RESPONSES,
        tags=["runs"],
    )
    def resume(run_id: RunId) -> RunBody:
        return RunBody.of(client.resume(unquote(run_id), by=caller_of(app)))
