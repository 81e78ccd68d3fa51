"""`ctx.now`, `ctx.random`, `ctx.uuid4`: values recorded once, the same on every replay.

Log entry: one `value_recorded` with the JSON value. Replay rule: the recorded value is
returned; fresh, the value is made and recorded before task code sees it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from durable.ids import random_fraction, random_uuid
from durable.operations.attempt import Attempt
from durable.records import CheckpointKind
from durable.serialization import JsonData, dumps, loads


def recorded_value(attempt: Attempt, name: str, make: Callable[[], Any]) -> JsonData:
    """The value recorded at this position, or `make()` recorded now."""
    position, entries = attempt.open("value", name)
    if entries:
        assert entries[0].value is not None
        return loads(entries[0].value)
    attempt.before_fresh_operation()
    value = make()
    attempt.record(CheckpointKind.VALUE_RECORDED, position, name, value=dumps(value))
    return value


def now(attempt: Attempt) -> datetime:
    """The current time, recorded."""
    text = recorded_value(attempt, "now", lambda: attempt.clock.now().isoformat())
    return datetime.fromisoformat(text)


def random(attempt: Attempt) -> float:
    """A random float in [0, 1), recorded."""
    return float(recorded_value(attempt, "random", random_fraction))


def uuid4(attempt: Attempt) -> uuid.UUID:
    """A random UUID, recorded."""
    return uuid.UUID(recorded_value(attempt, "uuid4", lambda: str(random_uuid())))
