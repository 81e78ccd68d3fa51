"""`@task`: declares a task and returns its typed handle; a `TaskRegistry` object holds tasks.

`@task` registers into `default_registry` unless given another registry (tests make their
own). The payload type is read from the annotation of the task function's second parameter
(after `ctx`) and validated with pydantic at trigger time, so a bad payload is refused
before anything is stored. Every annotation is validated, plain ones (`int`, `list[str]`,
`str | None`) as much as models; only a missing annotation, `Any` or `object` accepts
anything. `@task(cron=..., timezone=...)` also gives the task a schedule
(see `durable.services.schedules`); a bad expression or zone, or a payload type that cannot be
built from nothing, is refused at decoration time.

Annotations are resolved when the task is decorated, never silently dropped: a payload or
result annotation that names something undefined (a model defined after the task, or
imported only under `if TYPE_CHECKING:`) raises `UnresolvedAnnotationError`, and one that
pydantic cannot validate raises `AnnotationError`, both naming the task. Only the payload
and return annotations are resolved (`durable.annotations`), so `ctx: Context` may stay a
type-checking-only import.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from types import CodeType
from typing import Any, Generic, Protocol, TypeVar, cast, overload

from pydantic import ValidationError

from durable.annotations import check_validatable, qualified_name, resolve_annotations
from durable.cron import CronSchedule
from durable.engine.retry import DEFAULT_TASK_RETRY, RetryPolicy
from durable.errors import PayloadValidationError, UnknownTaskError
from durable.flow import Queue
from durable.serialization import JsonData, is_unchecked_annotation, type_adapter

PayloadT = TypeVar("PayloadT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True, slots=True, eq=False)
class TaskDefinition(Generic[PayloadT, ResultT]):
    """A registered task: its function and how to run it. What `@task` returns.

    It is typed by the task's payload and result, so that `ctx.invoke(task, payload)` and
    `Client.trigger(task, payload)` check the payload and know the result's type (as
    Temporal's `execute_child_workflow(MyWorkflow.run, arg)` does). Calling it runs the
    function directly, as a plain function call (in a unit test, say).
    """

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
    # The queue its runs start in (`durable.flow`); None: a queue of its own, named after
    # the task, with no limit.
    queue: Queue | None = None

    @property
    def queue_name(self) -> str:
        """The name of the queue the task's runs wait in (its own: the task's id)."""
        return self.queue.name if self.queue is not None else self.id

    def fingerprint(self, code_version: str) -> str:
        """A short hash of the code that runs this task under `code_version` (a label).

        It covers the label, the task version, the function's code (bytecode, names and
        constants, nested functions included) and the source of its module: a deploy that
        changes any of them changes it. A held run records the fingerprint of the code that
        held it (`durable.worker.holds`); only other code replays it again.
        """
        text = f"{code_version}\0{self.version}\0{_function_digest(self.fn)}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def is_async(self) -> bool:
        """True for an `async def` task (it gets an AsyncContext)."""
        return inspect.iscoroutinefunction(self.fn)

    def validate_payload(self, payload: Any) -> JsonData:
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

    def parse_payload(self, payload: JsonData) -> PayloadT:
        """The payload as the task function expects it (a model instance, say)."""
        if is_unchecked_annotation(self.payload_annotation):
            return cast(PayloadT, payload)
        return cast(PayloadT, type_adapter(self.payload_annotation).validate_python(payload))

    def __call__(self, ctx: Any, payload: PayloadT) -> Any:
        return self.fn(ctx, payload)


class TaskRegistry:
    """Tasks by id. A test can make a fresh one; `@task` uses `default_registry`."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskDefinition[Any, Any]] = {}
        self._queues: dict[str, Queue | None] | None = None  # `queues()`, until a register

    def register(self, definition: TaskDefinition[Any, Any]) -> None:
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
        if definition.queue is not None:
            for other in self._tasks.values():
                if (
                    other.id != definition.id
                    and other.queue is not None
                    and other.queue.name == definition.queue.name
                    and other.queue != definition.queue
                ):
                    raise ValueError(
                        f"task {definition.id!r}: queue {definition.queue.name!r} is declared "
                        f"with other settings by task {other.id!r}; share one Queue object"
                    )
        self._tasks[definition.id] = definition
        self._queues = None

    def queues(self) -> dict[str, Queue | None]:
        """Every queue the tasks run in, by name (None: a task's own queue, no limit)."""
        return dict(self._declared_queues())

    def queue(self, name: str) -> Queue | None:
        """The queue declared under `name` (None: none, or a task's own, without limits)."""
        return self._declared_queues().get(name)

    def _declared_queues(self) -> dict[str, Queue | None]:
        if self._queues is None:  # worked out once per registration, not per message
            found: dict[str, Queue | None] = {}
            for definition in self:
                found.setdefault(definition.queue_name, definition.queue)
            self._queues = found
        return self._queues

    def get(self, task_id: str) -> TaskDefinition[Any, Any]:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise UnknownTaskError(task_id) from None

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __iter__(self) -> Iterator[TaskDefinition[Any, Any]]:
        return iter(sorted(self._tasks.values(), key=lambda definition: definition.id))

    def ids(self) -> list[str]:
        return sorted(self._tasks)


