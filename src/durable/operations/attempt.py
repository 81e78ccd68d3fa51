"""The base every durable operation stands on: one attempt's cursor over the run's log.

An operation takes the next position, asks the replay view what the log holds there (a
recorded answer, or nothing: run fresh), and records what it did at the next log slot.
`Attempt` keeps that bookkeeping, and the checks made before anything new executes
(cancelled, timed out, out of invocation time). Suspensions (sleep, wait, retry backoff,
hand-over) are raised as `Suspend`, a BaseException, so that a task's `except Exception`
can never swallow one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from durable.clock import Clock
from durable.engine.outcomes import Abandoned, AnyOutcome, Failed, HandedOver, Suspended
from durable.engine.replay import HistoryView
from durable.errors import ConflictError, NonDeterminismError, RunCancelledError
from durable.inbox import InboxLedger, unnumbered_consumptions
from durable.operations.observer import AttemptObserver, StepSpan
from durable.records import (
    BatchItemResult,
    BatchRecord,
    Checkpoint,
    CheckpointKind,
    ErrorInfo,
    InboxEvent,
    RunRecord,
    RunStatus,
)
from durable.serialization import JsonData, SerializationError, revive
from durable.values import ValueCodec


class AttemptEnvironment(Protocol):
    """What an attempt needs from the outside world (the worker provides it)."""

    def append(self, checkpoint: Checkpoint) -> None:
        """Persist one checkpoint (one conditional write); ConflictError if the slot is taken."""

    def cancelled(self) -> bool:
        """Whether the run has been cancelled meanwhile (may be checked lazily)."""

    def inbox(self) -> list[InboxEvent]:
        """The run's inbox in arrival order (consumed events may linger: `durable.inbox`)."""

    def start_child(
        self, task_id: str, payload: Any, idempotency_key: str, parent_run_id: str
    ) -> str:
        """Start (or find, by the key) a child run; its run id. Raises InputError if invalid."""

    def get_run(self, run_id: str) -> RunRecord | None:
        """A run as stored (a child's status and result)."""

    def create_callback(
        self, token: str, run_id: str, name: str, expires_at: datetime | None
    ) -> None:
        """Register a callback token for this run."""

    def start_batch(self, batch: BatchRecord) -> None:
        """Store a fan-out and start its first children (idempotent)."""

    def get_batch(self, run_id: str, task_attempt: int, position: int) -> BatchRecord | None:
        """A fan-out's counters."""

    def batch_results(
        self, run_id: str, task_attempt: int, position: int, start: int, limit: int
    ) -> list[BatchItemResult]:
        """How the ended children of a fan-out ended, in index order: a page, from `start`."""

    def cancel_runs(self, run_ids: list[str]) -> None:
        """Cancel these runs if they have not ended (children no longer needed)."""

    def extend_lease(self, until: datetime | None) -> None:
        """Hold the run until `until` (a heartbeating step); the sweeper wakes it after that.

        None gives the run back its whole invocation lease."""


