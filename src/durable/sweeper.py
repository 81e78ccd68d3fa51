"""The sweeper: re-enqueue runs whose wake-up is overdue, so a lost message never strands one.

Runs on a schedule (EventBridge in AWS, a loop in `durable dev`). A run is overdue when its
`wake_at` (sleep end, retry time, wait timeout, or a dead invocation's lease expiry) is more
than `grace` in the past. Sending a SWEEP message is always safe: the worker drops it when
the run is busy, finished or not due.
"""

from __future__ import annotations

from datetime import timedelta

from durable.clock import Clock
from durable.queues.base import WakeQueue
from durable.records import WakeReason, WakeUp
from durable.storage.base import RunStore


def sweep(
    store: RunStore,
    queue: WakeQueue,
    clock: Clock,
    grace: timedelta = timedelta(seconds=60),
    limit: int = 1000,
) -> int:
    """Send a wake-up for each overdue run; returns how many were sent."""
    due = store.due_runs(clock.now() - grace, limit=limit)
    for run in due:
        queue.send(WakeUp(run.run_id, WakeReason.SWEEP))
    return len(due)
