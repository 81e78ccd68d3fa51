"""One attempt of a run: history in, outcome out. No I/O of its own.

The executor replays the task function against the loaded log through a `Context` (or
`AsyncContext`) over an `Attempt`; the operations write each new checkpoint through the
`AttemptEnvironment` as it happens (so a crash loses nothing already done) and the
executor returns what the attempt ended in.
The worker persists the outcome and schedules the next wake-up. A replay that diverges
from the log (however it is noticed: an operation, the task's end, a compensation) ends in
`Held`, never `Failed`: the run waits for fixed code (`durable.worker.holds`).
"""

from __future__ import annotations

import asyncio
import contextvars
import traceback
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from durable.clock import Clock
from durable.context import AsyncContext, Context
from durable.engine.outcomes import AnyOutcome, Completed, Failed, Held, Suspended
from durable.engine.replay import HistoryView
from durable.engine.retry import is_non_retryable
from durable.errors import NonDeterminismError, RunCancelledError, WaitTimeoutError
from durable.logs import bind_run_logging, run_logging
from durable.operations.attempt import Attempt, AttemptEnvironment, RunInfo, Suspend
from durable.operations.compensation import compensate
from durable.operations.observer import AttemptObserver
from durable.operations.steps import current_context
from durable.records import (
    HOLD_NONDETERMINISM,
    Checkpoint,
    CheckpointKind,
    ErrorInfo,
    RunRecord,
    RunStatus,
)
from durable.serialization import as_json_list, dumps, is_plain_annotation, type_adapter
from durable.task import TaskDefinition
from durable.values import ValueCodec


def execute_attempt(
    definition: TaskDefinition[Any, Any],
    run: RunRecord,
    history: list[Checkpoint],
    *,
    environment: AttemptEnvironment,
    clock: Clock,
    codec: ValueCodec,
    deadline: datetime | None = None,
    observer: AttemptObserver | None = None,
) -> AnyOutcome:
    """Replay and continue `run` until it completes, fails, suspends or runs out of time.

    The attempt runs in a context of its own: nothing it sets in context variables (the
    current step, say) outlives it, even when it dies half-way (a simulated crash). The
    task's standard logging is stamped with the run meanwhile (`durable.logs`).
    """
    with run_logging():
        return contextvars.Context().run(
            _execute_attempt,
            definition,
            run,
            history,
            environment=environment,
            clock=clock,
            codec=codec,
            deadline=deadline,
            observer=observer,
        )


def _execute_attempt(
    definition: TaskDefinition[Any, Any],
    run: RunRecord,
    history: list[Checkpoint],
    *,
    environment: AttemptEnvironment,
    clock: Clock,
    codec: ValueCodec,
    deadline: datetime | None = None,
    observer: AttemptObserver | None = None,
) -> AnyOutcome:
    view = HistoryView(run.run_id, history)
    now = clock.now()
    started_at = run.started_at or now
    # A retried run's timeout counts from its retry (`HistoryView.retried_at`).
    timeout_from = view.retried_at or started_at
    run_deadline = timeout_from + definition.timeout if definition.timeout is not None else None
    if run_deadline is not None and now >= run_deadline:
        return Failed(
            ErrorInfo(type="TaskTimeoutError", message="the run exceeded its task timeout"),
            RunStatus.TIMED_OUT,
        )
    retry_at = view.pending_retry_at
    if retry_at is not None and now < retry_at:
        return Suspended(RunStatus.RETRYING, retry_at, attempt=view.attempt)
    attempt = Attempt(
        run=RunInfo(
            id=run.run_id,
            task_id=run.task_id,
            attempt=view.attempt,
            started_at=started_at,
            task_version=run.task_version,
            code_version=run.code_version,
        ),
        view=view,
        environment=environment,
        clock=clock,
        codec=codec,
        deadline=deadline,
        run_deadline=run_deadline,
        observer=observer,
    )
    ctx = AsyncContext(attempt) if definition.is_async else Context(attempt)
    token = current_context.set(ctx)
    # To the end of the attempt's own context: compensations' lines are stamped too.
    bind_run_logging(ctx)
    try:
        payload = definition.parse_payload(codec.decode(run.payload))
        result = definition.fn(ctx, payload)
        if definition.is_async:
            result = asyncio.run(result)
        if attempt.divergence is None:
            view.check_finished(attempt.requested_positions)
    except Suspend as suspension:
        return suspension.outcome
    except Exception as exc:
        return _attempt_failed(definition, attempt, view, exc, clock, run_deadline)
    finally:
        current_context.reset(token)
    if attempt.divergence is not None:
        return _diverged(attempt.divergence)
    if attempt.cancellation is not None:
        return _cancelled()
    return Completed(codec.encode_text(_result_json(definition, result), f"{run.run_id}/result"))


def _result_json(definition: TaskDefinition[Any, Any], result: object) -> str:
    annotation = definition.result_annotation
    if is_plain_annotation(annotation):
        return dumps(result)
    if isinstance(result, Sequence) and not isinstance(result, str | bytes | list | tuple):
        result = as_json_list(result)  # what ctx.map returns, as the list it stands for
    adapter = type_adapter(annotation)
    return dumps(adapter.dump_python(result, mode="json", fallback=as_json_list))


def _diverged(error: NonDeterminismError) -> Held:
    """The code diverged from the log: the run is held for a fix, never failed."""
    return Held(ErrorInfo.from_exception(error), HOLD_NONDETERMINISM)


def _cancelled() -> Failed:
    return Failed(
        ErrorInfo(type="RunCancelledError", message="the run was cancelled"), RunStatus.CANCELLED
    )


def _attempt_failed(
    definition: TaskDefinition[Any, Any],
    attempt: Attempt,
    view: HistoryView,
    exc: Exception,
    clock: Clock,
    run_deadline: datetime | None,
) -> AnyOutcome:
    """The task raised: retry the attempt later, or fail the run for good."""
    if attempt.divergence is not None:
        return _diverged(attempt.divergence)
    if isinstance(exc, NonDeterminismError):
        return _diverged(exc)
    if attempt.cancellation is not None or isinstance(exc, RunCancelledError):
        return _cancelled()
    policy = definition.retry
    # A timed-out wait replays as a timeout on every attempt: retrying cannot help.
    final = (
        isinstance(exc, WaitTimeoutError)
        or is_non_retryable(exc, policy)
        or not policy.allows_retry(view.budget_attempt, exc)  # counted since the last retry
    )
    error = ErrorInfo.from_exception(exc, traceback.format_exc(), non_retryable=final)
    if final:
        # The run fails for good: undo what its completed steps did, newest first.
        try:
            compensate(attempt)
        except Suspend as suspension:
            return suspension.outcome  # a compensation waits for its retry
        except NonDeterminismError as divergence:
            return _diverged(divergence)
        except RunCancelledError:
            return _cancelled()
        return Failed(error)
    now = clock.now()
    retry_at = now + policy.delay(view.budget_attempt, f"{attempt.run.id}:attempt")
    checkpoint = Checkpoint(
        seq=attempt.next_seq,
        kind=CheckpointKind.ATTEMPT_FAILED,
        op=-1,
        name="attempt",
        task_attempt=view.attempt,
        at=now,
        error=error,
        wake_at=retry_at,
    )
    try:
        attempt.append_raw(checkpoint)
    except Suspend as suspension:
        return suspension.outcome
    wake_at = retry_at if run_deadline is None else min(retry_at, run_deadline)
    return Suspended(RunStatus.RETRYING, wake_at, attempt=view.attempt + 1)
