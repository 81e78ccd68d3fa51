"""`POST /runs/{run_id}/resume`: let a held run go on (`durable.services.resume`).

    POST /runs/{run_id}/resume    200 the run (its hold cleared, or resumed and due);
                                  404 unknown run; 409 run_not_held; 400 malformed id

The caller (`durable.api.caller`) is recorded in the run's audit entry.
"""

from __future__ import annotations

from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from durable.api.caller import caller_of
from durable.api.models import RunBody
from durable.api.openapi import RunId, route_responses
from durable.client import Client

_RESPONSES = route_responses(
    200,
    RunBody,
    "the run, resumed: the next worker replays it with its code",
    {
        400: "a malformed run id",
        404: "no such run",
        409: "run_not_held: the run is not held (the message says what it is doing)",
    },
)


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
