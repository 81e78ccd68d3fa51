"""JSON only (never pickle): values to JSON text and back, pydantic models included.

`dumps` turns any JSON-able value (pydantic models, dataclasses, datetimes via pydantic's
`to_jsonable_python`) into compact JSON text; `loads` gives plain JSON values back, and
`revive` re-validates them into the annotated type where one is known (a `TypeAdapter`,
in pydantic's default lax mode: `"2024-01-01T00:00:00Z"` becomes a datetime for
`datetime`, a list a tuple for `tuple[int, int]`, a dict a model for a model).

A value that goes through the log comes back as `revive(loads(dumps(value)), annotation)`;
code that hands a value to user code both when it is fresh and when it is replayed must
give that same form both times, never the raw value the first time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, TypeAlias

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from durable.errors import DurableError, InputError

# A value decoded from JSON whose shape the user's code decides: a payload, a step's or a
# child's result, an event's or a callback's data. Typed `Any` on purpose (as `json.loads`
# is) so that task code uses it as the type it knows it to be; where an annotation is
# known (a task's payload, a step's or a task handle's result), the value is revived into
# it and typed by it instead.
JsonData: TypeAlias = Any


class SerializationError(DurableError):
    """A value could not be turned into JSON, or back into its annotated type."""


def dumps(value: Any) -> str:
    """Compact JSON text of `value`; raises SerializationError for non-JSON values."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        pass
    try:
        plain = to_jsonable_python(value, fallback=as_json_list)
        return json.dumps(plain, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except Exception as exc:
        raise SerializationError(
            f"value of type {type(value).__name__} is not JSON-serializable: {exc}"
        ) from exc


def as_json_list(value: Any) -> list[Any]:
    """A sequence JSON does not know (what `ctx.map` returns, say) as a list; TypeError for
    anything else."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


# Values from callers may nest arrays and objects this deep: deeper ones could be stored,
# but not read back through every layer (pydantic's serializers stop near 255 levels).
MAX_DEPTH = 128


def check_depth(value: Any, what: str) -> None:
    """Raise `InputError` if `value` nests arrays and objects over `MAX_DEPTH` levels.

    Iterative, so that the check itself cannot run out of stack.
    """
    if not isinstance(value, dict | list | tuple):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"{what} nests arrays and objects over {MAX_DEPTH} levels deep")
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))


def loads(text: str) -> JsonData:
    """The JSON value in `text`."""
    return json.loads(text)


def type_adapter(annotation: Any) -> TypeAdapter[Any]:
    """A `TypeAdapter` for an annotation, cached when the annotation is hashable."""
    try:
        hash(annotation)
    except TypeError:  # Annotated[...] with unhashable metadata, say
        return TypeAdapter(annotation)
    return _cached_type_adapter(annotation)


@lru_cache(maxsize=1024)
def _cached_type_adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


_PLAIN = (Any, None, type(None), dict, list, str, int, float, bool, object)


def is_plain_annotation(annotation: Any) -> bool:
    """True when values of this annotation need no re-validation after a JSON round trip."""
    return annotation in _PLAIN


def is_unchecked_annotation(annotation: Any) -> bool:
    """True when the annotation accepts anything: nothing to validate (`Any`, `object`).

    A missing annotation is read as `Any`. Every other annotation, `int` and `list[str]`
    included, is validated by pydantic.
    """
    return annotation is Any or annotation is object


def revive(value: JsonData, annotation: Any) -> JsonData:
    """The JSON value `value` as the annotated type (plain annotations: as it is).

    Raises pydantic's `ValidationError` when the value does not fit the annotation.
    """
    if is_plain_annotation(annotation):
        return value
    return type_adapter(annotation).validate_python(value)