class Suspend(BaseException):
    """Unwinds the task to the executor with an outcome. Never catch it."""

    def __init__(self, outcome: AnyOutcome) -> None:
        self.outcome = outcome
        super().__init__(type(outcome).__name__)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The run as task code sees it; identical on every replay."""

    id: str
    task_id: str
    attempt: int
    started_at: datetime
    task_version: str
    code_version: str


class Attempt:
    """One attempt of a run, as its operations see it: where it is in the log, and what is
    recorded there. Made by the executor; each context facade wraps one."""

    def __init__(
        self,
        *,
        run: RunInfo,
        view: HistoryView,
        environment: AttemptEnvironment,
        clock: Clock,
        codec: ValueCodec,
        deadline: datetime | None,
        run_deadline: datetime | None,
        observer: AttemptObserver | None = None,
    ) -> None:
        self.run = run
        self.observer = observer  # telemetry's hook (`durable.operations.observer`)
        self.view = view
        self.environment = environment
        self.clock = clock
        self.codec = codec
        self.deadline = deadline  # this invocation's: past it, hand over to a fresh one
        self.run_deadline = run_deadline  # the task timeout's: past it, the run times out
        self.position = 0  # the next operation's
        self.next_seq = view.next_seq  # the next log slot
        self.replay_length = view.furthest
        self.invocation_start = clock.now()
        # (step name, undo function, its result) of each completed step with a compensation
        self.compensations: list[tuple[str, Callable[[Any], Any], Any]] = []
        self.last_heartbeat: datetime | None = None
        # token -> its timeout, for every callback this execution created or replayed
        self.callback_expiries: dict[str, datetime | None] = {}
        self._ledger: InboxLedger | None = None
        self.divergence: NonDeterminismError | None = None
        self.cancellation: RunCancelledError | None = None

    @property
    def is_replaying(self) -> bool:
        """True while the code runs where an earlier invocation already ran."""
        return self.position < self.replay_length

    @property
    def requested_positions(self) -> int:
        """How many operations the task has called so far."""
        return self.position

    # -- positions and the log -----------------------------------------------------------

    def take_position(self) -> int:
        """The next operation's position; a divergence or cancellation seen before stops it."""
        if self.divergence is not None:
            raise self.divergence
        if self.cancellation is not None:
            raise self.cancellation
        position = self.position
        self.position += 1
        if self.observer is not None and position < self.replay_length:
            self.observer.operation_replayed(position)
        return position

    def entries(self, position: int, kind: str, name: str) -> list[Checkpoint]:
        """What the log holds at `position` for this operation (NonDeterminismError if the
        log holds another operation there: kept as the attempt's divergence)."""
        try:
            return self.view.check(position, kind, name)
        except NonDeterminismError as exc:
            self.divergence = exc
            raise

    def open(self, kind: str, name: str) -> tuple[int, list[Checkpoint]]:
        """Take the next position for an operation; its position and recorded entries."""
        position = self.take_position()
        return position, self.entries(position, kind, name)

    def append_raw(self, checkpoint: Checkpoint) -> None:
        """Persist a checkpoint at the next slot; losing the slot abandons the invocation."""
        try:
            self.environment.append(checkpoint)
        except ConflictError as exc:
            raise Suspend(Abandoned(str(exc))) from None
        self.next_seq += 1

    def record(
        self,
        kind: CheckpointKind,
        position: int,
        name: str,
        *,
        step_attempt: int = 1,
        value: str | None = None,
        error: ErrorInfo | None = None,
        wake_at: datetime | None = None,
        inbox_id: str | None = None,
        started_at: datetime | None = None,
        input: str | None = None,
    ) -> Checkpoint:
        """Record one entry of the operation at `position` in the next log slot."""
        checkpoint = Checkpoint(
            seq=self.next_seq,
            kind=kind,
            op=position,
            name=name,
            task_attempt=self.run.attempt,
            at=self.clock.now(),
            step_attempt=step_attempt,
            value=value,
            error=error,
            wake_at=wake_at,
            inbox_id=inbox_id,
            started_at=started_at,
            input=input,
        )
        self.append_raw(checkpoint)
        return checkpoint

    def step_ran(
        self, name: str, position: int, step_attempt: int, started: datetime, error: str | None
    ) -> None:
        """Tell the observer, if any, that a fresh step attempt ran from `started` to now."""
        if self.observer is not None:
            self.observer.step_ran(
                StepSpan(
                    run_id=self.run.id,
                    task_id=self.run.task_id,
                    task_attempt=self.run.attempt,
                    step=name,
                    position=position,
                    step_attempt=step_attempt,
                    started_at=started,
                    ended_at=self.clock.now(),
                    error=error,
                )
            )

    def blob_key(self) -> str:
        """Where a large value recorded in the next log slot is stored."""
        return f"{self.run.id}/{self.next_seq}"

    # -- before anything new runs, and suspending ---------------------------------------------

    def stop_if_cancelled(self) -> None:
        """Raise RunCancelledError (and remember it) if the run has been cancelled meanwhile."""
        if self.environment.cancelled():
            self.cancellation = RunCancelledError(f"run {self.run.id} was cancelled")
            raise self.cancellation

    def before_fresh_operation(self) -> None:
        """Checks made before anything new executes: cancelled, timed out, out of time."""
        self.stop_if_cancelled()
        now = self.clock.now()
        if self.run_deadline is not None and now >= self.run_deadline:
            raise Suspend(
                Failed(
                    ErrorInfo(type="TaskTimeoutError", message="the run exceeded its task timeout"),
                    RunStatus.TIMED_OUT,
                )
            )
        if self.deadline is not None and now >= self.deadline:
            raise Suspend(HandedOver())

    def has_room_for(self, longest: timedelta) -> bool:
        """False when an attempt of `longest` would outlive this invocation, and a fresh
        invocation would have room for it."""
        return not (
            self.deadline is not None
            and self.clock.now() + longest > self.deadline
            and self.deadline - self.invocation_start > longest
        )

    def suspend_until(
        self, status: RunStatus, wake_at: datetime | None, waiting_for: str | None = None
    ) -> Suspend:
        """The suspension to raise: wake at `wake_at` (or when woken), never past the task
        timeout."""
        if self.run_deadline is not None and (wake_at is None or wake_at > self.run_deadline):
            wake_at = self.run_deadline  # wake up in time to time out
        return Suspend(Suspended(status, wake_at, waiting_for, self.run.attempt))

    # -- values and the inbox -----------------------------------------------------------

    def decode(self, stored: str, annotation: Any, step: str) -> JsonData:
        """A step's value as task code sees it, fresh and replayed alike: the stored JSON
        (text, or a blob reference) revived into the step's return annotation."""
        try:
            return revive(self.codec.decode(stored), annotation)
        except ValidationError as exc:
            raise SerializationError(
                f"the value of step {step!r} does not fit its return annotation: {exc}"
            ) from exc

    def inbox_ledger(self) -> InboxLedger:
        """Which inbox events this run has consumed (by log entry), built once."""
        if self._ledger is None:
            visible = (
                entry
                for position in range(self.view.length)
                for entry in self.view.entries(position)
            )
            self._ledger = InboxLedger(
                self.view.consumed_inbox_ids, unnumbered_consumptions(visible)
            )
        return self._ledger

    def next_unconsumed_event(self, name: str) -> InboxEvent | None:
        """The oldest event `name` in the inbox that no log entry has consumed yet."""
        return self.inbox_ledger().next_event(name, self.environment.inbox())
