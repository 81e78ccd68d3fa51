"""The `ParkedTimers` port: runs whose far `wake_at` waits in the store, not in the queue.

A queue delays a message by at most its `max_delay` (SQS: 15 minutes). A run that sleeps
longer is parked instead of sent: `RunRecord.wake_parked` is set in the same write as its
`wake_at`, and no message is in flight for it. The sweeper hands each parked run off once
its `wake_at` is within the queue's delay (`durable.services.timers`): it sends the timer
delayed to the second, then un-parks the run. Parked and unparked runs share the one due
index: on DynamoDB a parked run's `due_pk` is `TIMER#<k>` instead of `WAKE#<k>`, so
`due_runs` (the overdue sweep) never meets it and `parked_timers` meets nothing else.

Contract, on every adapter:
- `parked_timers(before, limit, after)` lists parked runs whose `wake_at` is at or before
  `before`, oldest first (by `wake_at`, then run id), up to `limit`, after the run `after`
  (the last of the previous page), as `due_runs` pages; a run read as no longer parked or
  no longer due by then is left out.
- `set_timer_parked(run_id, parked, wake_at=, wake_token=)` parks (or un-parks) the run
  only if it is not (or is) parked and its `wake_at` and `wake_token` are exactly those
  given (None: absent): one conditional write. Returns whether it wrote; a run that moved
  on, or is gone, is left alone and gives False.
- `acquire_lease` un-parks the run it leases: a running run's wake-up is its lease's
  expiry, which the overdue sweep meets if the invocation dies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from durable.records import RunRecord


class ParkedTimers(Protocol):
    """Runs whose far wake-up is parked in the due index (see above)."""

    def parked_timers(
        self, before: datetime, limit: int = 100, after: RunRecord | None = None
    ) -> list[RunRecord]: ...

    def set_timer_parked(
        self,
        run_id: str,
        parked: bool,
        *,
        wake_at: datetime | None,
        wake_token: str | None,
    ) -> bool: ...
