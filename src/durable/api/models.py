"""The HTTP API's request and response bodies: pydantic models at the edge.

Request models forbid unknown fields and take JSON types strictly (`"5"` is not an int), so
a typo such as `"payloads"` is refused with 400 instead of being silently ignored. Response
models are built from the client's views (`RunInfoView`, `HistoryEntry`) and are what the
OpenAPI document describes; instants are ISO-8601 UTC strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from durable.client import HistoryEntry, RunInfoView
from durable.flow import CONCURRENCY_KEY_PATTERN, MAX_PRIORITY, MAX_TTL
from durable.records import CheckpointKind, ErrorInfo, RunStatus
from durable.serialization import JsonData
from durable.services.labels import MAX_METADATA_KEYS, MAX_TAGS, TAG_PATTERN
from durable.views import origin_of

# A delayed start may be years away, but no further than a datetime can represent.
MAX_DELAY_SECONDS = 10 * 365 * 24 * 3600
MAX_IDEMPOTENCY_TTL_SECONDS = 10 * 365 * 24 * 3600


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriggerRequest(_Request):
    """Body of `POST /tasks/{task_id}/runs`."""

    payload: Any = Field(default=None, description="the task's input; validated by the task")
    idempotency_key: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="the same key (for the same task) gives back the same run",
    )
    idempotency_key_ttl: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_IDEMPOTENCY_TTL_SECONDS,
        description="seconds the idempotency key holds (the deployment's default, 24 h, "
        "when absent); a trigger after it starts a new run under the key",
    )
    delay_seconds: StrictInt | None = Field(
        default=None, ge=0, le=MAX_DELAY_SECONDS, description="start the run this much later"
    )
    tags: list[Annotated[StrictStr, Field(pattern=TAG_PATTERN)]] | None = Field(
        default=None,
        max_length=MAX_TAGS,
        description=f"up to {MAX_TAGS} tags of 1-64 characters of `A-Za-z0-9_.:/=@+-` "
        '(e.g. "user:123"), duplicates dropped: `GET /runs?tag=` finds the run by one',
        examples=[["user:123", "env=prod"]],
    )
    metadata: dict[StrictStr, StrictStr] | None = Field(
        default=None,
        max_length=MAX_METADATA_KEYS,
        description=f"up to {MAX_METADATA_KEYS} string key-values shown with the run (keys "
        "`[A-Za-z_][A-Za-z0-9_.-]*` up to 64 characters, values up to 512, 4 KB in all)",
        examples=[{"customer": "acme", "source": "webhook"}],
    )
    concurrency_key: StrictStr | None = Field(
        default=None,
        pattern=CONCURRENCY_KEY_PATTERN.pattern,
        description="the task's queue limits apply per key (a tenant, a user): 1-128 "
        "characters of `A-Za-z0-9_.:/=@+-`",
        examples=["tenant:acme"],
    )
    priority: StrictInt = Field(
        default=0,
        ge=0,
        le=MAX_PRIORITY,
        description="among the runs waiting in the same queue and key, higher starts first",
    )
    ttl_seconds: StrictInt | None = Field(
        default=None,
        ge=1,
        le=int(MAX_TTL.total_seconds()),
        description="a run not started within this many seconds of its start time (after "
        "`delay_seconds`) ends CANCELLED",
    )


class EventRequest(_Request):
    """Body of `POST /runs/{run_id}/events/{name}`."""

    data: Any = Field(default=None, description="what `ctx.wait_for_event(name)` returns")
    event_id: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="unique per event: a retried request with the same id is stored once",
    )


class CallbackError(_Request):
    """An outside system's report that the work behind a callback failed."""

    type: StrictStr = "CallbackError"
    message: StrictStr


class CallbackRequest(_Request):
    """Body of `POST /callbacks/{token}`: `data` on success or `error` on failure, not both."""

    data: Any = None
    error: StrictStr | CallbackError | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> CallbackRequest:
        if self.error is not None and self.data is not None:
            raise ValueError("give either data or error, not both")
        return self


class TriggerResponse(BaseModel):
    """The run a trigger started (`created`) or found under its idempotency key."""

    run_id: str
    status: RunStatus
    created: bool = Field(
        description="false: the run was there already (the same idempotency key, or a "
        "debounced task's pending run, whose payload this trigger replaced)"
    )


class ErrorBody(BaseModel):
    """An exception as stored: its type name and message.

    The traceback stays behind: it tells callers about our code and their inputs' paths
    through it, and belongs in the logs, not in API answers.
    """

    type: str
    message: str
    non_retryable: bool = False

    @classmethod
    def of(cls, error: ErrorInfo | None) -> ErrorBody | None:
        if error is None:
            return None
        return cls(type=error.type, message=error.message, non_retryable=error.non_retryable)


class VersionBody(BaseModel):
    """The task version and code version a run is pinned to."""

    task: str
    code: str


class RunSummary(BaseModel):
    """A run as the runs list shows it: no payload, no result (`GET /runs/{id}` has them)."""

    run_id: str
    task_id: str
    status: RunStatus
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    waiting_for: str | None
    wake_at: datetime | None
    parent_run_id: str | None
    idempotency_key: str | None
    error: ErrorBody | None
    tags: list[str] = Field(default_factory=list, description="given at trigger")

    @classmethod
    def of(cls, view: RunInfoView) -> Self:
        return cls(**cls._summary_fields(view))

    @staticmethod
    def _summary_fields(view: RunInfoView) -> dict[str, Any]:
        return {
            "run_id": view.run_id,
            "task_id": view.task_id,
            "status": view.status,
            "attempts": view.attempts,
            "created_at": view.created_at,
            "updated_at": view.updated_at,
            "started_at": view.started_at,
            "finished_at": view.finished_at,
            "waiting_for": view.waiting_for,
            "wake_at": view.wake_at,
            "parent_run_id": view.parent_run_id,
            "idempotency_key": view.idempotency_key,
            "error": ErrorBody.of(view.error),
            "tags": list(view.tags),
        }


