"""`Context` and `AsyncContext`: what task code calls. Read this module to learn the API.

Every method is one durable operation, taken at the next position of the run's log: on
replay the log answers it (a completed step returns its recorded result without running),
otherwise it executes and records its checkpoint before returning. The operations
themselves live in `durable.operations`, one module per kind; this module is their facade.

An `async def` task gets an `AsyncContext`, whose waiting operations are awaited; a plain
task gets a `Context`. Both share everything that does not wait (`BaseContext`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar, cast, overload

from durable.clock import utc
from durable.engine.retry import RetryPolicy
from durable.logs import RunLogger
from durable.operations import (
    callbacks,
    children,
    compensation,
    events,
    fanout,
    heartbeats,
    patching,
    recorded,
    sleeps,
    steps,
)
from durable.operations.attempt import Attempt, RunInfo
from durable.operations.children import ChildTask
from durable.operations.fanout import DEFAULT_MAP_CONCURRENCY
from durable.operations.steps import StepSemantics
from durable.records import ErrorInfo
from durable.serialization import JsonData
from durable.task import TaskDefinition

T = TypeVar("T")
PayloadT = TypeVar("PayloadT")
ResultT = TypeVar("ResultT")


class BaseContext:
    """What every task's context offers: the run, its logger, recorded values, versioning,
    fire-and-forget children, callbacks, and what a running step can ask."""

    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt
        self._logger: RunLogger | None = None

    @property
    def run(self) -> RunInfo:
        """The run: id, task id, attempt, start instant, task and code versions."""
        return self._attempt.run

    @property
    def is_replaying(self) -> bool:
        """True while the code runs where an earlier invocation already ran (logs stay quiet)."""
        return self._attempt.is_replaying

    @property
    def logger(self) -> RunLogger:
        """A Powertools logger bound to run id, task id, attempt and step; silent on replay."""
        if self._logger is None:
            self._logger = RunLogger(self)
        return self._logger

    @property
    def current_step(self) -> str | None:
        """The name of the step running now, or None outside a step."""
        step = steps.current_step.get()
        return step.name if step is not None else None

    # -- inside a step ------------------------------------------------------------------

    @property
    def step_id(self) -> str:
        """`run_id:step-name:position` of the running step: the same on every attempt and
        replay. Hand it to outside APIs as an idempotency key (a payment provider's, say)."""
        return heartbeats.running_step("step_id").id

    @property
    def heartbeat_details(self) -> JsonData:
        """The details of the last heartbeat of an earlier attempt of this step, or None."""
        return heartbeats.running_step("heartbeat_details").heartbeat_details

    def heartbeat(self, details: Any = None) -> None:
        """Report progress from a long step; renews the step's heartbeat timeout and keeps
        `details` for the next attempt should this one die."""
        heartbeats.heartbeat(self._attempt, details)

    # -- versioning ---------------------------------------------------------------------

    def patched(self, change_id: str) -> bool:
        """True where the code after a change runs; False when replaying a run recorded before.

        Write `if ctx.patched("new-charge"): <new code> else: <old code>` so that one
        deployment serves runs started before and after the change (Temporal's patching).
        A run that reaches this point fresh records a marker and takes the new path on every
        replay; a run whose log holds another operation here took the old path.
        """
        return patching.patched(self._attempt, change_id)

    # -- children that run on their own -------------------------------------------------

    def trigger(self, task: ChildTask, payload: Any = None) -> str:
        """Start a child run of `task` (its handle or id) and go on at once; its run id."""
        return children.trigger(self._attempt, children.task_id(task), payload)

    # -- callbacks ----------------------------------------------------------------------

    def create_callback(self, name: str, timeout: timedelta | None = None) -> str:
        """A single-use token an outside system completes with `POST /callbacks/{token}`.

        The token carries 192 random bits and says nothing about the run. Hand it over (in
        a step), then `wait_for_callback(name, token=token)`.
        """
        return callbacks.create_callback(self._attempt, name, timeout)

    # -- deterministic values -----------------------------------------------------------

    def now(self) -> datetime:
        """The current time, recorded: the same instant on every replay."""
        return recorded.now(self._attempt)

    def random(self) -> float:
        """A random float in [0, 1), recorded."""
        return recorded.random(self._attempt)

    def uuid4(self) -> uuid.UUID:
        """A random UUID, recorded."""
        return recorded.uuid4(self._attempt)


class Context(BaseContext):
    """The durable context handed to a plain (`def`) task as its first argument."""

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
        Raises StepFailedError once the retry policy gives up.
        """
        plan = steps.plan_step(
            self._attempt, name, fn, retry, semantics, timeout, heartbeat_timeout, compensate
        )
        return cast(T, steps.run_step(self._attempt, plan, fn, args, kwargs))

    def compensate(self) -> list[tuple[str, ErrorInfo | None]]:
        """Run the compensations of completed steps in reverse order, each a step itself.

        A compensation that fails for good is recorded and the others still run.
        """
        return compensation.compensate(self._attempt)

    def sleep(self, name: str, duration: timedelta) -> None:
        """Suspend the run for `duration` (any length; no Lambda is held meanwhile)."""
        attempt = self._attempt
        sleeps.sleep(attempt, name, lambda: attempt.clock.now() + max(duration, timedelta(0)))

    def sleep_until(self, name: str, when: datetime) -> None:
        """Suspend the run until the instant `when`."""
        sleeps.sleep(self._attempt, name, lambda: utc(when))

    def wait_for_event(self, name: str, timeout: timedelta | None = None) -> JsonData:
        """Suspend until an event `name` is sent to this run; its data. WaitTimeoutError
        after `timeout`. Names are 1 to 128 printable characters without a colon
        (InvalidNameError otherwise)."""
        return events.wait_for_event(self._attempt, name, timeout)

    @overload
    def invoke(self, task: TaskDefinition[PayloadT, ResultT], payload: PayloadT) -> ResultT: ...

    @overload
    def invoke(self, task: str, payload: Any = None) -> JsonData: ...

    def invoke(self, task: ChildTask, payload: Any = None) -> JsonData:
        """Start a child run of `task`, suspend until it ends, return its result.

        Given the task's handle (what `@task` returns), the payload is type-checked and the
        result comes back as the task's result type (a model, say); given its id, as JSON
        values. Raises ChildRunFailedError when the child fails, is cancelled or times out.
        The parent is woken when the child ends (no polling); cancelling the parent
        cancels it.
        """
        return children.invoke_task(self._attempt, task, payload)

    @overload
    def map(
        self,
        task: TaskDefinition[PayloadT, ResultT],
        items: Sequence[PayloadT],
        *,
        max_concurrency: int = DEFAULT_MAP_CONCURRENCY,
        tolerated_failures: int = 0,
    ) -> Sequence[ResultT]: ...

    @overload
    def map(
        self,
        task: str,
        items: Sequence[Any],
        *,
        max_concurrency: int = DEFAULT_MAP_CONCURRENCY,
        tolerated_failures: int = 0,
    ) -> Sequence[Any]: ...

    def map(
        self,
        task: ChildTask,
        items: Sequence[Any],
        *,
        max_concurrency: int = DEFAULT_MAP_CONCURRENCY,
        tolerated_failures: int = 0,
    ) -> Sequence[Any]:
        """Run `task` once per item as child runs; their results in input order.

        At most `max_concurrency` children run at a time. Up to `tolerated_failures`
        children may fail (their places hold a ChildRunFailedError); more raise
        BatchFailedError and cancel the children still running. The parent sleeps until the
        batch is decided, whatever its size: children report to the batch, not to the log.
        """
        return cast(
            Sequence[Any],
            fanout.map_task(self._attempt, task, items, max_concurrency, tolerated_failures),
        )

    def parallel(
        self,
        calls: Sequence[tuple[ChildTask, Any]],
        *,
        max_concurrency: int | None = None,
        tolerated_failures: int = 0,
        first_success: bool = False,
        name: str = "parallel",
    ) -> JsonData:
        """Run child runs `(task, payload)` side by side; their results in input order.

        With `first_success`, returns the result of the first child (in input order) that
        succeeded once any has, and cancels the rest; BatchFailedError if none succeeds.
        """
        return fanout.parallel(
            self._attempt, calls, max_concurrency, tolerated_failures, first_success, name
        )

    def wait_for_callback(
        self,
        name: str,
        submit: Callable[[str], Any] | None = None,
        timeout: timedelta | None = None,
        *,
        token: str | None = None,
    ) -> JsonData:
        """Suspend until the callback is completed; its data (CallbackFailedError on an
        error, WaitTimeoutError after `timeout`). Without `token`, creates the callback
        first and calls `submit(token)` as a step, to hand the token to the outside system.
        """
        if token is None:
            token = self.create_callback(name, timeout)
            if submit is not None:
                self.step(f"submit:{name}", submit, token)
        return callbacks.CallbackWait(self._attempt, name, token).resolve()


class AsyncContext(BaseContext):
    """The context of an `async def` task: the operations that wait are awaited.

    `await ctx.step(...)`, `await ctx.sleep(...)`, `await ctx.wait_for_event(...)`,
    `await ctx.invoke(...)`, `await ctx.map(...)`, `await ctx.parallel(...)`,
    `await ctx.wait_for_callback(...)`, `await ctx.compensate()`; the rest (`now`, `random`,
    `uuid4`, `patched`, `trigger`, `create_callback`) are plain calls. Each operation takes
    its position when it is *called*, so steps gathered with `asyncio.gather` get the same
    identities on every replay whatever order they finish in, and run concurrently.
    """

    def step(
        self,
        name: str,
        fn: Callable[..., Awaitable[T]] | Callable[..., T],
        *args: Any,
        retry: RetryPolicy | None = None,
        semantics: StepSemantics = "at_least_once",
        timeout: timedelta | None = None,
        heartbeat_timeout: timedelta | None = None,
        compensate: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Awaitable[T]:
        """`Context.step`, awaited: `fn` may be a coroutine function."""
        attempt = self._attempt
        try:
            plan = steps.plan_step(
                attempt, name, fn, retry, semantics, timeout, heartbeat_timeout, compensate
            )
        except BaseException as exc:
            return _raising(exc)  # raised where the caller awaits, as an async call would
        return steps.run_step_async(attempt, plan, fn, args, kwargs)

    def compensate(self) -> Awaitable[list[tuple[str, ErrorInfo | None]]]:
        """`Context.compensate`, awaited."""
        return compensation.compensate_async(self._attempt)

    def sleep(self, name: str, duration: timedelta) -> Awaitable[None]:
        """`Context.sleep`, awaited."""
        attempt = self._attempt
        wake_at = lambda: attempt.clock.now() + max(duration, timedelta(0))  # noqa: E731
        return _now(sleeps.sleep, attempt, name, wake_at)

    def sleep_until(self, name: str, when: datetime) -> Awaitable[None]:
        """`Context.sleep_until`, awaited."""
        return _now(sleeps.sleep, self._attempt, name, lambda: utc(when))

    def wait_for_event(self, name: str, timeout: timedelta | None = None) -> Awaitable[Any]:
        """`Context.wait_for_event`, awaited."""
        return _now(events.wait_for_event, self._attempt, name, timeout)

    @overload
    def invoke(
        self, task: TaskDefinition[PayloadT, ResultT], payload: PayloadT
    ) -> Awaitable[ResultT]: ...

    @overload
    def invoke(self, task: str, payload: Any = None) -> Awaitable[Any]: ...

    def invoke(self, task: ChildTask, payload: Any = None) -> Awaitable[Any]:
        """`Context.invoke`, awaited."""
        return _now(children.invoke_task, self._attempt, task, payload)

    @overload
    def map(
        self,
        task: TaskDefinition[PayloadT, ResultT],
        items: Sequence[PayloadT],
        *,
        max_concurrency: int = DEFAULT_MAP_CONCURRENCY,
        tolerated_failures: int = 0,
    ) -> Awaitable[Sequence[ResultT]]: ...

    @overload
    def map(
        self,
        task: str,
        items: Sequence[Any],
        *,
        max_concurrency: int = DEFAULT_MAP_CONCURRENCY,
        tolerated_failures: int = 0,
    ) -> Awaitable[Sequence[Any]]: ...

    def map(
        self,
        task: ChildTask,
        items: Sequence[Any],
        *,
        max_concurrency: int = DEFAULT_MAP_CONCURRENCY,
        tolerated_failures: int = 0,
    ) -> Awaitable[Sequence[Any]]:
        """`Context.map`, awaited."""
        return _now(
            fanout.map_task, self._attempt, task, items, max_concurrency, tolerated_failures
        )

    def parallel(
        self,
        calls: Sequence[tuple[ChildTask, Any]],
        *,
        max_concurrency: int | None = None,
        tolerated_failures: int = 0,
        first_success: bool = False,
        name: str = "parallel",
    ) -> Awaitable[Any]:
        """`Context.parallel`, awaited."""
        return _now(
            fanout.parallel,
            self._attempt,
            calls,
            max_concurrency,
            tolerated_failures,
            first_success,
            name,
        )

    def wait_for_callback(
        self,
        name: str,
        submit: Callable[[str], Any] | None = None,
        timeout: timedelta | None = None,
        *,
        token: str | None = None,
    ) -> Awaitable[Any]:
        """`Context.wait_for_callback`, awaited (`submit` may be a coroutine function)."""
        attempt = self._attempt
        try:
            plan: steps.StepPlan | None = None
            if token is None:
                token = callbacks.create_callback(attempt, name, timeout)
                if submit is not None:
                    plan = steps.plan_step(
                        attempt, f"submit:{name}", submit, None, "at_least_once", None, None, None
                    )
            wait = callbacks.CallbackWait(attempt, name, token)
        except BaseException as exc:
            return _raising(exc)
        return _submitted_then_resolved(attempt, plan, submit, wait)


def attempt_of(ctx: BaseContext) -> Attempt:
    """The attempt behind a context (for the executor and the replay tool, not task code)."""
    return ctx._attempt


async def _submitted_then_resolved(
    attempt: Attempt,
    plan: steps.StepPlan | None,
    submit: Callable[[str], Any] | None,
    wait: callbacks.CallbackWait,
) -> JsonData:
    if plan is not None and submit is not None:
        await steps.run_step_async(attempt, plan, submit, (wait.token,), {})
    return wait.resolve()


async def _raising(exc: BaseException) -> NoReturn:
    raise exc


def _now(operation: Callable[..., T], *args: Any) -> Awaitable[T]:
    """Run a waiting operation now (so it takes its position now); await its outcome."""
    try:
        value = operation(*args)
    except BaseException as exc:
        return _raising(exc)
    return _resolved(value)


async def _resolved(value: T) -> T:
    return value
