"""`@task` and `@step`: decorators that record metadata; a `TaskRegistry` object holds tasks.

`@task` registers into `default_registry` unless given another registry (tests make their
own). The payload type is read from the annotation of the task function's second parameter
(after `ctx`) and validated with pydantic at trigger time, so a bad payload is refused
before anything is stored. Every annotation is validated, plain ones (`int`, `list[str]`,
`str | None`) as much as models; only a missing annotation, `Any` or `object` accepts
anything. `@task(cron=..., timezone=...)` also gives the task a schedule
(see `durable.schedules`); a bad expression or zone, or a payload type that cannot be
built from nothing, is refused at decoration time. `@step` is sugar: calling a decorated
function inside a running task is `ctx.step(fn.__name__, fn, ...)`; outside a task it is a
plain call.

Annotations are resolved when the task is decorated, never silently dropped: a payload or
result annotation that names something undefined (a model defined after the task, or
imported only under `if TYPE_CHECKING:`) raises `UnresolvedAnnotationError`, and one that
pydantic cannot validate raises `AnnotationError`, both naming the task. Only the payload
and return annotations are resolved, so `ctx: Context` may stay a type-checking-only import.
A step's return annotation (what its value is decoded into, fresh and replayed) is resolved
the first time the step is called, so it may name a model defined further down the module;
one that still cannot be resolved raises the same errors then, before the step runs, rather
than quietly handing the task a dict where it expects a model.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    Literal,
    ParamSpec,
    TypeVar,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)

from pydantic import ValidationError

from durable.cron import CronSchedule
from durable.engine.retry import DEFAULT_TASK_RETRY, RetryPolicy
from durable.errors import (
    AnnotationError,
    PayloadValidationError,
    UnknownTaskError,
    UnresolvedAnnotationError,
)
from durable.serialization import is_unchecked_annotation, type_adapter

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
        """The payload as a JSON-able value, validated against the annotation.

        Validation is pydantic's default (lax) mode, as for a model's fields: a conversion
        that loses nothing is made (`"5"` or `5.0` for `int`, an ISO string for `datetime`),
        anything else is refused (`"notanint"`, `5.5`). Strict mode would refuse `"5"`, but
        also every `datetime`, which JSON can only carry as a string. The converted value is
        what is stored, so the task sees `5`, never `"5"`. A missing annotation, `Any` or
        `object` validates nothing.
        """
        if is_unchecked_annotation(self.payload_annotation):
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
        if is_unchecked_annotation(self.payload_annotation):
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


def resolve_annotations(
    fn: Callable[..., Any],
    names: Sequence[str],
    *,
    owner: str,
    localns: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The annotations of `fn` listed in `names` ("return" for its result), evaluated.

    Unannotated names are left out. Only these annotations are evaluated, so another
    parameter's annotation (`ctx: Context` imported under TYPE_CHECKING) cannot get in the
    way. A name is looked up in `localns` (the scope that defined `fn`, when known), then
    in `fn`'s closure, then in its module. `Annotated[...]` metadata is kept for pydantic.
    Raises UnresolvedAnnotationError (naming `owner` and the name) when one names
    something undefined, AnnotationError when it cannot be evaluated at all.
    """
    target = fn.func if isinstance(fn, functools.partial) else fn
    raw = getattr(target, "__annotations__", None)
    if not isinstance(raw, Mapping):
        return {}  # a builtin, a callable object: nothing declared
    function = inspect.unwrap(target)
    globalns = getattr(function, "__globals__", None)
    if not isinstance(globalns, dict):
        module = sys.modules.get(getattr(function, "__module__", None) or "")
        globalns = dict(vars(module)) if module is not None else {}
    namespace = {**_closure_namespace(function), **(localns or {})}
    resolved: dict[str, Any] = {}
    for name in names:
        if name not in raw:
            continue
        annotation = raw[name]
        what = "return annotation" if name == "return" else f"annotation of {name!r}"
        # One annotation at a time, on a stand-in holding only it: get_type_hints(fn) would
        # evaluate every parameter's annotation and fail on any of them.
        holder = types.SimpleNamespace(__annotations__={name: annotation})
        try:
            hints = get_type_hints(holder, globalns, namespace, include_extras=True)
        except NameError as exc:
            missing = exc.name or str(exc)
            raise UnresolvedAnnotationError(owner, what, annotation, missing) from exc
        except Exception as exc:
            reason = f"cannot be evaluated ({type(exc).__name__}: {exc})"
            raise AnnotationError(owner, what, annotation, reason) from exc
        resolved[name] = hints[name]
    return resolved


def step_return_annotation(fn: Callable[..., Any]) -> Any:
    """What a step's result is decoded into: its resolved return annotation, else Any.

    `Awaitable[X]` and `Coroutine[..., X]` read as `X` (ctx.step awaits them). Raises
    UnresolvedAnnotationError or AnnotationError (naming the step function) when the
    annotation names something undefined or pydantic cannot validate it.
    """
    owner = f"step function {_qualified_name(fn)}"
    annotation = resolve_annotations(fn, ["return"], owner=owner).get("return", Any)
    while get_origin(annotation) in (collections.abc.Awaitable, collections.abc.Coroutine):
        annotation = get_args(annotation)[-1] if get_args(annotation) else Any
    _check_validatable(owner, "return annotation", annotation)
    return annotation


def _annotations(
    fn: Callable[..., Any], task_id: str, localns: Mapping[str, Any] | None
) -> tuple[Any, Any]:
    """(payload annotation, return annotation) of a task function; Any when missing."""
    owner = f"task {task_id!r} ({_qualified_name(fn)})"
    params = list(inspect.signature(fn).parameters)
    payload_name = params[1] if len(params) > 1 else None
    names = ["return"] if payload_name is None else [payload_name, "return"]
    hints = resolve_annotations(fn, names, owner=owner, localns=localns)
    payload = hints.get(payload_name, Any) if payload_name is not None else Any
    result = hints.get("return", Any)
    _check_validatable(owner, f"annotation of {payload_name!r}", payload)
    _check_validatable(owner, "return annotation", result)
    return payload, result


def _check_validatable(owner: str, what: str, annotation: Any) -> None:
    """Build (and cache) the TypeAdapter now, so an unsupported type fails here, not later."""
    if is_unchecked_annotation(annotation):
        return
    try:
        type_adapter(annotation)
    except Exception as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = f"is not a type pydantic can validate ({first_line})"
        raise AnnotationError(owner, what, annotation, reason) from exc


def _closure_namespace(function: Callable[..., Any]) -> dict[str, Any]:
    """The variables `function` closes over (a class local to the enclosing function)."""
    code = getattr(function, "__code__", None)
    cells = getattr(function, "__closure__", None)
    if code is None or not cells:
        return {}
    namespace: dict[str, Any] = {}
    for name, cell in zip(code.co_freevars, cells, strict=False):
        try:
            namespace[name] = cell.cell_contents
        except ValueError:  # a cell not assigned yet
            continue
    return namespace


def _qualified_name(fn: Callable[..., Any]) -> str:
    target = fn.func if isinstance(fn, functools.partial) else fn
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}" if module else name


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
        # The scope applying the decorator is the one defining `fn`: its locals resolve an
        # annotation naming a class local to a function (a test's model, say).
        defining_scope = sys._getframe(1).f_locals
        payload_annotation, result_annotation = _annotations(fn, id, defining_scope)
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
