"""`GET /runs/{run_id}/logs`: what a run logged, page by page, and newer lines on demand.

    GET /runs/{run_id}/logs?cursor=&limit=   200 {"run_id", "logs": [...], "next_cursor", "more"}
                                             400 a malformed cursor or limit; 404 no such run
                                             503 CloudWatch Logs failed (throttled) past
                                                 botocore's retries

`next_cursor` is always there: passed back, it returns only the lines not returned yet (a
follower polls with it; `durable logs --follow` and the dashboard's run page do). An empty
`cursor` means the first page. The lines come from the run log source of the client
(`durable.runlogs`: CloudWatch Logs on AWS and in `durable dev`).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, Field

from durable.api.openapi import RunId, route_responses
from durable.client import Client
from durable.runlogs import DEFAULT_LIMIT, MAX_LIMIT, LogLine, LogPage
from durable.runlogs.base import MAX_CURSOR_CHARS

# As `durable.api.app`'s: longer ids name no run.


class LogLineBody(BaseModel):
    """One line a run logged."""

    at: str = Field(description="when it was logged (ISO-8601, UTC)")
    level: str = Field(description="INFO, WARNING, ERROR, ...")
    message: str
    step: str | None = Field(description="the step it was logged in, if any")
    attempt: int | None = Field(description="the run's attempt")
    logger: str = Field(description='"durable" for ctx.logger, else the logging logger\'s name')
    data: dict[str, Any] | None = Field(description="the record's own extra keys")

    @classmethod
    def of(cls, line: LogLine) -> LogLineBody:
        return cls.model_validate(line.to_dict())


class RunLogsResponse(BaseModel):
    """Body of `GET /runs/{run_id}/logs`."""

    run_id: str
    logs: list[LogLineBody]
    next_cursor: str = Field(description="pass it back to get only newer lines")
    more: bool = Field(
        description="the read stopped before the end of what is there: ask again at once "
        "(fewer lines than `limit` do not mean the end)"
    )

    @classmethod
    def of(cls, page: LogPage) -> RunLogsResponse:
        return cls(
            run_id=page.run_id,
            logs=[LogLineBody.of(line) for line in page.lines],
            next_cursor=page.next_cursor,
            more=page.more,
        )


_RESPONSES = route_responses(
    200,
    RunLogsResponse,
    "the run's lines",
    {
        400: "a cursor that is not a next_cursor, or a limit outside 1..1000",
        404: "no such run",
        503: "CloudWatch Logs failed (throttled) past the retries; try again",
    },
)


def register_log_routes(app: APIGatewayHttpResolver, client: Client) -> None:
    """Add `GET /runs/{run_id}/logs` to `app`, reading through `client`."""

    @app.get(
        "/runs/<run_id>/logs",
        summary="What a run logged, oldest first",
        description="Lines of `ctx.logger` and of the task's standard logging. Pass "
        "`next_cursor` back to get only the lines logged since (to follow a run).",
        responses=_RESPONSES,
        tags=["runs"],
    )
    def get_logs(
        run_id: RunId,
        cursor: Annotated[
            str | None,
            Query(max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the last page"),
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description="at most this many lines")
        ] = DEFAULT_LIMIT,
    ) -> RunLogsResponse:
        page = client.logs(unquote(run_id), cursor or None, limit)
        return RunLogsResponse.of(page)
