"""Clocks: the only place the library reads the time.

`SystemClock` reads the wall clock; `VirtualClock` is moved by hand (the test kit's
time-skipping). Everything else takes a `Clock` and never calls `datetime.now`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the current instant, always timezone-aware UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that moves only when told to: `advance` and `set`."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("a virtual clock never moves backwards")
        with self._lock:
            self._now += delta

    def set(self, when: datetime) -> None:
        with self._lock:
            if when > self._now:
                self._now = when


def utc(when: datetime) -> datetime:
    """`when` as an aware UTC datetime (naive datetimes are taken to be UTC)."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)
