"""In-memory `WakeQueue` on a clock: messages fall due at send time + delay.

The test kit pops due messages in order; nothing is delivered before its time.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from durable.clock import Clock
from durable.queues.base import SQS_MAX_DELAY, QueueDepths
from durable.records import WakeUp


class MemoryWakeQueue:
    """A priority queue of (due time, message)."""

    def __init__(self, clock: Clock, max_delay: timedelta = SQS_MAX_DELAY) -> None:
        self._clock = clock
        self._max_delay = max_delay
        self._heap: list[tuple[datetime, int, WakeUp]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self.sent = 0

    @property
    def max_delay(self) -> timedelta:
        return self._max_delay

    def send(self, message: WakeUp, delay: timedelta = timedelta(0)) -> None:
        if delay > self._max_delay:
            raise ValueError(f"delay {delay} exceeds the queue's maximum {self._max_delay}")
        due = self._clock.now() + max(delay, timedelta(0))
        with self._lock:
            heapq.heappush(self._heap, (due, next(self._order), message))
            self.sent += 1

    def send_timed(self, entries: Sequence[tuple[WakeUp, timedelta]]) -> None:
        """Send each message after its own delay (one call, as SQS's batch of ten is)."""
        for message, delay in entries:
            self.send(message, delay)

    def waiting(self) -> int:
        """Messages due now and not yet taken (the backlog)."""
        now = self._clock.now()
        with self._lock:
            return sum(1 for due, _, _ in self._heap if due <= now)

    def depths(self) -> QueueDepths:
        """Due and delayed messages; none is ever in flight (`pop_due` takes it away) and
        there is no dead-letter queue."""
        now = self._clock.now()
        with self._lock:
            due = sum(1 for when, _, _ in self._heap if when <= now)
            return QueueDepths("memory", due, 0, len(self._heap) - due)

    def pop_due(self, now: datetime) -> WakeUp | None:
        """The earliest message due at `now`, removed from the queue; None if none is due."""
        with self._lock:
            if self._heap and self._heap[0][0] <= now:
                return heapq.heappop(self._heap)[2]
            return None

    def next_due(self) -> datetime | None:
        """When the earliest message falls due, None when the queue is empty."""
        with self._lock:
            return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
