"""A fresh step attempt's input preview: its arguments as JSON, bounded, for the run page.

`input_preview(args, kwargs, secrets)` is what a step's end (`step_completed`,
`step_failed`) records in `Checkpoint.input`: `{"args": [...], "kwargs": {...}}` in the
library's JSON rules (`durable.serialization`: pydantic models and dataclasses as their
JSON, datetimes as ISO text), or a short note `{"omitted": "..."}` when the arguments are
not JSON or their text is over `MAX_INPUT_PREVIEW`. A step without arguments records None.

Rules:
- It never fails and never changes a step: any exception while encoding becomes a note,
  and a consumable argument (an iterator, a generator, a file) is never iterated (the
  step would find it empty); it is noted as not JSON.
- It costs no S3 put and no more than `MAX_INPUT_PREVIEW` of an item: the text is built
  a piece at a time and dropped once it passes the bound, so a 100 MB argument is not
  encoded whole just to be refused.
- This run's callback tokens (a `submit(token)` step's argument) are redacted as every
  view redacts them (`durable.timeline.redacted_token`).
- It is metadata: replay never reads or compares it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from durable.serialization import as_json_list, dumps
from durable.timeline import redacted_token

# A preview is for a person reading the run page, not a copy of the arguments: 4 KB shows
# ids, small models and options whole; it keeps a step's end item (a value inlined up to
# `values.DEFAULT_INLINE_LIMIT`, a bounded error) far below DynamoDB's 400 KB, never needs
# a blob (no S3 put per step), and keeps history and timeline responses small.
MAX_INPUT_PREVIEW = 4096  # bytes of UTF-8 JSON text


class _NotJson(Exception):
    def __init__(self, value: object) -> None:
        super().__init__(type(value).__name__)
        self.type_name = type(value).__name__


class _OverBound(Exception):
    pass


def input_preview(
    args: tuple[Any, ...] | list[Any], kwargs: Mapping[str, Any], secrets: Iterable[str] = ()
) -> str | None:
    """The JSON text a step's end records as its input (see the module docstring)."""
    if not args and not kwargs:
        return None
    try:
        text = _bounded_text({"args": list(args), "kwargs": dict(kwargs)})
        for secret in secrets:
            if secret and secret in text:
                text = text.replace(secret, redacted_token(secret))
        return text
    except _OverBound:
        return _note(f"input is over {MAX_INPUT_PREVIEW // 1024} KB, the preview's bound")
    except _NotJson as exc:
        return _note(f"not JSON: {exc.type_name}")
    except Exception as exc:  # anything a user's value raises while encoded: never the step's
        return _note(f"not JSON: {type(exc).__name__} while encoding")


def _bounded_text(value: Any) -> str:
    pieces: list[str] = []
    size = 0
    for piece in _ENCODER.iterencode(value):
        # len() first: a huge string is refused without being encoded again; a lone
        # surrogate raises in encode(): noted, never stored.
        size += len(piece) if len(piece) > MAX_INPUT_PREVIEW else len(piece.encode())
        if size > MAX_INPUT_PREVIEW:
            raise _OverBound
        pieces.append(piece)
    return "".join(pieces)


def _jsonable(value: Any) -> Any:
    """What the encoder writes for a value plain JSON does not know, as `dumps` would."""
    if isinstance(value, Iterator):
        raise _NotJson(value)  # iterating it would consume what the step is given
    try:
        return to_jsonable_python(value, fallback=as_json_list)
    except Exception as exc:
        raise _NotJson(value) from exc


# The library's JSON text (`serialization.dumps`), written a piece at a time.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_jsonable
)


def _note(text: str) -> str:
    return dumps({"omitted": text})
