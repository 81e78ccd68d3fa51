"""The in-memory store's parked timers (`ParkedTimers`, `durable.storage.timers`), a mixin
of `MemoryRunStore`: a run's `wake_parked` flag stands for DynamoDB's `TIMER#<k>` key."""

from __future__ import annotations

import threading
from datetime import datetime

from durable.records import RunRecord


class MemoryParkedTimers:
    """`parked_timers` and `set_timer_parked` over the store's runs."""

    _lock: threading.RLock
    _runs: dict[str, RunRecord]
    writes: int

    def parked_timers(
        self, before: datetime, limit: int = 100, after: RunRecord | None = None
    ) -> list[RunRecord]:
        start = (after.wake_at, after.run_id) if after is not None else None
        with self._lock:
            parked = [
                run
                for run in self._runs.values()
                if run.wake_parked
                and run.wake_at is not None
                and run.wake_at <= before
                and (start is None or (run.wake_at, run.run_id) > start)
            ]
        parked.sort(key=lambda run: (run.wake_at, run.run_id))
        return parked[:limit]

    def set_timer_parked(
        self,
        run_id: str,
        parked: bool,
        *,
        wake_at: datetime | None,
        wake_token: str | None,
    ) -> bool:
        with self._lock:
            run = self._runs.get(run_id)
            if (
                run is None
                or run.wake_parked is parked
                or run.wake_at != wake_at
                or run.wake_token != wake_token
            ):
                return False
            self._runs[run_id] = run.with_changes(wake_parked=parked)
            self.writes += 1
            return True