default_registry = TaskRegistry()


@functools.cache
def _function_digest(fn: Callable[..., Any]) -> str:
    """The digest of `fn`'s code object (recursively) and of its module's source text,
    worked out once per function."""
    digest = hashlib.sha256()
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    if isinstance(code, CodeType):
        _add_code(digest, code)
    module = inspect.getmodule(fn)
    if module is not None:
        # No source (a REPL, a zip without it): the code object stands alone.
        with contextlib.suppress(OSError, TypeError):
            digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()


def _add_code(digest: Any, code: CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            _add_code(digest, constant)
        elif isinstance(constant, frozenset):
            # A set's order follows string hashes, which differ per process: sort them.
            digest.update(repr(sorted(repr(item) for item in constant)).encode())
        else:
            digest.update(repr(constant).encode())


def _annotations(
    fn: Callable[..., Any], task_id: str, localns: Mapping[str, Any] | None
) -> tuple[Any, Any]:
    """(payload annotation, return annotation) of a task function; Any when missing."""
    owner = f"task {task_id!r} ({qualified_name(fn)})"
    params = list(inspect.signature(fn).parameters)
    payload_name = params[1] if len(params) > 1 else None
    names = ["return"] if payload_name is None else [payload_name, "return"]
    hints = resolve_annotations(fn, names, owner=owner, localns=localns)
    payload = hints.get(payload_name, Any) if payload_name is not None else Any
    result = hints.get("return", Any)
    check_validatable(owner, f"annotation of {payload_name!r}", payload)
    check_validatable(owner, "return annotation", result)
    return payload, result


class TaskDecorator(Protocol):
    """What `@task(...)` returns: it turns `fn(ctx, payload) -> result` into a typed handle.

    An `async def` task's handle carries what its coroutine returns, not the coroutine.
    """

    @overload
    def __call__(  # an async function matches both overloads: the first one wins
        self, fn: Callable[[Any, PayloadT], Awaitable[ResultT]]
    ) -> TaskDefinition[PayloadT, ResultT]: ...

    @overload
    def __call__(
        self, fn: Callable[[Any, PayloadT], ResultT]
    ) -> TaskDefinition[PayloadT, ResultT]: ...


def task(
    id: str,
    *,
    retry: RetryPolicy | None = None,
    timeout: timedelta | None = None,
    version: str = "1",
    registry: TaskRegistry | None = None,
    cron: str | None = None,
    timezone: str = "UTC",
    queue: Queue | None = None,
) -> TaskDecorator:
    """Declare a durable task: `fn(ctx, payload) -> result`.

    With `cron` (five fields, or six with seconds first), the sweeper also starts a run at
    each instant of the schedule, read in `timezone` (an IANA name): see
    `durable.services.schedules`. With `queue`, its runs start under that queue's limits
    (`durable.flow.Queue`: concurrency, rate limit...); a queue may be shared by tasks.
    """
    if queue is not None and not isinstance(queue, Queue):
        raise TypeError(f"task {id!r}: queue must be a durable.Queue, not {type(queue).__name__}")
    schedule: CronSchedule | None = None
    if cron is not None:
        try:
            schedule = CronSchedule.parse(cron, timezone)
        except ValueError as exc:
            raise ValueError(f"task {id!r}: {exc}") from None
    elif timezone != "UTC":
        raise ValueError(f"task {id!r}: timezone applies to a cron schedule; give cron too")

    def decorate(fn: Callable[..., Any]) -> TaskDefinition[Any, Any]:
        # The scope applying the decorator is the one defining `fn`: its locals resolve an
        # annotation naming a class local to a function (a test's model, say).
        defining_scope = sys._getframe(1).f_locals
        payload_annotation, result_annotation = _annotations(fn, id, defining_scope)
        definition: TaskDefinition[Any, Any] = TaskDefinition(
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
            queue=queue,
        )
        if schedule is not None:
            definition = replace(definition, scheduled_payload=_scheduled_payload(definition))
        (registry or default_registry).register(definition)
        return definition

    return decorate


def _scheduled_payload(definition: TaskDefinition[Any, Any]) -> JsonData:
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
