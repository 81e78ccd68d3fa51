"""`Context`: what task code calls. Every durable operation goes through here.

Each call is an operation at the next position; the replay view answers it from the log
when it can (a completed step returns its recorded result without running), otherwise it
executes and records exactly one checkpoint before returning. Suspensions (sleep, wait,
retry backoff, hand-over) are raised as `Suspend`, a BaseException, so that a task's
`except Exception` can never swallow one.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NoReturn, Protocol, TypeVar, cast

from pydantic import ValidationError

from durable import batch_results
from durable.batch_results import (
    BatchReference,
    BatchResults,
    recorded_outcome,
    referenced_outcome,
)
from durable.clock import Clock, utc
from durable.engine.outcomes import Abandoned, AnyOutcome, Failed, HandedOver, Suspended
from durable.engine.replay import HistoryView
from durable.engine.retry import NO_RETRY, RetryPolicy, is_non_retryable
from durable.errors import (
    BatchFailedError,
    CallbackFailedError,
    ChildRunFailedError,
    ConflictError,
    NonDeterminismError,
    RunCancelled,
    StepFailedError,
    StepTimeoutError,
    WaitTimeout,
)
from durable.ids import child_run_id, new_callback_token, random_fraction, random_uuid
from durable.inbox import InboxLedger, unnumbered_consumptions
from durable.logs import RunLogger
from durable.names import batch_wait, callback_wait, child_wait, event_name
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
from durable.serialization import SerializationError, dumps, loads, revive
from durable.task import StepSemantics, current_context, step_return_annotation
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


@dataclass(slots=True)
class StepInfo:
    """The step running now: its stable id, attempt and heartbeat state."""

    id: str
    name: str
    attempt: int
    position: int
    heartbeat_details: Any
    heartbeat_timeout: timedelta | None


# The step running in this thread or asyncio task (each gathered step has its own).
_current_step: ContextVar[StepInfo | None] = ContextVar("durable_current_step", default=None)


@dataclass(slots=True)
class _StepPlan:
    """One call of ctx.step between its replay check and its checkpoint."""

    name: str
    position: int
    policy: RetryPolicy
    annotation: Any
    timeout: timedelta | None
    heartbeat_timeout: timedelta | None
    compensate: Callable[[Any], Any] | None
    attempt: int = 1
    details: Any = None
    replayed: bool = False
    result: Any = None
    started: datetime | None = None


@dataclass(frozen=True, slots=True)
class _StepTokens:
    context: Token[Context | None]
    step: Token[StepInfo | None]


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


HEARTBEAT_RECORD_INTERVAL = timedelta(seconds=5)
COMPENSATION_RETRY = RetryPolicy(max_attempts=3)


def _lost_attempt_error(
    name: str, attempt: int, semantics: str, heartbeat_timeout: timedelta | None
) -> ErrorInfo:
    if semantics == "at_most_once":
        # Final and non-retryable, for the step and for the task: the side effect may have
        # happened, and an at-most-once step never runs it a second time.
        return ErrorInfo(
            type=CRASHED_AFTER_START,
            message=f"at-most-once step {name!r} started (attempt {attempt}) and its "
            "invocation died before it finished; it is not run again",
            non_retryable=True,
        )
    kind = "HeartbeatTimeout" if heartbeat_timeout is not None else "StepTimeout"
    return ErrorInfo(
        type=kind,
        message=f"step {name!r} attempt {attempt} started but never finished "
        "(its invocation died or was cut off)",
    )


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
    """What a step's result is decoded into, fresh and replayed alike; Any when unannotated.

    An annotation that names something undefined (or that pydantic cannot validate) raises
    UnresolvedAnnotationError (AnnotationError) the first time the step is called, before
    it runs: silently decoding a model as a dict would surface later as a confusing error.
    """
    return step_return_annotation(fn)


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
        self._compensations: list[tuple[str, Callable[[Any], Any], Any]] = []
        self._last_heartbeat: datetime | None = None
        self._invocation_start = clock.now()
        # token -> its timeout, for every callback this execution created or replayed
        self._callback_expiries: dict[str, datetime | None] = {}
        self._ledger: InboxLedger | None = None
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
        step = _current_step.get()
        return step.name if step is not None else None

    @property
    def requested_positions(self) -> int:
        return self._position

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def append_raw(self, checkpoint: Checkpoint) -> None:
        """Persist a checkpoint at the next slot; losing the slot abandons the invocation."""
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
        inbox_id: str | None = None,
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
            inbox_id=inbox_id,
        )
        self.append_raw(checkpoint)
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

    def _decode(self, stored: str, annotation: Any, step: str) -> Any:
        """A step's value as task code sees it, fresh and replayed alike: the stored JSON
        (text, or a blob reference) revived into the step's return annotation."""
        try:
            return revive(self._codec.decode(stored), annotation)
        except ValidationError as exc:
            raise SerializationError(
                f"the value of step {step!r} does not fit its return annotation: {exc}"
            ) from exc

    # -- steps --------------------------------------------------------------------------

    def step(
        self,
        name: str,
        fn: Callable[..., T],
        *args: Any,
        retry: RetryPolicy | None = None,
        semantics: StepSemantics = "at_least_once",
        timeout: timedelta | None = None,
        heartbeat_timeout: timedelta | None = None,
        compensate: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> T:
        """Run `fn(*args, **kwargs)` once and checkpoint its result (or its final error).

        `timeout` (start to close) and `heartbeat_timeout` bound one attempt: an attempt that
        outlives them, or that dies with its invocation, is a failed attempt and consumes the
        retry budget. `compensate(result)` runs, as a step, if the run later fails for good.
        A coroutine function is run to completion (in an async task, use `await ctx.step`).
        """
        plan = self._plan_step(name, fn, retry, semantics, timeout, heartbeat_timeout, compensate)
        if plan.replayed:
            return cast(T, plan.result)
        token = self._enter_step(plan)
        try:
            value = fn(*args, **kwargs)
            if inspect.isawaitable(value):
                value = asyncio.run(_awaited(value))
            self._check_step_timeout(plan)
        except Exception as exc:
            self._fail_step(plan, token, exc)
        return cast(T, self._finish_step(plan, token, value))

    def _plan_step(
        self,
        name: str,
        fn: Callable[..., Any],
        retry: RetryPolicy | None,
        semantics: StepSemantics,
        timeout: timedelta | None,
        heartbeat_timeout: timedelta | None,
        compensate: Callable[[Any], Any] | None,
    ) -> _StepPlan:
        """Answer the step from the log, or get ready to run its next attempt."""
        current = _current_step.get()
        if current is not None:
            raise RuntimeError(
                f"ctx.step({name!r}) called inside step {current.name!r}: "
                "steps do not nest; call the function directly"
            )
        position = self._take_position()
        entries = self._entries(position, "step", name)
        plan = _StepPlan(
            name=name,
            position=position,
            policy=retry or NO_RETRY,
            annotation=_return_annotation(fn),
            timeout=timeout,
            heartbeat_timeout=heartbeat_timeout,
            compensate=compensate,
        )
        failures = 0
        started_attempts: set[int] = set()
        retry_at: datetime | None = None
        for entry in entries:
            if entry.kind is CheckpointKind.STEP_COMPLETED:
                assert entry.value is not None
                plan.replayed = True
                plan.result = self._decode(entry.value, plan.annotation, name)
                if compensate is not None:
                    self._compensations.append((name, compensate, plan.result))
                return plan
            if entry.kind is CheckpointKind.STEP_STARTED:
                started_attempts.add(entry.step_attempt)
            elif entry.kind is CheckpointKind.STEP_HEARTBEAT:
                plan.details = self._codec.decode(entry.value) if entry.value else None
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
            # The attempt was started and never finished: its invocation died (a crash, or
            # cut off by Lambda's limit). It counts as a failed attempt; an at-most-once step
            # never runs its side effect a second time within it.
            crashed = max(started_attempts)
            error = _lost_attempt_error(name, crashed, semantics, heartbeat_timeout)
            retry_at = self._record_step_failure(
                position, name, crashed, error, plan.policy, RuntimeError(error.message)
            )
            failures = crashed
        if retry_at is not None and self._clock.now() < retry_at:
            raise self._suspend_until(RunStatus.RETRYING, retry_at)
        plan.attempt = failures + 1
        self._before_fresh_operation()
        longest = timeout or heartbeat_timeout
        if (
            longest is not None
            and self._deadline is not None
            and self._clock.now() + longest > self._deadline
            and self._deadline - self._invocation_start > longest
        ):
            raise Suspend(HandedOver())  # a fresh invocation has room for the whole attempt
        marked = semantics == "at_most_once" or timeout is not None or heartbeat_timeout is not None
        if marked:
            self._record(CheckpointKind.STEP_STARTED, position, name, step_attempt=plan.attempt)
        return plan

    def _enter_step(self, plan: _StepPlan) -> _StepTokens:
        if plan.heartbeat_timeout is not None:
            self._environment.extend_lease(self._clock.now() + plan.heartbeat_timeout)
        info = StepInfo(
            id=f"{self.run.id}:{plan.name}:{plan.position}",
            name=plan.name,
            attempt=plan.attempt,
            position=plan.position,
            heartbeat_details=plan.details,
            heartbeat_timeout=plan.heartbeat_timeout,
        )
        plan.started = self._clock.now()
        return _StepTokens(current_context.set(None), _current_step.set(info))

    def _check_step_timeout(self, plan: _StepPlan) -> None:
        assert plan.started is not None
        elapsed = self._clock.now() - plan.started
        if plan.timeout is not None and elapsed > plan.timeout:
            raise StepTimeoutError(plan.name, plan.timeout, elapsed)

    def _step_ended(self, plan: _StepPlan, tokens: _StepTokens) -> None:
        # Not in a `finally`: an invocation that dies inside the step must leave the short
        # heartbeat lease in place, so that the run is picked up once it runs out.
        current_context.reset(tokens.context)
        _current_step.reset(tokens.step)
        if plan.heartbeat_timeout is not None:
            self._environment.extend_lease(None)

    def _fail_step(self, plan: _StepPlan, tokens: _StepTokens, exc: Exception) -> NoReturn:
        self._step_ended(plan, tokens)
        error = ErrorInfo.from_exception(
            exc, traceback.format_exc(), non_retryable=is_non_retryable(exc, plan.policy)
        )
        retry_at = self._record_step_failure(
            plan.position, plan.name, plan.attempt, error, plan.policy, exc
        )
        assert retry_at is not None
        raise self._suspend_until(RunStatus.RETRYING, retry_at) from None

    def _finish_step(self, plan: _StepPlan, tokens: _StepTokens, value: Any) -> Any:
        self._step_ended(plan, tokens)
        self.executed_steps += 1
        text = dumps(value)
        stored = self._codec.encode_text(text, f"{self.run.id}/{self._next_seq}")
        self._record(
            CheckpointKind.STEP_COMPLETED,
            plan.position,
            plan.name,
            step_attempt=plan.attempt,
            value=stored,
        )
        # Task code gets what every replay will get, never the raw value (a datetime or a
        # tuple would come back as a string or a list on replay only). Decoded after the
        # record: a value that does not fit fails the same way on every replay, and the
        # step's side effect is not repeated.
        result = self._decode(text, plan.annotation, plan.name)
        if plan.compensate is not None:
            self._compensations.append((plan.name, plan.compensate, result))
        return result

    # -- inside a step ------------------------------------------------------------------

    @property
    def step_id(self) -> str:
        """`run_id:step-name:position` of the running step: the same on every attempt and
        replay. Hand it to outside APIs as an idempotency key (a payment provider's, say)."""
        return self._require_step("step_id").id

    @property
    def heartbeat_details(self) -> Any:
        """The details of the last heartbeat of an earlier attempt of this step, or None."""
        return self._require_step("heartbeat_details").heartbeat_details

    def heartbeat(self, details: Any = None) -> None:
        """Report progress from a long step; renews the step's heartbeat timeout and keeps
        `details` for the next attempt should this one die."""
        step = self._require_step("heartbeat")
        now = self._clock.now()
        if step.heartbeat_timeout is not None:
            self._environment.extend_lease(now + step.heartbeat_timeout)
        if (
            self._last_heartbeat is not None
            and now - self._last_heartbeat < HEARTBEAT_RECORD_INTERVAL
            and details == step.heartbeat_details
        ):
            return
        self._last_heartbeat = now
        step.heartbeat_details = details
        self._record(
            CheckpointKind.STEP_HEARTBEAT,
            step.position,
            step.name,
            step_attempt=step.attempt,
            value=self._codec.encode(details, f"{self.run.id}/{self._next_seq}"),
        )

    def _require_step(self, what: str) -> StepInfo:
        step = _current_step.get()
        if step is None:
            raise RuntimeError(f"ctx.{what} is only available inside a running step")
        return step

    # -- compensation -------------------------------------------------------------------

    def compensate(self) -> list[tuple[str, ErrorInfo | None]]:
        """Run the compensations of completed steps in reverse order, each a step itself.

        A compensation that fails for good is recorded and the others still run.
        """
        outcomes: list[tuple[str, ErrorInfo | None]] = []
        while self._compensations:
            name, undo, result = self._compensations.pop()
            try:
                self.step(f"compensate:{name}", undo, result, retry=COMPENSATION_RETRY)
            except StepFailedError as exc:
                outcomes.append((name, ErrorInfo(type=exc.error_type, message=exc.message)))
            else:
                outcomes.append((name, None))
        return outcomes

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
        self._sleep(name, lambda: self._clock.now() + max(duration, timedelta(0)))

    def sleep_until(self, name: str, when: datetime) -> None:
        """Suspend the run until the instant `when`."""
        self._sleep(name, lambda: utc(when))

    def _sleep(self, name: str, wake_at_if_fresh: Callable[[], datetime]) -> None:
        position = self._take_position()
        entries = self._entries(position, "sleep", name)
        if entries:
            wake_at = entries[0].wake_at
        else:
            self._before_fresh_operation()
            wake_at = wake_at_if_fresh()
            self._record(CheckpointKind.SLEEP_STARTED, position, name, wake_at=wake_at)
        assert wake_at is not None
        if self._clock.now() < wake_at:
            raise self._suspend_until(RunStatus.WAITING, wake_at)

    # -- events -------------------------------------------------------------------------

    def wait_for_event(self, name: str, timeout: timedelta | None = None) -> Any:
        """Suspend until an event `name` is sent to this run; WaitTimeout after `timeout`.

        Names are 1 to 128 printable characters without a colon (InvalidNameError otherwise).
        """
        event_name(name)
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
            self._record(
                CheckpointKind.EVENT_RECEIVED,
                position,
                name,
                value=event.data,
                inbox_id=event.inbox_id,
            )
            self._inbox_ledger().consume(event)
            return self._codec.decode(event.data)
        if timeout_at is not None and self._clock.now() >= timeout_at:
            self._record(CheckpointKind.WAIT_TIMED_OUT, position, name)
            raise WaitTimeout(name)
        if not started:
            self._record(CheckpointKind.WAIT_STARTED, position, name, wake_at=timeout_at)
        raise self._suspend_until(RunStatus.WAITING, timeout_at, waiting_for=name)

    def _inbox_ledger(self) -> InboxLedger:
        if self._ledger is None:
            visible = (
                entry
                for position in range(self._view.length)
                for entry in self._view.entries(position)
            )
            self._ledger = InboxLedger(
                self._view.consumed_inbox_ids, unnumbered_consumptions(visible)
            )
        return self._ledger

    def _next_unconsumed_event(self, name: str) -> InboxEvent | None:
        return self._inbox_ledger().next_event(name, self._environment.inbox())

    # -- versioning -----------------------------------------------------------------------

    def patched(self, change_id: str) -> bool:
        """True where the code after a change runs; False when replaying a run recorded before.

        Write `if ctx.patched("new-charge"): <new code> else: <old code>` so that one
        deployment serves runs started before and after the change (Temporal's patching).
        A run that reaches this point fresh records a marker and takes the new path on every
        replay; a run whose log holds another operation here took the old path.
        """
        position = self._position
        entries = self._view.entries(position)
        if entries:
            first = entries[0]
            if first.kind is CheckpointKind.PATCH_MARKER and first.name == change_id:
                self._take_position()
                return True
            return False  # recorded before the change: the old code's operation is here
        self._take_position()
        self._record(CheckpointKind.PATCH_MARKER, position, change_id)
        return True

    # -- child runs ---------------------------------------------------------------------

    def _start_child(self, task_id: str, payload: Any, position: int) -> str:
        self._before_fresh_operation()
        key = f"{self.run.id}:{self.run.attempt}:{position}"
        return self._environment.start_child(task_id, payload, key, self.run.id)

    def invoke(self, task_id: str, payload: Any = None) -> Any:
        """Start a child run of `task_id`, suspend until it ends, return its result.

        Raises ChildRunFailedError when the child fails, is cancelled or times out. The
        parent is woken when the child ends (no polling); cancelling the parent cancels it.
        """
        position = self._take_position()
        entries = self._entries(position, "invoke", task_id)
        child_id: str | None = None
        for entry in entries:
            if entry.kind is CheckpointKind.CHILD_COMPLETED:
                assert entry.value is not None
                return self._codec.decode(entry.value)
            if entry.kind is CheckpointKind.CHILD_FAILED:
                assert entry.error is not None
                raise ChildRunFailedError(
                    loads(entries[0].value or "null"),
                    # The child's end status (logs written before it was recorded: FAILED).
                    loads(entry.value) if entry.value is not None else str(RunStatus.FAILED),
                    entry.error.type,
                    entry.error.message,
                )
            if entry.kind is CheckpointKind.CHILD_STARTED:
                child_id = loads(entry.value or "null")
        if child_id is None:
            child_id = self._start_child(task_id, payload, position)
            self._record(CheckpointKind.CHILD_STARTED, position, task_id, value=dumps(child_id))
        child = self._environment.get_run(child_id)
        if child is None or not child.status.is_terminal:
            raise self._suspend_until(RunStatus.WAITING, None, waiting_for=child_wait(child_id))
        if child.status is RunStatus.COMPLETED:
            result = child.result or "null"
            self._record(CheckpointKind.CHILD_COMPLETED, position, task_id, value=result)
            return self._codec.decode(result)
        error = child.error or ErrorInfo(type=str(child.status), message="the child run ended")
        self._record(
            CheckpointKind.CHILD_FAILED,
            position,
            task_id,
            value=dumps(str(child.status)),
            error=error,
        )
        raise ChildRunFailedError(child_id, str(child.status), error.type, error.message)

    def trigger(self, task_id: str, payload: Any = None) -> str:
        """Start a child run of `task_id` and go on at once (fire and forget); its run id."""
        position = self._take_position()
        entries = self._entries(position, "trigger", task_id)
        if entries:
            return str(loads(entries[0].value or "null"))
        child_id = self._start_child(task_id, payload, position)
        self._record(CheckpointKind.CHILD_TRIGGERED, position, task_id, value=dumps(child_id))
        return child_id

    # -- fan-out ------------------------------------------------------------------------

    def map(
        self,
        task_id: str,
        items: Sequence[Any],
        *,
        max_concurrency: int = 50,
        tolerated_failures: int = 0,
    ) -> list[Any]:
        """Run `task_id` once per item as child runs; their results in input order.

        At most `max_concurrency` children run at a time. Up to `tolerated_failures`
        children may fail (their places hold a ChildRunFailedError); more raise
        BatchFailedError and cancel the children still running. The parent sleeps until the
        batch is decided, whatever its size: children report to the batch, not to the log.
        """
        result: list[Any] = self._batch(
            f"map:{task_id}",
            [(task_id, item) for item in items],
            max_concurrency,
            tolerated_failures,
            first_success=False,
        )
        return result

    def parallel(
        self,
        calls: Sequence[tuple[str, Any]],
        *,
        max_concurrency: int | None = None,
        tolerated_failures: int = 0,
        first_success: bool = False,
        name: str = "parallel",
    ) -> Any:
        """Run child runs `(task_id, payload)` side by side; their results in input order.

        With `first_success`, returns the result of the first child (in input order) that
        succeeded once any has, and cancels the rest; BatchFailedError if none succeeds.
        """
        return self._batch(
            name,
            list(calls),
            max_concurrency or max(len(calls), 1),
            tolerated_failures if not first_success else max(len(calls) - 1, 0),
            first_success=first_success,
        )

    def _batch(
        self,
        name: str,
        calls: list[tuple[str, Any]],
        max_concurrency: int,
        tolerated_failures: int,
        *,
        first_success: bool,
    ) -> Any:
        if max_concurrency < 1 or tolerated_failures < 0:
            raise ValueError("max_concurrency must be >= 1 and tolerated_failures >= 0")
        if not calls:
            if first_success:
                raise BatchFailedError(name, [], 0)
            return []
        position = self._take_position()
        entries = self._entries(position, "batch", name)
        for entry in entries:
            if entry.kind in (CheckpointKind.BATCH_COMPLETED, CheckpointKind.BATCH_FAILED):
                return self._batch_end(name, entry, first_success)
        attempt = self.run.attempt
        if not entries:
            self._before_fresh_operation()
            total = len(calls)
            self._environment.start_batch(
                BatchRecord(
                    run_id=self.run.id,
                    position=position,
                    task_attempt=attempt,
                    total=total,
                    calls=self._codec.encode(calls, f"{self.run.id}/batch-{attempt}-{position}"),
                    max_concurrency=min(max_concurrency, total),
                    tolerated_failures=tolerated_failures,
                    first_success=first_success,
                )
            )
            self._record(
                CheckpointKind.BATCH_STARTED, position, name, value=dumps({"total": total})
            )
        batch = self._environment.get_batch(self.run.id, attempt, position)
        if batch is None or not batch.decided:
            raise self._suspend_until(
                RunStatus.WAITING, None, waiting_for=batch_wait(attempt, position)
            )
        reference, listed = self._decided_batch(batch)
        failed = batch.failed > batch.tolerated_failures or (first_success and batch.succeeded == 0)
        kind = CheckpointKind.BATCH_FAILED if failed else CheckpointKind.BATCH_COMPLETED
        entry = self._record(
            kind,
            position,
            name,
            value=self._codec.encode(reference.to_value(), f"{self.run.id}/{self._next_seq}"),
        )
        if reference.ended is not None:
            started = min(batch.total, len(reference.ended) + batch.max_concurrency)
            unfinished = [
                child_run_id(self.run.id, attempt, position, index)
                for index in range(started)
                if index not in reference.ended
            ]
            if unfinished:
                self._environment.cancel_runs(unfinished)  # no longer needed
        return self._batch_end(name, entry, first_success, listed)

    def _decided_batch(
        self, batch: BatchRecord
    ) -> tuple[BatchReference, list[BatchItemResult] | None]:
        """The reference the batch's end entry keeps (counts, and which children count),
        and the result items if it read them.

        When every child has ended (the counters move with the result items, in one
        write) nothing more is read; otherwise the result items are, so that a child
        ending after the decision changes nothing on replay.
        """
        reference = BatchReference(
            run_id=batch.run_id,
            task_attempt=batch.task_attempt,
            position=batch.position,
            total=batch.total,
            succeeded=batch.succeeded,
            failed=batch.failed,
        )
        if batch.succeeded + batch.failed >= batch.total:
            return reference, None
        ended: list[BatchItemResult] = []
        while True:
            start = ended[-1].index + 1 if ended else 0
            page_size = batch_results.PAGE_SIZE
            page = self._environment.batch_results(
                batch.run_id, batch.task_attempt, batch.position, start, page_size
            )
            ended.extend(page)
            if len(page) < page_size:
                break
        decided = replace(
            reference,
            succeeded=sum(1 for item in ended if item.ok),
            failed=sum(1 for item in ended if not item.ok),
            ended=frozenset(item.index for item in ended),
        )
        return decided, ended

    def _batch_end(
        self,
        name: str,
        entry: Checkpoint,
        first_success: bool,
        known: list[BatchItemResult] | None = None,
    ) -> Any:
        """The batch's outcome from its end entry: by reference, or (old logs) by copy."""
        assert entry.value is not None
        value = self._codec.decode(entry.value)
        reference = BatchReference.from_value(value)
        if reference is None:
            return recorded_outcome(entry.name, value, first_success, entry.kind)
        environment = self._environment

        def pages(start: int, limit: int) -> list[BatchItemResult]:
            return environment.batch_results(
                reference.run_id, reference.task_attempt, reference.position, start, limit
            )

        results = BatchResults(reference, pages, self._codec.decode, known=known)
        return referenced_outcome(name, results, first_success, entry.kind)

    # -- callbacks ----------------------------------------------------------------------

    def create_callback(self, name: str, timeout: timedelta | None = None) -> str:
        """A single-use token an outside system completes with `POST /callbacks/{token}`.

        The token carries 192 random bits and says nothing about the run. Hand it over (in
        a step), then `wait_for_callback(name, token=token)`.
        """
        position = self._take_position()
        entries = self._entries(position, "callback", name)
        if entries:
            token = str(loads(entries[0].value or "null"))
            self._callback_expiries[token] = entries[0].wake_at
            return token
        self._before_fresh_operation()
        token = new_callback_token()
        expires_at = self._clock.now() + timeout if timeout is not None else None
        self._environment.create_callback(token, self.run.id, name, expires_at)
        self._callback_expiries[token] = expires_at
        self._record(
            CheckpointKind.CALLBACK_CREATED, position, name, value=dumps(token), wake_at=expires_at
        )
        return token

    def wait_for_callback(
        self,
        name: str,
        submit: Callable[[str], Any] | None = None,
        timeout: timedelta | None = None,
        *,
        token: str | None = None,
    ) -> Any:
        """Suspend until the callback is completed; its data (CallbackFailedError on an error,
        WaitTimeout after `timeout`). Without `token`, creates the callback first and calls
        `submit(token)` as a step, to hand the token to the outside system."""
        if token is None:
            token = self.create_callback(name, timeout)
            if submit is not None:
                self.step(f"submit:{name}", submit, token)
        expires_at = self._callback_expiries.get(token)
        position = self._take_position()
        entries = self._entries(position, "callback_wait", name)
        for entry in entries:
            if entry.kind is CheckpointKind.CALLBACK_COMPLETED:
                assert entry.value is not None
                return self._codec.decode(entry.value)
            if entry.kind is CheckpointKind.CALLBACK_FAILED:
                assert entry.error is not None
                raise CallbackFailedError(name, entry.error.message)
            if entry.kind is CheckpointKind.CALLBACK_TIMED_OUT:
                raise WaitTimeout(name)
        inbox_name = callback_wait(token)
        event = self._next_unconsumed_event(inbox_name)
        if event is not None:
            outcome = self._codec.decode(event.data)
            if isinstance(outcome, dict) and "error" in outcome:
                message = dumps(outcome["error"])
                self._record(
                    CheckpointKind.CALLBACK_FAILED,
                    position,
                    name,
                    error=ErrorInfo(type="CallbackFailedError", message=message),
                    inbox_id=event.inbox_id,
                )
                self._inbox_ledger().consume(event)
                raise CallbackFailedError(name, message)
            data = outcome.get("data") if isinstance(outcome, dict) else None
            self._record(
                CheckpointKind.CALLBACK_COMPLETED,
                position,
                name,
                value=dumps(data),
                inbox_id=event.inbox_id,
            )
            self._inbox_ledger().consume(event)
            return data
        if expires_at is not None and self._clock.now() >= expires_at:
            self._record(CheckpointKind.CALLBACK_TIMED_OUT, position, name)
            raise WaitTimeout(name)
        raise self._suspend_until(RunStatus.WAITING, expires_at, waiting_for=inbox_name)

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


class AsyncContext(Context):
    """The context of an `async def` task: the operations that wait are awaited.

    `await ctx.step(...)`, `await ctx.sleep(...)`, `await ctx.wait_for_event(...)`,
    `await ctx.invoke(...)`, `await ctx.wait_for_callback(...)`; the rest (`now`, `random`,
    `uuid4`, `patched`, `trigger`, `create_callback`) are plain calls. Each operation takes its
    position when it is *called*, so steps gathered with `asyncio.gather` get the same
    identities on every replay whatever order they finish in, and run concurrently.
    """

    def step(  # type: ignore[override]
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        retry: RetryPolicy | None = None,
        semantics: StepSemantics = "at_least_once",
        timeout: timedelta | None = None,
        heartbeat_timeout: timedelta | None = None,
        compensate: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Awaitable[Any]:
        try:
            plan = self._plan_step(
                name, fn, retry, semantics, timeout, heartbeat_timeout, compensate
            )
        except BaseException as exc:
            return _raising(exc)  # raised where the caller awaits, as an async call would
        return self._run_step(plan, fn, args, kwargs)

    async def _run_step(
        self, plan: _StepPlan, fn: Callable[..., Any], args: Any, kwargs: Any
    ) -> Any:
        if plan.replayed:
            return plan.result
        tokens = self._enter_step(plan)
        try:
            value = fn(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
            self._check_step_timeout(plan)
        except Exception as exc:
            self._fail_step(plan, tokens, exc)
        return self._finish_step(plan, tokens, value)

    def sleep(self, name: str, duration: timedelta) -> Awaitable[None]:  # type: ignore[override]
        return _deferred(super().sleep, name, duration)

    def sleep_until(self, name: str, when: datetime) -> Awaitable[None]:  # type: ignore[override]
        return _deferred(super().sleep_until, name, when)

    def wait_for_event(self, name: str, timeout: timedelta | None = None) -> Awaitable[Any]:
        return _deferred(super().wait_for_event, name, timeout)

    def invoke(self, task_id: str, payload: Any = None) -> Awaitable[Any]:
        return _deferred(super().invoke, task_id, payload)

    def map(  # type: ignore[override]
        self,
        task_id: str,
        items: Sequence[Any],
        *,
        max_concurrency: int = 50,
        tolerated_failures: int = 0,
    ) -> Awaitable[list[Any]]:
        return _deferred(
            lambda: Context.map(
                self,
                task_id,
                items,
                max_concurrency=max_concurrency,
                tolerated_failures=tolerated_failures,
            )
        )

    def parallel(
        self,
        calls: Sequence[tuple[str, Any]],
        *,
        max_concurrency: int | None = None,
        tolerated_failures: int = 0,
        first_success: bool = False,
        name: str = "parallel",
    ) -> Awaitable[Any]:
        return _deferred(
            lambda: Context.parallel(
                self,
                calls,
                max_concurrency=max_concurrency,
                tolerated_failures=tolerated_failures,
                first_success=first_success,
                name=name,
            )
        )

    def wait_for_callback(
        self,
        name: str,
        submit: Callable[[str], Any] | None = None,
        timeout: timedelta | None = None,
        *,
        token: str | None = None,
    ) -> Awaitable[Any]:
        return _deferred(
            lambda: Context.wait_for_callback(self, name, submit, timeout, token=token)
        )


async def _raising(exc: BaseException) -> Any:
    raise exc


def _deferred(operation: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """Run a waiting operation now (so it takes its position now); await its outcome."""
    try:
        value = operation(*args)
    except BaseException as exc:
        return _raising(exc)
    return _resolved(value)


async def _resolved(value: Any) -> Any:
    return value
