"""`Client`: trigger runs and look at them. The HTTP API and the CLI are thin layers on it.

Every write is validated first and stores nothing on bad input: an unknown task raises
`UnknownTaskError`, a payload that does not fit the task's annotation
`PayloadValidationError`, a value over 6 MB `PayloadTooLargeError`.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from durable.clock import Clock, SystemClock
from durable.endings import follow_up_end
from durable.errors import (
    CallbackAlreadyCompletedError,
    ConflictError,
    IdempotencyConflictError,
    InputError,
    RunFinishedError,
    RunNotFoundError,
    TaskFailedError,
)
from durable.ids import child_run_id, new_inbox_id, new_run_id
from durable.inbox import consumed_inbox_ids
from durable.names import callback_wait, event_name
from durable.queues.base import WakeQueue
from durable.records import (
    Checkpoint,
    CheckpointKind,
    ErrorInfo,
    InboxEvent,
    RunRecord,
    RunStatus,
    WakeReason,
    WakeUp,
)
from durable.serialization import check_depth, dumps, loads
from durable.storage.base import RunStore, token_key
from durable.task import TaskRegistry, default_registry
from durable.values import ValueCodec


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
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "idempotency_key": self.idempotency_key,
            "version": {"task": self.task_version, "code": self.code_version},
            "waiting_for": self.waiting_for,
            "wake_at": _iso(self.wake_at),
            "parent_run_id": self.parent_run_id,
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "name": self.name,
            "position": self.position,
            "attempt": self.attempt,
            "task_attempt": self.task_attempt,
            "at": _iso(self.at),
            "value": self.value,
            "error": self.error.to_dict() if self.error else None,
            "wake_at": _iso(self.wake_at),
        }


@dataclass(frozen=True, slots=True)
class RunList:
    """A page of runs, newest first."""

    runs: list[RunInfoView]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RunHandle:
    """What `trigger` returns: the run's id, its status, and whether this call created it."""

    run_id: str
    status: RunStatus
    created: bool


def _redacted_token(token: Any) -> str:
    """A callback token as callers may see it: enough to tell tokens apart, not to use one."""
    return f"{str(token)[:6]}…"


def _redacted_wait(waiting_for: str | None) -> str | None:
    if waiting_for is not None and waiting_for.startswith("callback:"):
        return "callback:" + _redacted_token(waiting_for.removeprefix("callback:"))
    return waiting_for


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