class HoldBody(BaseModel):
    """Why a run is held (`POST /runs/{run_id}/resume` lets it go on)."""

    reason: Literal["nondeterminism", "unknown-task", "code-version"] = Field(
        description="nondeterminism: its replay diverged from its log; unknown-task: its "
        "task is not deployed; code-version: pinned to a code version nobody runs"
    )
    since: datetime = Field(description="when it was held")
    error: ErrorBody | None = Field(description="what diverged, or what is missing")


class OriginBody(BaseModel):
    """Where a repaired run came from: a rerun of a run, or a fork of its first entries."""

    kind: Literal["rerun", "fork"]
    run_id: str = Field(description="the original run")
    from_step: int | None = Field(default=None, description="a fork's: log entries copied")


class RunBody(RunSummary):
    """A run: its summary, with its payload, result and version, and its hold if held."""

    payload: Any
    result: Any
    version: VersionBody
    held: HoldBody | None = None
    origin: OriginBody | None = Field(
        default=None, description="a rerun's or a fork's original run (`POST /runs/{id}/rerun`)"
    )
    metadata: dict[str, str] = Field(default_factory=dict, description="given at trigger")
    queue: str | None = Field(default=None, description="the queue the run starts in")
    concurrency_key: str | None = Field(
        default=None, description="given at trigger: the queue's limits apply per key"
    )
    priority: int = Field(default=0, description="given at trigger: higher starts first")
    start_by: datetime | None = Field(
        default=None,
        description="the end of its ttl (given at trigger): not started by then, it ends "
        "CANCELLED with RunExpired",
    )
    queue_position: int | None = Field(
        default=None, description="waiting for a slot of its queue: its place (1: next)"
    )

    @classmethod
    def of(cls, view: RunInfoView) -> Self:
        return cls(
            **cls._summary_fields(view),
            metadata=dict(view.metadata),
            queue=view.queue,
            concurrency_key=view.concurrency_key,
            priority=view.priority,
            start_by=view.start_by,
            payload=view.payload,
            result=view.result,
            version=VersionBody(task=view.task_version, code=view.code_version),
            held=_hold_body(view),
            origin=origin_of(view.origin),
        )


def _hold_body(view: RunInfoView) -> HoldBody | None:
    held = view.held
    if held is None:
        return None
    reason = cast(Literal["nondeterminism", "unknown-task", "code-version"], held.reason)
    return HoldBody(reason=reason, since=held.since, error=ErrorBody.of(held.error))


class RunListResponse(BaseModel):
    """A page of run summaries, newest first; pass `next_cursor` back as `cursor` for the
    next page."""

    runs: list[RunSummary]
    next_cursor: str | None


class HistoryEntryBody(BaseModel):
    """One checkpoint of a run's log.

    `attempt` is the step's own attempt number (step retries count it up);
    `task_attempt` is the attempt of the run (task retries count it up) that wrote it.
    """

    seq: int
    kind: str
    name: str
    position: int
    attempt: int
    task_attempt: int
    at: datetime
    value: Any
    error: ErrorBody | None
    wake_at: datetime | None
    started_at: datetime | None = Field(
        default=None, description="step ends: when that step attempt began"
    )
    input: Any = Field(
        default=None,
        description='step ends: that attempt\'s arguments, {"args": [...], "kwargs": {...}} '
        '(up to 4 KB of JSON, else {"omitted": "<why>"}); null for no arguments',
    )

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryEntryBody:
        return cls(
            seq=entry.seq,
            kind=entry.kind,
            name=entry.name,
            position=entry.position,
            attempt=entry.attempt,
            task_attempt=entry.task_attempt,
            at=entry.at,
            value=_without_tracebacks(entry.kind, entry.value),
            error=ErrorBody.of(entry.error),
            wake_at=entry.wake_at,
            started_at=entry.started_at,
            input=entry.input,
        )


# Checkpoints whose value lists the outcomes of a batch's children, failed ones with their
# stored error (traceback included).
_BATCH_ENDS = frozenset({CheckpointKind.BATCH_COMPLETED, CheckpointKind.BATCH_FAILED})


def _without_tracebacks(kind: str, value: Any) -> JsonData:
    """A batch's outcomes without the failed children's tracebacks (see `ErrorBody`)."""
    if kind not in _BATCH_ENDS or not isinstance(value, list):
        return value
    return [
        {key: item[key] for key in item if key != "traceback"}
        if isinstance(item, dict) and item.get("state") == "failed"
        else item
        for item in value
    ]


class HistoryResponse(BaseModel):
    """A run's checkpoint log, in order."""

    run_id: str
    history: list[HistoryEntryBody]


class EventResponse(BaseModel):
    """An event was stored in the run's inbox and the run was woken up."""

    run_id: str
    event: str
    accepted: bool = True


class ErrorDetail(BaseModel):
    """What went wrong: a stable `code` to branch on and a message for people."""

    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: `{"error": {"code", "message", "details"?}}`."""

    error: ErrorDetail


class CallbackResponse(BaseModel):
    """Body of a completed `POST /callbacks/{token}` (it says nothing about the run)."""

    completed: bool
