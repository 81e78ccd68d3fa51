"""JSON only (never pickle): values to JSON text and back, pydantic models included.

`dumps` turns any JSON-able value (pydantic models, dataclasses, datetimes via pydantic's
`to_jsonable_python`) into compact JSON text; `loads` gives plain JSON values back, and
`TypeAdapter`s re-validate them into the annotated types where one is known.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from durable.errors import DurableError


class SerializationError(DurableError):
    """A value could not be turned into JSON."""


def dumps(value: Any) -> str:
    """Compact JSON text of `value`; raises SerializationError for non-JSON values."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        pass
    try:
        plain = to_jsonable_python(value)
        return json.dumps(plain, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except Exception as exc:
        raise SerializationError(
            f"value of type {type(value).__name__} is not JSON-serializable: {exc}"
        ) from exc


def loads(text: str) -> Any:
    """The JSON value in `text`."""
    return json.loads(text)


@lru_cache(maxsize=1024)
def type_adapter(annotation: Any) -> TypeAdapter[Any]:
    """A cached `TypeAdapter` for an annotation (hashable annotations only)."""
    return TypeAdapter(annotation)


def is_plain_annotation(annotation: Any) -> bool:
    """True when values of this annotation need no re-validation after a JSON round trip."""
    return annotation in (Any, None, dict, list, str, int, float, bool, object)
