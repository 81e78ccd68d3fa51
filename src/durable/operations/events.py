"""`ctx.wait_for_event`: suspend until an event of that name is sent to the run.

Log entries: `wait_started` (with the timeout instant) when the wait suspends, then
`event_received` (the data, and the inbox id it consumed) or `wait_timed_out`. Replay rule:
a received event returns its recorded data, a timed-out wait raises WaitTimeoutError again.
Events arrive in the run's inbox; each is consumed by one wait, oldest first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from durable.errors import WaitTimeoutError
from durable.names import event_name
from durable.operations.attempt import Attempt
from durable.records import CheckpointKind, RunStatus
from durable.serialization import JsonData


def wait_for_event(attempt: Attempt, name: str, timeout: timedelta | None) -> JsonData:
    """The data of the next event `name`; suspends until one arrives or the timeout."""
    event_name(name)
    position, entries = attempt.open("wait_for_event", name)
    timeout_at: datetime | None = None
    for entry in entries:
        if entry.kind is CheckpointKind.EVENT_RECEIVED:
            assert entry.value is not None
            return attempt.codec.decode(entry.value)
        if entry.kind is CheckpointKind.WAIT_TIMED_OUT:
            raise WaitTimeoutError(name)
        timeout_at = entry.wake_at
    started = bool(entries)
    if not started:
        attempt.before_fresh_operation()
        if timeout is not None:
            timeout_at = attempt.clock.now() + timeout
    event = attempt.next_unconsumed_event(name)
    if event is not None:
        attempt.stop_if_cancelled()
        attempt.record(
            CheckpointKind.EVENT_RECEIVED,
            position,
            name,
            value=event.data,
            inbox_id=event.inbox_id,
        )
        attempt.inbox_ledger().consume(event)
        return attempt.codec.decode(event.data)
    if timeout_at is not None and attempt.clock.now() >= timeout_at:
        attempt.record(CheckpointKind.WAIT_TIMED_OUT, position, name)
        raise WaitTimeoutError(name)
    if not started:
        attempt.record(CheckpointKind.WAIT_STARTED, position, name, wake_at=timeout_at)
    raise attempt.suspend_until(RunStatus.WAITING, timeout_at, waiting_for=name)
