"""What callers see of runs: `RunInfoView` (a run, values decoded), `HistoryEntry` (one
checkpoint) and `RunList` (a page of runs). The client builds them; the HTTP API and the CLI
render their `to_dict()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from durable.records import ErrorInfo, RunRecord, RunStatus, hold_reason


@dataclass(frozen=True, slots=True)
class HoldView:
    """Why a run is held and since when: `reason` is `nondeterminism` (its replay diverged
    from its log), `unknown-task` (its task is not deployed) or `code-version` (pinned to a
    code version nobody runs); `error` says what. `resume` (API, CLI, Client) lets it go on."""

    reason: str
    since: datetime
    error: ErrorInfo | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "since": iso(self.since),
            "error": self.error.to_dict() if self.error else None,
        }


@dataclass(frozen=True, slots=True)
class RunInfoView:
    """A run as callers see it: values decoded, statuses as `RunStatus`."""

    run_id: str
    task_id: str
    status: RunStatus
    payload: Any
    result: Any
    error: ErrorInfo | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    idempotency_key: str | None
    task_version: str
    code_version: str
    waiting_for: str | None
    wake_at: datetime | None
    parent_run_id: str | None
    origin: str | None = None  # "rerun:<run id>" / "fork:<run id>@<N>" (`origin_of` parses it)
    tags: tuple[str, ...] = ()  # given at trigger (`durable.services.labels`)
    metadata: dict[str, str] = field(default_factory=dict)
    queue: str | None = None  # the queue it starts in (`durable.flow`), None for old runs
    concurrency_key: str | None = None
    priority: int = 0
    start_by: datetime | None = None  # its ttl's end: not started by then, it is cancelled

    @classmethod
    def of(cls, run: RunRecord, payload: Any, result: Any, waiting_for: str | None) -> RunInfoView:
        """The view of a stored run, given its decoded values and its wait as shown."""
        return cls(
            run_id=run.run_id,
            task_id=run.task_id,
            status=run.status,
            payload=payload,
            result=result,
            error=run.error,
            attempts=run.attempt,
            created_at=run.created_at,
            updated_at=run.updated_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            idempotency_key=run.idempotency_key,
            task_version=run.task_version,
            code_version=run.code_version,
            waiting_for=waiting_for,
            wake_at=run.wake_at,
            parent_run_id=run.parent_run_id,
            origin=run.origin,
            tags=run.tags,
            metadata=run.metadata,
            queue=run.queue,
            concurrency_key=run.concurrency_key,
            priority=run.priority,
            start_by=run.start_by,
        )

    @property
    def held(self) -> HoldView | None:
        """The run's hold (`durable.worker.holds`), None when it is not held."""
        # A held run that a worker has taken (RUNNING) is no longer held: it is replayed.
        busy = self.status.is_terminal or self.status is RunStatus.RUNNING
        reason = None if busy else hold_reason(self.waiting_for)
        if reason is None:
            return None
        return HoldView(reason, self.updated_at, self.error)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the HTTP API's run body)."""
        return {
            "run_id": self.run_id,
            "task_id": self.task_id,
            "status": str(self.status),
            "payload": self.payload,
            "result": self.result,
            "error": self.error.to_dict() if self.error else None,
            "attempts": self.attempts,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "idempotency_key": self.idempotency_key,
            "version": {"task": self.task_version, "code": self.code_version},
            "waiting_for": self.waiting_for,
            "wake_at": iso(self.wake_at),
            "parent_run_id": self.parent_run_id,
            "held": self.held.to_dict() if self.held else None,
            "origin": origin_of(self.origin),
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "queue": self.queue,
            "concurrency_key": self.concurrency_key,
            "priority": self.priority,
            "start_by": iso(self.start_by),
        }


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One checkpoint as callers see it. `attempt` is the step's attempt number."""

    seq: int
    kind: str
    name: str
    position: int
    attempt: int
    task_attempt: int
    at: datetime
    value: Any
    error: ErrorInfo | None
    wake_at: datetime | None
    started_at: datetime | None = None  # step ends: when that attempt began
    input: Any = None  # step ends: that attempt's arguments (a bounded preview), decoded

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "name": self.name,
            "position": self.position,
            "attempt": self.attempt,
            "task_attempt": self.task_attempt,
            "at": iso(self.at),
            "value": self.value,
            "error": self.error.to_dict() if self.error else None,
            "wake_at": iso(self.wake_at),
            "started_at": iso(self.started_at),
            "input": self.input,
        }


@dataclass(frozen=True, slots=True)
class RunList:
    """A page of runs, newest first."""

    runs: list[RunInfoView]
    next_cursor: str | None


def origin_of(origin: str | None) -> dict[str, Any] | None:
    """A run's `origin` as callers see it: {"kind": "rerun" | "fork", "run_id", "from_step"?}."""
    if origin is None:
        return None
    kind, _, rest = origin.partition(":")
    run_id, _, cut = rest.partition("@")
    shown: dict[str, Any] = {"kind": kind, "run_id": run_id}
    if cut.isdigit():
        shown["from_step"] = int(cut)
    return shown


def iso(when: datetime | None) -> str | None:
    """An instant as ISO 8601 text, None as None."""
    return when.isoformat() if when is not None else None
