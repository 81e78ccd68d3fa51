"""`GET /runs/{run_id}/timeline`: the run page's timeline (`durable.timeline` builds it).

    GET /runs/{run_id}/timeline    200 the timeline; 404 unknown run; 400 malformed id
    GET /runs/{run_id}             a browser's request (Accept prefers text/html) gets the
                                   dashboard page, which shows the run (`html_for_browsers`)

The response models below are what the OpenAPI document describes. Unlike the run and
history bodies, a timeline's errors carry their tracebacks: the run page shows them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from pydantic import BaseModel, ConfigDict, Field

from durable.api.openapi import RunId
from durable.client import Client
from durable.records import RunStatus

# As `durable.api.app.RunId` (which imports this module): a longer id names no run.


_INPUT = (
    'arguments, {"args": [...], "kwargs": {...}} (up to 4 KB of JSON, else {"omitted": '
    '"<why>"}); null for a step without arguments, an attempt still running or lost with '
    "its invocation, and logs written before inputs were kept"
)


class TimelineError(BaseModel):
    """An error as the run page shows it: type, message and traceback."""

    type: str
    message: str
    traceback: str | None = None


class TimelineWaiting(BaseModel):
    """What a sleeping, waiting or retrying run waits for, and until when."""

    model_config = ConfigDict(populate_by_name=True)

    for_: str = Field(alias="for", description="event:<name>, sleep:<name>, retry, child:<id>, ...")
    until: datetime | None
    description: str


class TaskAttemptBand(BaseModel):
    """One attempt of the task: a band on the time axis."""

    task_attempt: int
    started_at: datetime | None
    ended_at: datetime | None
    outcome: Literal["failed", "completed", "running", "waiting", "cancelled", "timed_out"]
    error: TimelineError | None
    retry_at: datetime | None


class StepAttemptBar(BaseModel):
    """One attempt of a step (`started_at` is absent in logs written before it was kept)."""

    attempt: int
    task_attempt: int
    started_at: datetime | None
    ended_at: datetime | None
    outcome: Literal["failed", "completed", "running"]
    error: TimelineError | None
    retry_at: datetime | None
    input: Any = Field(default=None, description=_INPUT)


class BackoffGap(BaseModel):
    """The wait between a failed step attempt and the next one, labelled with its backoff."""

    model_config = ConfigDict(populate_by_name=True)

    after_attempt: int
    from_: datetime = Field(alias="from")
    until: datetime
    retry_at: datetime
    seconds: float = Field(description="the backoff the retry policy chose")
    label: str


class BatchProgress(BaseModel):
    """A fan-out's item progress; `child_run_ids` lists its first children started."""

    total: int
    completed: int
    failed: int
    child_run_ids: list[str]


class TimelineOperation(BaseModel):
    """One durable call: a bar (or an instant) on the time axis."""

    id: str = Field(description='"<task_attempt>.<position>": stable, for selection')
    position: int
    task_attempt: int
    kind: Literal[
        "step",
        "sleep",
        "wait_for_event",
        "callback",
        "invoke",
        "trigger",
        "batch",
        "value",
        "patch",
        "compensation",
    ]
    name: str
    status: Literal["completed", "failed", "running", "waiting", "retrying"]
    started_at: datetime | None
    ended_at: datetime | None
    ended_by: Literal["timer", "event", "callback", "timeout", "error", "completed"] | None
    wake_at: datetime | None
    value: Any
    error: TimelineError | None
    child_run_id: str | None
    batch: BatchProgress | None
    attempts: list[StepAttemptBar]
    gaps: list[BackoffGap]
    seqs: list[int] = Field(description="the checkpoint seqs this operation is made of")
    token: str | None = Field(default=None, description="a callback's token, redacted")
    input: Any = Field(default=None, description="a step's: its latest attempt's " + _INPUT)


class TimelineAction(BaseModel):
    """Someone acted on the run (an audit entry): a marker on the time axis."""

    seq: int = Field(description="the audit entry's slot in the log")
    at: datetime
    name: str = Field(description="retry, rerun, fork, resume, cancel...")
    by: str | None = Field(description="the caller: iam:<arn>, jwt:<sub>, unverified:<...>")
    task_attempt: int = Field(description="the task attempt the run was at")
    details: dict[str, Any] = Field(
        description='the action\'s own details: a retry\'s {"attempt", "previous", '
        '"compensated"?}, a rerun\'s or fork\'s {"run_id", "from_step"?}'
    )


class TimelineResponse(BaseModel):
    """A run's timeline: task attempts as bands, one operation per durable call."""

    run_id: str
    task_id: str
    status: RunStatus
    now: datetime = Field(description="the server's time when this was built")
    live: bool = Field(description="false once the run has ended")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    waiting: TimelineWaiting | None
    attempts: list[TaskAttemptBand]
    operations: list[TimelineOperation]
    actions: list[TimelineAction] = Field(
        default_factory=list, description="audit entries, in log order"
    )


def register_timeline_routes(app: APIGatewayHttpResolver, client: Client) -> None:
    """Add `GET /runs/{run_id}/timeline` to `app`, served by `client`."""
    from durable.api.app import _responses  # the app imports this module: import when called

    @app.get(
        "/runs/<run_id>/timeline",
        summary="A run's timeline: attempts, operations, backoff gaps, what it waits for",
        responses=_responses(200, TimelineResponse, "the timeline", 400, 404),
        tags=["runs"],
    )
    def get_timeline(run_id: RunId) -> TimelineResponse:
        return TimelineResponse.model_validate(client.timeline(unquote(run_id)))


_HTML_TYPES = ("text/html", "application/xhtml+xml")


def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks HTML above JSON (a browser navigating does; `fetch`,
    curl and API clients, sending `*/*` or `application/json`, do not)."""
    html = json = 0.0
    for part in (accept or "").split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media in _HTML_TYPES:
            html = max(html, quality)
        elif media in ("application/json", "application/*", "*/*"):
            json = max(json, quality)
    return html > json


def html_for_browsers(page: Callable[[], str]) -> Callable[..., Response[str]]:
    """A route middleware: a request that prefers HTML gets `page()` (the dashboard, which
    reads the run's id from its URL); any other goes on to the route's JSON."""

    def middleware(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
        if prefers_html(app.current_event.headers.get("accept")):
            return Response(
                status_code=200,
                content_type="text/html; charset=utf-8",
                body=page(),
                headers={"Vary": "Accept"},
            )
        response: Response[str] = next_middleware(app)
        response.headers["Vary"] = "Accept"
        return response

    return middleware
