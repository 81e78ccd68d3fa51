"""The repair routes (`durable.services.repair`), each audited with the request's caller
(`durable.api.caller`):

    POST /runs/{run_id}/retry    200 the run, QUEUED again from its failure point
    POST /runs/{run_id}/rerun    202 the new run (`origin` names the original)
    POST /runs/{run_id}/fork     202 the new run, {"from_step": N | "step name"}

404 for an unknown run (or a task today's code does not have); 409 when the action does not
apply (`run_not_ended`, `run_completed`, `run_expiring`, `parent_waits`) or an idempotency
key started another run; 422 for a payload today's task refuses or a fork's cut inside an
operation that has not ended (`invalid_fork_point`, the valid cuts near it in `details`).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from durable.api.caller import caller_of
from durable.api.models import RunBody
from durable.api.openapi import RunId, route_responses
from durable.client import Client

_KEY = "a call made again with the same key (after an error) answers the run the first made"


class RerunRequest(BaseModel):
    """Body of `POST /runs/{run_id}/rerun` (optional)."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: StrictStr | None = Field(
        default=None, min_length=1, max_length=256, description=_KEY
    )


class ForkRequest(RerunRequest):
    """Body of `POST /runs/{run_id}/fork`."""

    from_step: StrictInt | StrictStr = Field(
        description="log entries to copy (0 to the log's length), or the name of the step "
        "before whose first entry the fork starts"
    )


_ERRORS = {
    400: "an invalid request (path or body fields)",
    404: "no such run, or today's code has no task of that id",
    409: "the action does not apply to the run as it is (`run_not_ended`, `run_completed`, "
    "`run_expiring`, `parent_waits`), or the idempotency key started another run",
    422: "the payload no longer fits today's task, or a fork's cut falls inside an operation "
    "(`invalid_fork_point`: `details[0].valid_from_steps` lists the cuts near it)",
}


def _responses(status: int, description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI entries of a repair route: the run it answers, the errors it can answer."""
    return route_responses(
        status, RunBody, description, {error: _ERRORS[error] for error in errors}
    )


def register_repair_routes(app: APIGatewayHttpResolver, client: Client) -> None:
    """Add the retry, rerun and fork routes to `app`, served by `client`."""

    @app.post(
        "/runs/<run_id>/retry",
        summary="Retry an ended run from its failure point",
        description="A FAILED, TIMED_OUT or CANCELLED run goes on under the same id, its log "
        "kept: completed steps are not run again, the attempt budget and the task timeout "
        "start afresh. Compensations its end ran are not undone. Recorded in its history.",
        responses=_responses(200, "the run, queued again", 400, 404, 409),
        tags=["repair"],
    )
    def retry(run_id: RunId) -> RunBody:
        return RunBody.of(client.retry(unquote(run_id), by=caller_of(app)))

    @app.post(
        "/runs/<run_id>/rerun",
        status_code=202,
        summary="Run a run's task again with its payload, as a new run",
        description="Any status. The new run's `origin` names the original; both histories "
        "record the rerun.",
        responses=_responses(202, "the new run", 400, 404, 409, 422),
        tags=["repair"],
    )
    def rerun(run_id: RunId, body: Annotated[RerunRequest | None, Body()] = None) -> RunBody:
        request = body or RerunRequest()
        return RunBody.of(
            client.rerun(
                unquote(run_id), by=caller_of(app), idempotency_key=request.idempotency_key
            )
        )

    @app.post(
        "/runs/<run_id>/fork",
        status_code=202,
        summary="A new run that copies a run's first N log entries and runs the rest",
        description="The rest runs on today's code. A cut inside an operation that has not "
        "ended (a step without its end, a child or callback waited for, a fan-out) is "
        "refused with 422 and the valid cuts near it.",
        responses=_responses(202, "the new run", 400, 404, 409, 422),
        tags=["repair"],
    )
    def fork(run_id: RunId, body: Annotated[ForkRequest, Body()]) -> RunBody:
        return RunBody.of(
            client.fork(
                unquote(run_id),
                body.from_step,
                by=caller_of(app),
                idempotency_key=body.idempotency_key,
            )
        )
