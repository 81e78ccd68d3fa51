"""The `WakeQueue` port.

A queue delivers wake-up messages at least once, possibly late, duplicated or out of
order; every consumer is idempotent. `send` takes a delay no longer than `max_delay`
(SQS: 15 minutes); the worker re-hops longer waits, so no adapter needs more.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from durable.records import WakeUp

SQS_MAX_DELAY = timedelta(minutes=15)


class WakeQueue(Protocol):
    """Sends wake-up messages, each after an optional delay."""

    @property
    def max_delay(self) -> timedelta: ...

    def send(self, message: WakeUp, delay: timedelta = timedelta(0)) -> None: ...
