"""`Context`: what task code calls. Every durable operation goes through here.

Each call is an operation at the next position; the replay view answers it from the log
when it can (a completed step returns its recorded result without running), otherwise it
executes and records exactly one checkpoint before returning. Suspensions (sleep, wait,
retry backoff, hand-over) are raised as `Suspend`, a BaseException, so that a task's
`except Exception` can never swallow one.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol, TypeVar, get_type_hints

from durable.clock import Clock, utc
from durable.engine.outcomes import Abandoned, AnyOutcome, Failed, HandedOver, Suspended
from durable.engine.replay import HistoryView
from durable.engine.retry import NO_RETRY, RetryPolicy, is_non_retryable
from durable.errors import (
    ConflictError,
    NonDeterminismError,
    RunCancelled,
    StepFailedError,
    WaitTimeout,
)
from durable.ids import random_fraction, random_uuid
from durable.logs import RunLogger
from durable.records import Checkpoint, CheckpointKind, ErrorInfo, InboxEvent, RunStatus
from durable.serialization import dumps, is_plain_annotation, loads, type_adapter
from durable.task import StepSemantics, current_context
from durable.values import ValueCodec

T = TypeVar("T")

CRASHED_AFTER_START = "CrashedAfterStart"


class AttemptEnvironment(Protocol):
    """What an attempt needs from the outside world (the worker provides it)."""

    def append(self, checkpoint: Checkpoint) -> None:
        """Persist one checkpoint (one conditional write); ConflictError if the slot is taken."""

    def cancelled(self) -> bool:
        """Whether the run has been cancelled meanwhile (may be checked lazily)."""

    def inbox(self) -> list[InboxEvent]:
        """The run's inbox in arrival order."""


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


@lru_cache(maxsize=4096)
def _return_annotation(fn: Callable[..., Any]) -> Any:
    try:
        return get_type_hints(fn).get("return", Any)
    except Exception:
        return Any


