"""The `WakeQueue` port.

A queue delivers wake-up messages at least once, possibly late, duplicated or out of
order; every consumer is idempotent. `send` takes a delay no longer than `max_delay`
(SQS: 15 minutes); the worker re-hops longer waits, so no adapter needs more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol, runtime_checkable

from durable.records import WakeUp

SQS_MAX_DELAY = timedelta(minutes=15)


class WakeQueue(Protocol):
    """Sends wake-up messages, each after an optional delay."""

    @property
    def max_delay(self) -> timedelta: ...

    def send(self, message: WakeUp, delay: timedelta = timedelta(0)) -> None: ...


@runtime_checkable
class BatchingWakeQueue(WakeQueue, Protocol):
    """A queue that sends many messages per request (SQS: ten)."""

    def send_many(self, messages: Sequence[WakeUp], delay: timedelta = timedelta(0)) -> None: ...


@runtime_checkable
class CountingWakeQueue(WakeQueue, Protocol):
    """A queue that tells how many messages wait, visible, for a consumer (SQS:
    `ApproximateNumberOfMessages`; delayed and in-flight messages are not counted)."""

    def waiting(self) -> int: ...


def waiting_messages(queue: WakeQueue) -> int | None:
    """How many messages wait for a consumer; None when the queue cannot tell."""
    return queue.waiting() if isinstance(queue, CountingWakeQueue) else None


def send_many(queue: WakeQueue, messages: Sequence[WakeUp]) -> None:
    """Send every message, in batches where the queue takes batches."""
    if isinstance(queue, BatchingWakeQueue):
        queue.send_many(messages)
    else:
        for message in messages:
            queue.send(message)
