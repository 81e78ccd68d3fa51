"""`@step`: sugar for `ctx.step`. A decorated function called inside a running task is a
checkpointed step named after it (`ctx.step(fn.__name__, fn, ...)`); outside a task, or
inside another step's body, it is a plain call."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, cast, overload

from durable.engine.retry import RetryPolicy
from durable.operations.steps import StepSemantics, current_context

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class StepOptions:
    """Options a `@step` decorator attaches to its function."""

    name: str
    retry: RetryPolicy | None
    semantics: StepSemantics
    timeout: timedelta | None = None
    heartbeat_timeout: timedelta | None = None


@overload
def step(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    semantics: StepSemantics = "at_least_once",
    timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    semantics: StepSemantics = "at_least_once",
    timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Make every call of `fn` inside a running task a checkpointed `ctx.step`."""

    def decorate(inner: Callable[P, R]) -> Callable[P, R]:
        options = StepOptions(
            name=name or inner.__name__,
            retry=retry,
            semantics=semantics,
            timeout=timeout,
            heartbeat_timeout=heartbeat_timeout,
        )

        if inspect.iscoroutinefunction(inner):

            @functools.wraps(inner)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                ctx = current_context.get()
                if ctx is None:
                    return await inner(*args, **kwargs)
                return await ctx.step(
                    options.name,
                    inner,
                    *args,
                    retry=options.retry,
                    semantics=options.semantics,
                    timeout=options.timeout,
                    heartbeat_timeout=options.heartbeat_timeout,
                    **kwargs,
                )

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(inner)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            ctx = current_context.get()
            if ctx is None:
                return inner(*args, **kwargs)
            keywords: dict[str, Any] = kwargs  # the step function's, passed through
            result: R = ctx.step(
                options.name,
                inner,
                *args,
                retry=options.retry,
                semantics=options.semantics,
                timeout=options.timeout,
                heartbeat_timeout=options.heartbeat_timeout,
                **keywords,
            )
            return result

        return wrapper

    if fn is not None:
        return decorate(fn)
    return decorate