class Context:
    """The durable context handed to a task as its first argument."""

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
    ) -> None:
        self.run = run
        self._view = view
        self._environment = environment
        self._clock = clock
        self._codec = codec
        self._deadline = deadline
        self._run_deadline = run_deadline
        self._position = 0
        self._next_seq = view.next_seq
        self._replay_length = view.furthest
        self._logger: RunLogger | None = None
        self._current_step: str | None = None
        self._consumed: dict[str, int] | None = None
        self.executed_steps = 0
        self.divergence: NonDeterminismError | None = None
        self.cancellation: RunCancelled | None = None

    # -- bookkeeping -------------------------------------------------------------------

    @property
    def is_replaying(self) -> bool:
        """True while the code runs where an earlier invocation already ran (logs stay quiet)."""
        return self._position < self._replay_length

    @property
    def logger(self) -> RunLogger:
        """A Powertools logger bound to run id, task id, attempt and step; silent on replay."""
        if self._logger is None:
            self._logger = RunLogger(self)
        return self._logger

    @property
    def current_step(self) -> str | None:
        return self._current_step

    @property
    def requested_positions(self) -> int:
        return self._position

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def append_raw(self, checkpoint: Checkpoint) -> None:
        """Persist an attempt-level checkpoint at the next slot (the executor's use)."""
        try:
            self._environment.append(checkpoint)
        except ConflictError as exc:
            raise Suspend(Abandoned(str(exc))) from None
        self._next_seq += 1

    def _entries(self, position: int, kind: str, name: str) -> list[Checkpoint]:
        try:
            return self._view.check(position, kind, name)
        except NonDeterminismError as exc:
            self.divergence = exc
            raise

    def _take_position(self) -> int:
        if self.divergence is not None:
            raise self.divergence
        if self.cancellation is not None:
            raise self.cancellation
        position = self._position
        self._position += 1
        return position

    def _record(
        self,
        kind: CheckpointKind,
        position: int,
        name: str,
        *,
        step_attempt: int = 1,
        value: str | None = None,
        error: ErrorInfo | None = None,
        wake_at: datetime | None = None,
    ) -> Checkpoint:
        checkpoint = Checkpoint(
            seq=self._next_seq,
            kind=kind,
            op=position,
            name=name,
            task_attempt=self.run.attempt,
            at=self._clock.now(),
            step_attempt=step_attempt,
            value=value,
            error=error,
            wake_at=wake_at,
        )
        try:
            self._environment.append(checkpoint)
        except ConflictError as exc:
            raise Suspend(Abandoned(str(exc))) from None
        self._next_seq += 1
        return checkpoint

    def _before_fresh_operation(self) -> None:
        """Checks made before anything new executes: cancelled, timed out, out of time."""
        if self._environment.cancelled():
            self.cancellation = RunCancelled(f"run {self.run.id} was cancelled")
            raise self.cancellation
        now = self._clock.now()
        if self._run_deadline is not None and now >= self._run_deadline:
            raise Suspend(
                Failed(
                    ErrorInfo(type="TaskTimeout", message="the run exceeded its task timeout"),
                    RunStatus.TIMED_OUT,
                )
            )
        if self._deadline is not None and now >= self._deadline:
            raise Suspend(HandedOver())

    def _suspend_until(
        self, status: RunStatus, wake_at: datetime | None, waiting_for: str | None = None
    ) -> Suspend:
        if self._run_deadline is not None and (wake_at is None or wake_at > self._run_deadline):
            wake_at = self._run_deadline  # wake up in time to time out
        return Suspend(Suspended(status, wake_at, waiting_for, self.run.attempt))

    def _decode(self, stored: str, annotation: Any) -> Any:
        value = self._codec.decode(stored)
        if is_plain_annotation(annotation):
            return value
        return type_adapter(annotation).validate_python(value)

    # -- steps --------------------------------------------------------------------------

    def step(
        self,
        name: str,
        fn: Callable[..., T],
        *args: Any,
        retry: RetryPolicy | None = None,
        semantics: StepSemantics = "at_least_once",
        **kwargs: Any,
    ) -> T:
        """Run `fn(*args, **kwargs)` once and checkpoint its result (or its final error)."""
        if self._current_step is not None:
            raise RuntimeError(
                f"ctx.step({name!r}) called inside step {self._current_step!r}: "
                "steps do not nest; call the function directly"
            )
        position = self._take_position()
        entries = self._entries(position, "step", name)
        policy = retry or NO_RETRY
        annotation = _return_annotation(fn)
        failures = 0
        started_attempts: set[int] = set()
        retry_at: datetime | None = None
        for entry in entries:
            if entry.kind is CheckpointKind.STEP_COMPLETED:
                assert entry.value is not None
                result: T = self._decode(entry.value, annotation)
                return result
            if entry.kind is CheckpointKind.STEP_STARTED:
                started_attempts.add(entry.step_attempt)
            elif entry.kind is CheckpointKind.STEP_FAILED:
                started_attempts.discard(entry.step_attempt)
                failures += 1
                assert entry.error is not None
                if entry.wake_at is None:  # failed for good
                    raise StepFailedError(
                        name, entry.error.type, entry.error.message, entry.error.non_retryable
                    )
                retry_at = entry.wake_at
        if started_attempts:
            # An at-most-once step was started and never finished: the invocation died in
            # its side effect. That attempt counts as failed; it never runs a second time.
            crashed = max(started_attempts)
            error = ErrorInfo(
                type=CRASHED_AFTER_START,
                message=f"step {name!r} attempt {crashed} started but never finished",
            )
            retry_at = self._record_step_failure(
                position, name, crashed, error, policy, RuntimeError(error.message)
            )
            failures = crashed
        if retry_at is not None and self._clock.now() < retry_at:
            raise self._suspend_until(RunStatus.RETRYING, retry_at)
        step_attempt = failures + 1
        self._before_fresh_operation()
        if semantics == "at_most_once":
            self._record(CheckpointKind.STEP_STARTED, position, name, step_attempt=step_attempt)
        self._current_step = name
        token = current_context.set(None)
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            error = ErrorInfo.from_exception(
                exc, traceback.format_exc(), non_retryable=is_non_retryable(exc, policy)
            )
            retry_at = self._record_step_failure(position, name, step_attempt, error, policy, exc)
            assert retry_at is not None
            raise self._suspend_until(RunStatus.RETRYING, retry_at) from None
        finally:
            current_context.reset(token)
            self._current_step = None
        self.executed_steps += 1
        text = dumps(value)
        stored = self._codec.encode_text(text, f"{self.run.id}/{self._next_seq}")
        self._record(
            CheckpointKind.STEP_COMPLETED, position, name, step_attempt=step_attempt, value=stored
        )
        if is_plain_annotation(annotation) and not isinstance(value, dict | list):
            return value
        round_tripped: T = self._decode(text, annotation)
        return round_tripped

    def _record_step_failure(
        self,
        position: int,
        name: str,
        step_attempt: int,
        error: ErrorInfo,
        policy: RetryPolicy,
        exc: BaseException,
    ) -> datetime | None:
        """Record a failed attempt; raise StepFailedError when it was the last one."""
        if policy.allows_retry(step_attempt, exc) and not error.non_retryable:
            delay = policy.delay(step_attempt, f"{self.run.id}:{position}")
            retry_at = self._clock.now() + delay
            self._record(
                CheckpointKind.STEP_FAILED,
                position,
                name,
                step_attempt=step_attempt,
                error=error,
                wake_at=retry_at,
            )
            return retry_at
        self._record(
            CheckpointKind.STEP_FAILED, position, name, step_attempt=step_attempt, error=error
        )
        raise StepFailedError(name, error.type, error.message, error.non_retryable) from exc

    # -- time ---------------------------------------------------------------------------

    def sleep(self, name: str, duration: timedelta) -> None:
        """Suspend the run for `duration` (any length; no Lambda is held meanwhile)."""
        position = self._take_position()
        entries = self._entries(position, "sleep", name)
        if entries:
            wake_at = entries[0].wake_at
        else:
            self._before_fresh_operation()
            wake_at = self._clock.now() + max(duration, timedelta(0))
            self._record(CheckpointKind.SLEEP_STARTED, position, name, wake_at=wake_at)
        assert wake_at is not None
        if self._clock.now() < wake_at:
            raise self._suspend_until(RunStatus.WAITING, wake_at)

    def sleep_until(self, name: str, when: datetime) -> None:
        """Suspend the run until the instant `when`."""
        position = self._take_position()
        entries = self._entries(position, "sleep", name)
        if entries:
            wake_at = entries[0].wake_at
        else:
            self._before_fresh_operation()
            wake_at = utc(when)
            self._record(CheckpointKind.SLEEP_STARTED, position, name, wake_at=wake_at)
        assert wake_at is not None
        if self._clock.now() < wake_at:
            raise self._suspend_until(RunStatus.WAITING, wake_at)

    # -- events -------------------------------------------------------------------------

    def wait_for_event(self, name: str, timeout: timedelta | None = None) -> Any:
        """Suspend until an event `name` is sent to this run; WaitTimeout after `timeout`."""
        position = self._take_position()
        entries = self._entries(position, "wait_for_event", name)
        timeout_at: datetime | None = None
        for entry in entries:
            if entry.kind is CheckpointKind.EVENT_RECEIVED:
                assert entry.value is not None
                return self._codec.decode(entry.value)
            if entry.kind is CheckpointKind.WAIT_TIMED_OUT:
                raise WaitTimeout(name)
            timeout_at = entry.wake_at
        started = bool(entries)
        if not started:
            self._before_fresh_operation()
            if timeout is not None:
                timeout_at = self._clock.now() + timeout
        event = self._next_unconsumed_event(name)
        if event is not None:
            if self._environment.cancelled():
                self.cancellation = RunCancelled(f"run {self.run.id} was cancelled")
                raise self.cancellation
            self._record(CheckpointKind.EVENT_RECEIVED, position, name, value=event.data)
            self._consume(name)
            return self._codec.decode(event.data)
        if timeout_at is not None and self._clock.now() >= timeout_at:
            self._record(CheckpointKind.WAIT_TIMED_OUT, position, name)
            raise WaitTimeout(name)
        if not started:
            self._record(CheckpointKind.WAIT_STARTED, position, name, wake_at=timeout_at)
        raise self._suspend_until(RunStatus.WAITING, timeout_at, waiting_for=name)

    def _consumed_counts(self) -> dict[str, int]:
        if self._consumed is None:
            counts: dict[str, int] = {}
            for position in range(self._view.length):
                for entry in self._view.entries(position):
                    if entry.kind is CheckpointKind.EVENT_RECEIVED:
                        counts[entry.name] = counts.get(entry.name, 0) + 1
            self._consumed = counts
        return self._consumed

    def _next_unconsumed_event(self, name: str) -> InboxEvent | None:
        skip = self._consumed_counts().get(name, 0)
        for event in self._environment.inbox():
            if event.name == name:
                if skip == 0:
                    return event
                skip -= 1
        return None

    def _consume(self, name: str) -> None:
        counts = self._consumed_counts()
        counts[name] = counts.get(name, 0) + 1

    # -- deterministic values -----------------------------------------------------------

    def _value(self, name: str, make: Callable[[], Any]) -> Any:
        position = self._take_position()
        entries = self._entries(position, "value", name)
        if entries:
            assert entries[0].value is not None
            return loads(entries[0].value)
        self._before_fresh_operation()
        value = make()
        self._record(CheckpointKind.VALUE_RECORDED, position, name, value=dumps(value))
        return value

    def now(self) -> datetime:
        """The current time, recorded: the same instant on every replay."""
        text = self._value("now", lambda: self._clock.now().isoformat())
        return datetime.fromisoformat(text)

    def random(self) -> float:
        """A random float in [0, 1), recorded."""
        value = self._value("random", random_fraction)
        return float(value)

    def uuid4(self) -> uuid.UUID:
        """A random UUID, recorded."""
        return uuid.UUID(self._value("uuid4", lambda: str(random_uuid())))
