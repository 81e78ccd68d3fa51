"""`ctx.step`: run a function once, checkpoint its result, retry it on its policy.

Log entries at a step's position, in order: `step_started` (only for a step that must know
an attempt began: at-most-once, or bounded by a timeout), `step_heartbeat`s, then
`step_failed` per failed attempt (with the retry instant, or none when it failed for good)
or `step_completed` with the value; both ends carry when their attempt began (`started_at`:
the run's timeline draws each attempt from it; replay never reads it) and the attempt's
arguments (`input`: a bounded preview, `durable.operations.step_input`). Replay rule: a
completed step returns its recorded value without running; a started attempt with no end
died with its invocation and counts as a failed attempt (an at-most-once step is never run
again).
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, NoReturn, Protocol, TypeVar

from durable.annotations import step_return_annotation
from durable.engine.outcomes import HandedOver
from durable.engine.retry import NO_RETRY, RetryPolicy, is_non_retryable
from durable.errors import StepFailedError, StepTimeoutError
from durable.operations.attempt import Attempt, Suspend
from durable.operations.step_input import input_preview
from durable.records import CheckpointKind, ErrorInfo, RunStatus
from durable.serialization import JsonData, dumps

T = TypeVar("T")

StepSemantics = Literal["at_least_once", "at_most_once"]

CRASHED_AFTER_START = "CrashedAfterStartError"


class StepRunner(Protocol):
    """A context as `@step` sees it: something with a `step` method (sync or async)."""

    def step(
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
    ) -> Any: ...


# The context of the task running in this thread/coroutine; None inside a step's body.
current_context: ContextVar[StepRunner | None] = ContextVar("durable_current_context", default=None)


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
current_step: ContextVar[StepInfo | None] = ContextVar("durable_current_step", default=None)


@dataclass(slots=True)
class StepPlan:
    """One call of ctx.step between its replay check and its checkpoint."""

    name: str
    position: int
    policy: RetryPolicy
    annotation: object
    timeout: timedelta | None
    heartbeat_timeout: timedelta | None
    compensate: Callable[[Any], Any] | None
    attempt: int = 1
    details: Any = None
    replayed: bool = False
    result: Any = None
    started: datetime | None = None
    input: str | None = None  # the fresh attempt's argument preview, recorded at its end


@dataclass(frozen=True, slots=True)
class _StepTokens:
    context: Token[StepRunner | None]
    step: Token[StepInfo | None]


@lru_cache(maxsize=4096)
def _return_annotation(fn: Callable[..., Any]) -> object:
    """What a step's result is decoded into, fresh and replayed alike; Any when unannotated.

    An annotation that names something undefined (or that pydantic cannot validate) raises
    UnresolvedAnnotationError (AnnotationError) the first time the step is called, before
    it runs: silently decoding a model as a dict would surface later as a confusing error.
    """
    return step_return_annotation(fn)


def plan_step(
    attempt: Attempt,
    name: str,
    fn: Callable[..., Any],
    retry: RetryPolicy | None,
    semantics: StepSemantics,
    timeout: timedelta | None,
    heartbeat_timeout: timedelta | None,
    compensate: Callable[[Any], Any] | None,
) -> StepPlan:
    """Answer the step from the log, or get ready to run its next attempt."""
    running = current_step.get()
    if running is not None:
        raise RuntimeError(
            f"ctx.step({name!r}) called inside step {running.name!r}: "
            "steps do not nest; call the function directly"
        )
    position, entries = attempt.open("step", name)
    plan = StepPlan(
        name=name,
        position=position,
        policy=retry or NO_RETRY,
        annotation=_return_annotation(fn),
        timeout=timeout,
        heartbeat_timeout=heartbeat_timeout,
        compensate=compensate,
    )
    failures = 0
    started_attempts: dict[int, datetime] = {}  # attempt -> its STEP_STARTED entry's time
    retry_at: datetime | None = None
    for entry in entries:
        if entry.kind is CheckpointKind.STEP_COMPLETED:
            assert entry.value is not None
            plan.replayed = True
            plan.result = attempt.decode(entry.value, plan.annotation, name)
            if compensate is not None:
                attempt.compensations.append((name, compensate, plan.result))
            return plan
        if entry.kind is CheckpointKind.STEP_STARTED:
            started_attempts[entry.step_attempt] = entry.at
        elif entry.kind is CheckpointKind.STEP_HEARTBEAT:
            plan.details = attempt.codec.decode(entry.value) if entry.value else None
        elif entry.kind is CheckpointKind.STEP_FAILED:
            started_attempts.pop(entry.step_attempt, None)
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
        retry_at = record_step_failure(
            attempt,
            position,
            name,
            crashed,
            error,
            plan.policy,
            RuntimeError(error.message),
            started_at=started_attempts[crashed],
        )
        failures = crashed
    if retry_at is not None and attempt.clock.now() < retry_at:
        raise attempt.suspend_until(RunStatus.RETRYING, retry_at)
    plan.attempt = failures + 1
    attempt.before_fresh_operation()
    longest = timeout or heartbeat_timeout
    if longest is not None and not attempt.has_room_for(longest):
        raise Suspend(HandedOver())  # a fresh invocation has room for the whole attempt
    marked = semantics == "at_most_once" or timeout is not None or heartbeat_timeout is not None
    if marked:
        attempt.record(CheckpointKind.STEP_STARTED, position, name, step_attempt=plan.attempt)
    return plan


def run_step(
    attempt: Attempt, plan: StepPlan, fn: Callable[..., Any], args: Any, kwargs: Any
) -> JsonData:
    """Run a planned step to its checkpoint (a coroutine function is run to completion)."""
    if plan.replayed:
        return plan.result
    # Before the body runs: what it was given, even if it mutates its arguments.
    plan.input = input_preview(args, kwargs, attempt.callback_expiries)
    tokens = _enter_step(attempt, plan)
    try:
        value = fn(*args, **kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_awaited(value))
        _check_step_timeout(attempt, plan)
    except Exception as exc:
        _fail_step(attempt, plan, tokens, exc)
    return _finish_step(attempt, plan, tokens, value)


async def run_step_async(
    attempt: Attempt, plan: StepPlan, fn: Callable[..., Any], args: Any, kwargs: Any
) -> JsonData:
    """Run a planned step to its checkpoint, awaiting it in the task's event loop."""
    if plan.replayed:
        return plan.result
    # Before the body runs: what it was given, even if it mutates its arguments.
    plan.input = input_preview(args, kwargs, attempt.callback_expiries)
    tokens = _enter_step(attempt, plan)
    try:
        value = fn(*args, **kwargs)
        if inspect.isawaitable(value):
            value = await value
        _check_step_timeout(attempt, plan)
    except Exception as exc:
        _fail_step(attempt, plan, tokens, exc)
    return _finish_step(attempt, plan, tokens, value)