class Client:
    """The operations of the HTTP API, in Python."""

    def __init__(
        self,
        *,
        store: RunStore,
        queue: WakeQueue,
        codec: ValueCodec,
        clock: Clock | None = None,
        registry: TaskRegistry | None = None,
        code_version: str = "dev",
        retention: timedelta | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.codec = codec
        self.clock = clock or SystemClock()
        self.registry = registry or default_registry
        self.code_version = code_version
        self.retention = retention  # how long a cancelled run is kept; None: forever

    @classmethod
    def from_environment(cls) -> Client:
        """The client of this process's runtime: DynamoDB/SQS/S3 named by the `DURABLE_*`
        environment (and `AWS_ENDPOINT_URL` for moto), with the task modules imported."""
        from durable.bootstrap import get_runtime

        return get_runtime().client

    # -- writes -------------------------------------------------------------------------

    def trigger(
        self,
        task_id: str,
        payload: Any = None,
        idempotency_key: str | None = None,
        delay: timedelta | None = None,
        *,
        parent_run_id: str | None = None,
        run_id: str | None = None,
        batch_slot: str | None = None,
        started_at: datetime | None = None,
    ) -> RunHandle:
        """Start a run of `task_id`; with an idempotency key, the same key gives the same run.

        `started_at` fixes the run's `ctx.run.started_at` before its first invocation (a
        scheduled run's is its scheduled instant); by default it is when the run first runs.
        """
        definition = self.registry.get(task_id)
        if delay is not None and delay < timedelta(0):
            raise ValueError("delay must not be negative")
        if started_at is not None and started_at.tzinfo is None:
            raise ValueError("started_at must be timezone-aware")
        value = definition.validate_payload(payload)
        check_depth(value, "the payload")
        now = self.clock.now()
        run_id = run_id or new_run_id(now)
        stored_payload = self.codec.encode(value, f"{run_id}/payload")
        wake_at = now + delay if delay else now
        token = "start" if delay else None
        run = RunRecord(
            run_id=run_id,
            task_id=task_id,
            status=RunStatus.QUEUED,
            payload=stored_payload,
            created_at=now,
            updated_at=now,
            idempotency_key=idempotency_key,
            task_version=definition.version,
            code_version=self.code_version,
            wake_at=wake_at,
            wake_token=token,
            parent_run_id=parent_run_id,
            batch_slot=batch_slot,
            started_at=started_at.astimezone(UTC) if started_at is not None else None,
        )
        try:
            stored, created = self.store.create_run(run)
        except ConflictError:
            # A run id given by the caller (a batch child) that exists: started already.
            existing = self.store.get_run(run_id)
            if existing is None:
                raise
            return RunHandle(run_id=existing.run_id, status=existing.status, created=False)
        if not created and idempotency_key is not None:
            self._same_payload(stored, task_id, idempotency_key, value)
            if (
                stored.status is RunStatus.QUEUED
                and stored.wake_at is not None
                and (stored.wake_at <= now and stored.started_at is None)
            ):
                # A retried trigger whose first try died between storing the run and
                # sending its wake-up: send it now rather than wait for the sweeper.
                self.queue.send(WakeUp(stored.run_id, WakeReason.START))
        if created:
            if delay:
                self.queue.send(
                    WakeUp(run_id, WakeReason.TIMER, token), min(delay, self.queue.max_delay)
                )
            else:
                self.queue.send(WakeUp(run_id, WakeReason.START))
        return RunHandle(run_id=stored.run_id, status=stored.status, created=created)

    def _same_payload(self, run: RunRecord, task_id: str, key: str, value: Any) -> None:
        """A key reused with another payload is refused, naming the run it started."""
        if self.codec.decode(run.payload) != loads(dumps(value)):
            raise IdempotencyConflictError(task_id, key, run.run_id)

    def send_event(
        self, run_id: str, name: str, data: Any = None, event_id: str | None = None
    ) -> None:
        """Deliver event `name` to a run; a `wait_for_event(name)` consumes it (now or later).

        The event is stored, then the run is marked due if it waits for it, then woken: if
        this call fails half-way (an `InfrastructureError`), the sweeper or a retry of the
        call finishes the delivery. Give an `event_id` (unique per event, as Inngest's or a
        webhook's delivery id) to make retries safe: the same id is stored once.
        """
        event_name(name)
        check_depth(data, "the event's data")
        if event_id is not None and not 1 <= len(event_id) <= 256:
            raise InputError("event_id must be 1 to 256 characters")
        run = self._require(run_id)
        if run.status.is_terminal:
            raise RunFinishedError(run_id, run.status)
        now = self.clock.now()
        fresh_id = new_inbox_id(now)
        inbox_id = fresh_id
        if event_id is not None:
            inbox_id = self.store.claim_event_id(run_id, event_id, fresh_id)
        stored = self.codec.encode(data, f"{run_id}/inbox/{inbox_id}")
        try:
            self.store.put_inbox(
                InboxEvent(
                    run_id=run_id, inbox_id=inbox_id, name=name, data=stored, received_at=now
                )
            )
        except ConflictError:
            if event_id is None:
                raise
            # Stored by an earlier try of this send, which may have died before waking.
        else:
            if inbox_id != fresh_id and self._taken_back(run_id, inbox_id):
                return  # an earlier try delivered it, and the run consumed it already
        self._wake_waiting(run_id, name, now)

    def _taken_back(self, run_id: str, inbox_id: str) -> bool:
        """After a retried delivery stored its event again: if the run's log has consumed
        it (and its inbox item was deleted, see `durable.inbox`), delete the copy; whether
        it had. Only retries of a delivery that got through come here."""
        if inbox_id not in consumed_inbox_ids(self.store.load_history(run_id)):
            return False
        self.store.delete_inbox(run_id, [inbox_id])
        return True

    def _wake_waiting(self, run_id: str, waiting_for: str, now: datetime) -> None:
        """Mark the run due if it waits for `waiting_for`, then send it a wake-up.

        The mark makes the wake-up one the sweeper sees: a lost message is sent again.
        """
        with contextlib.suppress(ConflictError, RunNotFoundError):
            self.store.update_run(
                run_id,
                {"wake_at": now},
                expect_status=[RunStatus.WAITING],
                expect_waiting_for=waiting_for,
            )
        self.queue.send(WakeUp(run_id, WakeReason.EVENT))

    def complete_callback(self, token: str, data: Any = None, error: Any = None) -> None:
        """Complete a callback once: with `data`, or with `error` (raised in the run).

        Raises CallbackNotFoundError for an unknown token, CallbackAlreadyCompletedError for
        one completed before or past its timeout.
        """
        now = self.clock.now()
        outcome = {"error": error} if error is not None else {"data": data}
        check_depth(outcome, "the callback's data")
        key = token_key(token)
        stored = self.codec.encode(outcome, f"callbacks/{key[:24]}")
        retry = False
        try:
            run_id = self.store.claim_callback(token, now, stored)
        except CallbackAlreadyCompletedError:
            # The same completion again, whose first try died between claiming the token and
            # delivering it, is delivered now; any other second completion is refused.
            claimed = self.store.callback_outcome(token)
            if claimed is None or claimed[1] != stored:
                raise
            run_id, retry = claimed[0], True
        event = InboxEvent(
            run_id=run_id,
            inbox_id=f"cb-{key[:32]}",  # one delivery per token, whoever writes it
            name=callback_wait(token),
            data=stored,
            received_at=now,
        )
        try:
            self.store.put_inbox(event)
        except ConflictError:
            if retry:
                # Delivered by an earlier try, which may have died before waking the run.
                self._wake_waiting(run_id, event.name, now)
                raise CallbackAlreadyCompletedError("this callback was completed already") from None
        else:
            if retry and self._taken_back(run_id, event.inbox_id):
                raise CallbackAlreadyCompletedError("this callback was completed already")
        self._wake_waiting(run_id, event.name, now)

    def cancel(self, run_id: str) -> RunInfoView:
        """Cancel a run that has not ended; a running invocation stops at its next operation."""
        run = self._require(run_id)
        if run.status.is_terminal:
            raise RunFinishedError(run_id, run.status)
        now = self.clock.now()
        try:
            run = self.store.update_run(
                run_id,
                {
                    "status": RunStatus.CANCELLED,
                    "cancel_requested": True,
                    "error": ErrorInfo(type="RunCancelledError", message="the run was cancelled"),
                    "finished_at": now,
                    "expires_at": now + self.retention if self.retention is not None else None,
                    "updated_at": now,
                    # The follow-ups (children, parent, batch) are pending: see durable.endings.
                    "wake_at": now,
                    "wake_token": None,
                    "waiting_for": None,
                },
                expect_status=[s for s in RunStatus if not s.is_terminal],
            )
        except ConflictError:
            run = self._require(run_id)
            raise RunFinishedError(run_id, run.status) from None
        follow_up_end(self, run)
        return self._view(run)

    def cancel_children(self, run_id: str) -> None:
        """Cancel every child run this run started that has not ended (recursively)."""
        started = (CheckpointKind.CHILD_STARTED, CheckpointKind.CHILD_TRIGGERED)
        children: list[str] = []
        for checkpoint in self.store.load_history(run_id):
            if checkpoint.kind in started and checkpoint.value is not None:
                children.append(loads(checkpoint.value))
            elif checkpoint.kind is CheckpointKind.BATCH_STARTED:
                batch = self.store.get_batch(run_id, checkpoint.task_attempt, checkpoint.op)
                if batch is not None:
                    ended = {
                        item.index
                        for item in self.store.list_batch_results(
                            run_id, checkpoint.task_attempt, checkpoint.op
                        )
                    }
                    running = min(batch.total, len(ended) + batch.max_concurrency)
                    children.extend(
                        child_run_id(run_id, checkpoint.task_attempt, checkpoint.op, index)
                        for index in range(running)
                        if index not in ended
                    )
        for child_id in children:
            child = self.store.get_run(child_id)
            if child is not None and not child.status.is_terminal:
                with contextlib.suppress(RunFinishedError):
                    self.cancel(child.run_id)

    # -- reads --------------------------------------------------------------------------

    def get(self, run_id: str) -> RunInfoView:
        """The run's status, payload, result or error, attempts, timestamps and version."""
        return self._view(self._require(run_id))

    def list(
        self,
        task_id: str | None = None,
        status: RunStatus | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunList:
        """Runs, newest first, filtered by task and status."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        page = self.store.list_runs(
            task_id=task_id,
            status=RunStatus(status) if status is not None else None,
            limit=limit,
            cursor=cursor,
        )
        return RunList([self._view(run) for run in page.runs], page.next_cursor)

    def history(self, run_id: str) -> builtins.list[HistoryEntry]:
        """The run's checkpoint log, in order."""
        self._require(run_id)
        return [self._entry(cp) for cp in self.store.load_history(run_id)]

    def wait(
        self, run_id: str, timeout: timedelta = timedelta(seconds=60), poll: float = 0.2
    ) -> RunInfoView:
        """Poll until the run ends; TimeoutError after `timeout` (real time, caller side)."""
        limit = time.monotonic() + timeout.total_seconds()
        while True:
            view = self.get(run_id)
            if view.status.is_terminal:
                return view
            if time.monotonic() >= limit:
                raise TimeoutError(f"run {run_id} is still {view.status} after {timeout}")
            time.sleep(poll)

    def result(self, run_id: str, timeout: timedelta = timedelta(seconds=60)) -> Any:
        """The run's result once it completes; TaskFailedError if it ends otherwise."""
        view = self.wait(run_id, timeout)
        if view.status is not RunStatus.COMPLETED:
            raise TaskFailedError(run_id, view.status, view.error)
        return view.result

    # -- mapping ------------------------------------------------------------------------

    def _require(self, run_id: str) -> RunRecord:
        run = self.store.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    def _view(self, run: RunRecord) -> RunInfoView:
        return RunInfoView(
            run_id=run.run_id,
            task_id=run.task_id,
            status=run.status,
            payload=self.codec.decode(run.payload),
            result=self.codec.decode(run.result) if run.result is not None else None,
            error=run.error,
            attempts=run.attempt,
            created_at=run.created_at,
            updated_at=run.updated_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            idempotency_key=run.idempotency_key,
            task_version=run.task_version,
            code_version=run.code_version,
            waiting_for=_redacted_wait(run.waiting_for),
            wake_at=run.wake_at,
            parent_run_id=run.parent_run_id,
        )

    def _entry(self, cp: Checkpoint) -> HistoryEntry:
        return HistoryEntry(
            seq=cp.seq,
            kind=str(cp.kind),
            name=cp.name,
            position=cp.op,
            attempt=cp.step_attempt,
            task_attempt=cp.task_attempt,
            at=cp.at,
            value=(
                _redacted_token(self.codec.decode(cp.value))
                if cp.kind is CheckpointKind.CALLBACK_CREATED and cp.value is not None
                else self.codec.decode(cp.value)
                if cp.value is not None
                else None
            ),
            error=cp.error,
            wake_at=cp.wake_at,
        )
