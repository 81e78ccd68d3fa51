"""`ctx.sleep` and `ctx.sleep_until`: suspend the run until an instant; no Lambda waits.

Log entry: one `sleep_started` with the wake-up instant, recorded when the sleep is first
reached. Replay rule: the recorded instant holds (a sleep of "one hour" replayed tomorrow
does not start again); past it, the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from durable.operations.attempt import Attempt
from durable.records import CheckpointKind, RunStatus


def sleep(attempt: Attempt, name: str, wake_at_if_fresh: Callable[[], datetime]) -> None:
    """Suspend until the recorded wake-up instant (computed now if the sleep is fresh)."""
    position, entries = attempt.open("sleep", name)
    if entries:
        wake_at = entries[0].wake_at
    else:
        attempt.before_fresh_operation()
        wake_at = wake_at_if_fresh()
        attempt.record(CheckpointKind.SLEEP_STARTED, position, name, wake_at=wake_at)
    assert wake_at is not None
    if attempt.clock.now() < wake_at:
        raise attempt.suspend_until(RunStatus.WAITING, wake_at)
