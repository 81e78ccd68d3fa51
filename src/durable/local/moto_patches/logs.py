"""Patch 14: CloudWatch Logs' JSON equality filter, `{ $.field = "value" }`, in moto.

moto 5.2.5 knows term and quoted-phrase filter patterns only (`moto/logs/utils.py`,
`EventMessageFilter`); any other pattern matches every event. `GET /runs/{id}/logs` reads a
run's lines with `{ $.run_id = "<run id>" }` (`durable.runlogs.cloudwatch`), so on stock
moto each read is handed every event of the worker's group, a page at a time: with 10,000
lines of 100 runs, a run's 100 lines take 95 calls (`bench/run_logs.py`).

This filter does what CloudWatch does for that form: an event matches when its message is
a JSON object whose top-level `field` equals the string `value` (a message that is not JSON
never matches). Any other pattern, a value with a `*` wildcard included, goes to moto's own
filter unchanged. The reader compares each line's `run_id` itself whatever the backend
matched, so the patch changes the cost of a read, never its lines.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from durable.local.moto_patches.originals import original, patch

_JSON_EQUALS = re.compile(r'^\{\s*\$\.([A-Za-z_][A-Za-z0-9_]*)\s*=\s*("(?:[^"\\*]|\\.)*")\s*\}$')


def install() -> None:
    from moto.logs import models

    patch(models, "EventMessageFilter", _EventMessageFilter)


@lru_cache(maxsize=256)
def _json_equality(pattern: str) -> tuple[str, str] | None:
    """(field, value) of a `{ $.field = "value" }` pattern; None for any other pattern."""
    found = _JSON_EQUALS.match(pattern.strip())
    if found is None:
        return None
    value = json.loads(found[2])
    return (found[1], value) if isinstance(value, str) else None


class _EventMessageFilter:
    """moto's `EventMessageFilter`, knowing JSON equality on a top-level string field."""

    def __init__(self, pattern: str) -> None:
        self._equality = _json_equality(pattern) if pattern else None
        self._moto: Any = None
        if self._equality is None:
            from moto.logs import models

            self._moto = original(models, "EventMessageFilter")(pattern)

    def matches(self, message: str) -> bool:
        if self._equality is None:
            return bool(self._moto.matches(message))
        field, value = self._equality
        if not message.lstrip().startswith("{"):
            return False
        try:
            record = json.loads(message)
        except ValueError:
            return False
        return isinstance(record, dict) and record.get(field) == value
