"""`@task` and `@step`: decorators that record metadata; a `TaskRegistry` object holds tasks.

`@task` registers into `default_registry` unless given another registry (tests make their
own). The payload type is read from the annotation of the task function's second parameter
(after `ctx`) and validated with pydantic at trigger time, so a bad payload is refused
before anything is stored. `@task(cron=..., timezone=...)` also gives the task a schedule
(see `durable.schedules`); a bad expression or zone, or a payload type that cannot be
built from nothing, is refused at decoration time. `@step` is sugar: calling a decorated
function inside a running task is `ctx.step(fn.__name__, fn, ...)`; outside a task it is a
plain call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, cast, get_type_hints

from pydantic import ValidationError

from durable.engine.retry import DEFAULT_TASK_RETRY, RetryPolicy
from durable.errors import PayloadValidationError, UnknownTaskError
from durable.schedules import CronSchedule
from durable.serialization import is_plain_annotation, type_adapter

if TYPE_CHECKING:
    from durable.context import Context

P = ParamSpec("P")
R = TypeVar("R")

StepSemantics = Literal["at_least_once", "at_most_once"]

# The context of the task running in this thread/coroutine; None inside a step's body.
current_context: ContextVar[Context | None] = ContextVar("durable_current_context", default=None)


@dataclass(frozen=True, slots=True, eq=False)
class TaskDefinition:
    """A registered task: its function and how to run it."""

    id: str
    fn: Callable[..., Any]
    retry: RetryPolicy
    timeout: timedelta | None
    version: str
    payload_annotation: Any
    result_annotation: Any
    cron: str | None = None  # fires a run at each instant of this schedule
    timezone: str = "UTC"  # the IANA zone `cron` is read in
    schedule: CronSchedule | None = None  # `cron` parsed in `timezone`
    scheduled_payload: Any = None  # what a scheduled run gets: null, or {} for defaults

    @property
    def is_async(self) -> bool:
        """True for an `async def` task (it gets an AsyncContext)."""
        return inspect.iscoroutinefunction(self.fn)

    def validate_payload(self, payload: Any) -> Any:
        """The payload as a JSON-able value, validated against the annotation."""
        if is_plain_annotation(self.payload_annotation):
            return payload
        adapter = type_adapter(self.payload_annotation)
        try:
            value = adapter.validate_python(payload)
        except ValidationError as exc:
            details = exc.errors(include_url=False, include_context=False)
            raise PayloadValidationError(self.id, details) from exc
        return adapter.dump_python(value, mode="json")

    def parse_payload(self, payload: Any) -> Any:
        """The payload as the task function expects it (a model instance, say)."""
        if is_plain_annotation(self.payload_annotation):
            return payload
        return type_adapter(self.payload_annotation).validate_python(payload)

    def __call__(self, ctx: Context, payload: Any) -> Any:
        return self.fn(ctx, payload)


class TaskRegistry:
    """Tasks by id. A test can make a fresh one; `@task` uses `default_registry`."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskDefinition] = {}

    def register(self, definition: TaskDefinition) -> None:
        existing = self._tasks.get(definition.id)
        if existing is not None and existing.fn is not definition.fn:
            same_place = (
                existing.fn.__module__ == definition.fn.__module__
                and existing.fn.__qualname__ == definition.fn.__qualname__
            )
            if not same_place:
                raise ValueError(
                    f"task id {definition.id!r} is already used by "
                    f"{existing.fn.__module__}.{existing.fn.__qualname__}"
                )
        self._tasks[definition.id] = definition

    def get(self, task_id: str) -> TaskDefinition:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise UnknownTaskError(task_id) from None

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __iter__(self) -> Iterator[TaskDefinition]:
        return iter(sorted(self._tasks.values(), key=lambda definition: definition.id))

    def ids(self) -> list[str]:
        return sorted(self._tasks)


default_registry = TaskRegistry()


def _annotations(fn: Callable[..., Any]) -> tuple[Any, Any]:
    """(payload annotation, return annotation) of a task function; Any when missing."""
    try:
        hints = get_type_hints(fn)
    except Exception:
        hints = {}
    params = list(inspect.signature(fn).parameters)
    payload = hints.get(params[1], Any) if len(params) > 1 else Any
    return payload, hints.get("return", Any)


def task(
    id: str,
    *,
    retry: RetryPolicy | None = None,
    timeout: timedelta | None = None,
    version: str = "1",
    registry: TaskRegistry | None = None,
    cron: str | None = None,
    timezone: str = "UTC",
) -> Callable[[Callable[..., Any]], TaskDefinition]:
    """Declare a durable task: `fn(ctx, payload) -> result`.

    With `cron` (five fields, or six with seconds first), the sweeper also starts a run at
    each instant of the schedule, read in `timezone` (an IANA name): see `durable.schedules`.
    """
    schedule: CronSchedule | None = None
    if cron is not None:
        try:
            schedule = CronSchedule.parse(cron, timezone)
        except ValueError as exc:
            raise ValueError(f"task {id!r}: {exc}") from None
    elif timezone != "UTC":
        raise ValueError(f"task {id!r}: timezone applies to a cron schedule; give cron too")

    def decorate(fn: Callable[..., Any]) -> TaskDefinition:
        payload_annotation, result_annotation = _annotations(fn)
        definition = TaskDefinition(
            id=id,
            fn=fn,
            retry=retry or DEFAULT_TASK_RETRY,
            timeout=timeout,
            version=version,
            payload_annotation=payload_annotation,
            result_annotation=result_annotation,
            cron=cron,
            timezone=timezone,
            schedule=schedule,
        )
        if schedule is not None:
            definition = replace(definition, scheduled_payload=_scheduled_payload(definition))
        (registry or default_registry).register(definition)
        return definition

    return decorate


def _scheduled_payload(definition: TaskDefinition) -> Any:
    """What a scheduled run of `definition` is triggered with: null, else `{}`.

    `{}` serves a model whose every field has a default (`payload: Report` with
    `title: str = "Daily report"`); a payload that needs a value from a caller cannot be
    scheduled, and saying so at import time beats a sweeper failing every minute.
    """
    candidates: tuple[Any, ...] = (None, {})
    for candidate in candidates:
        try:
            definition.validate_payload(candidate)
        except PayloadValidationError:
            continue
        return candidate
    raise ValueError(
        f"task {definition.id!r}: a cron task's payload must accept null "
        "(or be a model whose every field has a default)"
    )


@dataclass(frozen=True, slots=True)
class StepOptions:
    """Options a `@step` decorator attaches to its function."""

    name: str
    retry: RetryPolicy | None
    semantics: StepSemantics
    timeout: timedelta | None = None
    heartbeat_timeout: timedelta | None = None


def step(
    fn: Callable[P, R] | None = None,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    semantics: StepSemantics = "at_least_once",
    timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
) -> Any:
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
                ctx: Any = current_context.get()
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

            async_wrapper.__durable_step__ = options  # type: ignore[attr-defined]
            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(inner)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            ctx: Any = current_context.get()
            if ctx is None:
                return inner(*args, **kwargs)
            result: R = ctx.step(
                options.name,
                inner,
                *args,
                retry=options.retry,
                semantics=options.semantics,
                timeout=options.timeout,
                heartbeat_timeout=options.heartbeat_timeout,
                **kwargs,
            )
            return result

        wrapper.__durable_step__ = options  # type: ignore[attr-defined]
        return wrapper

    if fn is not None:
        return decorate(fn)
    return decorate