async def _awaited(value: Awaitable[T]) -> T:
    return await value


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
    kind = "HeartbeatTimeoutError" if heartbeat_timeout is not None else "StepTimeoutError"
    return ErrorInfo(
        type=kind,
        message=f"step {name!r} attempt {attempt} started but never finished "
        "(its invocation died or was cut off)",
    )


def _enter_step(attempt: Attempt, plan: StepPlan) -> _StepTokens:
    if plan.heartbeat_timeout is not None:
        attempt.environment.extend_lease(attempt.clock.now() + plan.heartbeat_timeout)
    info = StepInfo(
        id=f"{attempt.run.id}:{plan.name}:{plan.position}",
        name=plan.name,
        attempt=plan.attempt,
        position=plan.position,
        heartbeat_details=plan.details,
        heartbeat_timeout=plan.heartbeat_timeout,
    )
    plan.started = attempt.clock.now()
    return _StepTokens(current_context.set(None), current_step.set(info))


def _check_step_timeout(attempt: Attempt, plan: StepPlan) -> None:
    assert plan.started is not None
    elapsed = attempt.clock.now() - plan.started
    if plan.timeout is not None and elapsed > plan.timeout:
        raise StepTimeoutError(plan.name, plan.timeout, elapsed)


def _step_ended(
    attempt: Attempt, plan: StepPlan, tokens: _StepTokens, error: BaseException | None = None
) -> None:
    # Not in a `finally`: an invocation that dies inside the step must leave the short
    # heartbeat lease in place, so that the run is picked up once it runs out.
    current_context.reset(tokens.context)
    current_step.reset(tokens.step)
    assert plan.started is not None
    failed = None if error is None else type(error).__name__
    attempt.step_ran(plan.name, plan.position, plan.attempt, plan.started, failed)
    if plan.heartbeat_timeout is not None:
        attempt.environment.extend_lease(None)


def _fail_step(attempt: Attempt, plan: StepPlan, tokens: _StepTokens, exc: Exception) -> NoReturn:
    _step_ended(attempt, plan, tokens, exc)
    error = ErrorInfo.from_exception(
        exc, traceback.format_exc(), non_retryable=is_non_retryable(exc, plan.policy)
    )
    retry_at = record_step_failure(
        attempt,
        plan.position,
        plan.name,
        plan.attempt,
        error,
        plan.policy,
        exc,
        plan.started,
        input=plan.input,
    )
    assert retry_at is not None
    raise attempt.suspend_until(RunStatus.RETRYING, retry_at) from None


def _finish_step(attempt: Attempt, plan: StepPlan, tokens: _StepTokens, value: Any) -> JsonData:
    _step_ended(attempt, plan, tokens)
    text = dumps(value)
    stored = attempt.codec.encode_text(text, attempt.blob_key())
    attempt.record(
        CheckpointKind.STEP_COMPLETED,
        plan.position,
        plan.name,
        step_attempt=plan.attempt,
        value=stored,
        started_at=plan.started,
        input=plan.input,
    )
    # Task code gets what every replay will get, never the raw value (a datetime or a
    # tuple would come back as a string or a list on replay only). Decoded after the
    # record: a value that does not fit fails the same way on every replay, and the
    # step's side effect is not repeated.
    result = attempt.decode(text, plan.annotation, plan.name)
    if plan.compensate is not None:
        attempt.compensations.append((plan.name, plan.compensate, result))
    return result


def record_step_failure(
    attempt: Attempt,
    position: int,
    name: str,
    step_attempt: int,
    error: ErrorInfo,
    policy: RetryPolicy,
    exc: BaseException,
    started_at: datetime | None = None,
    *,
    input: str | None = None,
) -> datetime | None:
    """Record a failed attempt; raise StepFailedError when it was the last one.

    `started_at` is when the attempt began and `input` its argument preview (timeline
    metadata; replay never reads them).
    """
    if policy.allows_retry(step_attempt, exc) and not error.non_retryable:
        delay = policy.delay(step_attempt, f"{attempt.run.id}:{position}")
        retry_at = attempt.clock.now() + delay
        attempt.record(
            CheckpointKind.STEP_FAILED,
            position,
            name,
            step_attempt=step_attempt,
            error=error,
            wake_at=retry_at,
            started_at=started_at,
            input=input,
        )
        return retry_at
    attempt.record(
        CheckpointKind.STEP_FAILED,
        position,
        name,
        step_attempt=step_attempt,
        error=error,
        started_at=started_at,
        input=input,
    )
    raise StepFailedError(name, error.type, error.message, error.non_retryable) from exc
