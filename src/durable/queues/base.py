"""The `WakeQueue` port.

A queue delivers wake-up messages at least once, possibly late, duplicated or out of
order; every consumer is idempotent. `send` takes a delay no longer than `max_delay`
(SQS: 15 minutes); longer waits are parked in the store until the sweeper hands them off
(`durable.services.timers`), so no adapter needs more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
class TimedBatchWakeQueue(WakeQueue, Protocol):
    """A queue that sends many messages per request, each with its own delay (SQS: ten)."""

    def send_timed(self, entries: Sequence[tuple[WakeUp, timedelta]]) -> None: ...


@runtime_checkable
class CountingWakeQueue(WakeQueue, Protocol):
    """A queue that tells how many messages wait, visible, for a consumer (SQS:
    `ApproximateNumberOfMessages`; delayed and in-flight messages are not counted)."""

    def waiting(self) -> int: ...


@dataclass(frozen=True, slots=True)
class QueueDepths:
    """How many messages a queue holds (SQS's approximate counts): visible and waiting for
    a consumer (`depth`), received and not yet deleted (`in_flight`), not yet visible
    (`delayed`); and its dead-letter queue's depth (None when it has none)."""

    name: str
    depth: int
    in_flight: int
    delayed: int
    dead_letter_name: str | None = None
    dead_letter_depth: int | None = None


@runtime_checkable
class MeasuredWakeQueue(WakeQueue, Protocol):
    """A queue that tells its depths (SQS: `GetQueueAttributes`, two requests with the
    dead-letter queue's)."""

    def depths(self) -> QueueDepths: ...


def queue_depths(queue: WakeQueue) -> QueueDepths | None:
    """The queue's depths; None when it cannot tell."""
    return queue.depths() if isinstance(queue, MeasuredWakeQueue) else None


def waiting_messages(queue: WakeQueue) -> int | None:
    """How many messages wait for a consumer; None when the queue cannot tell."""
    return queue.waiting() if isinstance(queue, CountingWakeQueue) else None


def send_timed(queue: WakeQueue, entries: Sequence[tuple[WakeUp, timedelta]]) -> None:
    """Send each message after its own delay, in batches where the queue takes them."""
    if isinstance(queue, TimedBatchWakeQueue):
        queue.send_timed(entries)
    else:
        for message, delay in entries:
            queue.send(message, delay)


def send_many(queue: WakeQueue, messages: Sequence[WakeUp]) -> None:
    """Send every message, in batches where the queue takes batches."""
    if isinstance(queue, BatchingWakeQueue):
        queue.send_many(messages)
    else:
        for message in messages:
            queue.send(message)
