"""Reading a task's or a step's type annotations: resolved once, never silently dropped.

The payload and result annotations of a task, and the return annotation of a step, say
what values are validated and revived into. They are evaluated one at a time (another
parameter's annotation, `ctx: Context` imported under TYPE_CHECKING, cannot get in the
way), and a name that cannot be resolved, or a type pydantic cannot validate, raises a
typed error naming the task or step function.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, get_args, get_origin, get_type_hints

from durable.errors import AnnotationError, UnresolvedAnnotationError
from durable.serialization import is_unchecked_annotation, type_adapter


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


def step_return_annotation(fn: Callable[..., Any]) -> object:
    """What a step's result is decoded into: its resolved return annotation, else Any.

    `Awaitable[X]` and `Coroutine[..., X]` read as `X` (ctx.step awaits them). Raises
    UnresolvedAnnotationError or AnnotationError (naming the step function) when the
    annotation names something undefined or pydantic cannot validate it.
    """
    owner = f"step function {qualified_name(fn)}"
    annotation = resolve_annotations(fn, ["return"], owner=owner).get("return", Any)
    while get_origin(annotation) in (collections.abc.Awaitable, collections.abc.Coroutine):
        annotation = get_args(annotation)[-1] if get_args(annotation) else Any
    check_validatable(owner, "return annotation", annotation)
    return annotation


def check_validatable(owner: str, what: str, annotation: Any) -> None:
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


def qualified_name(fn: Callable[..., Any]) -> str:
    target = fn.func if isinstance(fn, functools.partial) else fn
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}" if module else name
