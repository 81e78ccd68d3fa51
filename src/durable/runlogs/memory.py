"""`MemoryRunLogSource`: the `RunLogSource` port on a list, for the test kit.

`TestEnvironment` feeds it every record a run logs in the test process (`ctx.logger`'s and
the task's standard logging, stamped by `durable.logs`), so `env.logs(run_id)` reads what
`GET /runs/{id}/logs` would read from CloudWatch on AWS, by the same paging rules.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from durable.runlogs.base import (
    DEFAULT_LIMIT,
    LogPage,
    Position,
    RawEvent,
    check_limit,
    collect,
)


class MemoryRunLogSource:
    """Keeps log lines (one JSON record each) in memory, in arrival order."""

    def __init__(self) -> None:
        self._events: list[RawEvent] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def append(self, record: Mapping[str, Any], millis: int) -> None:
        """Keep one record, logged at `millis` (epoch milliseconds)."""
        line = json.dumps(dict(record), default=str)
        with self._lock:
            self._events.append(RawEvent(millis, str(next(self._ids)), line))

    def __len__(self) -> int:
        return len(self._events)

    def read(
        self,
        run_id: str,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
        since: datetime | None = None,
    ) -> LogPage:
        position = Position.decode(cursor)
        check_limit(limit)
        with self._lock:
            events = sorted(self._events, key=lambda event: event.millis)  # stable
        lines, reached, more = collect(run_id, events, position, limit)
        return LogPage(run_id, lines, reached.encode(), more)
