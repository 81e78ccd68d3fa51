"""The in-memory store's queue slots and waiting runs (`QueueSlots`), a mixin of
`MemoryRunStore`: each change one step under the store's lock, as each is one conditional
write on DynamoDB (`durable.storage.dynamodb.slots`)."""

from __future__ import annotations

import threading
from collections.abc import Collection
from datetime import datetime

from durable.records import RunRecord
from durable.storage.slots import waiter_of, waiter_order

_Key = tuple[str, str | None]


class MemoryQueueSlots:
    """The slot holders and waiters of each (queue, key), in dictionaries."""

    _lock: threading.RLock
    _runs: dict[str, RunRecord]
    writes: int

    @property
    def _holders(self) -> dict[_Key, dict[str, datetime]]:
        holders: dict[_Key, dict[str, datetime]] = self.__dict__.setdefault("_slot_holders", {})
        return holders

    @property
    def _waiting(self) -> dict[_Key, dict[str, str]]:
        """(queue, key) -> waiter order (`waiter_order`) -> run id."""
        waiting: dict[_Key, dict[str, str]] = self.__dict__.setdefault("_slot_waiters", {})
        return waiting

    def acquire_slot(
        self, queue: str, key: str | None, run_id: str, limit: int, now: datetime
    ) -> bool:
        with self._lock:
            holders = self._holders.setdefault((queue, key), {})
            if run_id in holders:
                return True
            if len(holders) >= limit:
                return False
            holders[run_id] = now
            self.writes += 1
            return True

    def release_slot(self, queue: str, key: str | None, run_id: str) -> tuple[bool, int]:
        with self._lock:
            holders = self._holders.setdefault((queue, key), {})
            released = holders.pop(run_id, None) is not None
            if released:
                self.writes += 1
            return released, len(holders)

    def drop_holder(self, queue: str, key: str | None, run_id: str, acquired_at: datetime) -> bool:
        with self._lock:
            holders = self._holders.setdefault((queue, key), {})
            if holders.get(run_id) != acquired_at:
                return False
            del holders[run_id]
            self.writes += 1
            return True

    def slot_holders(self, queue: str, key: str | None) -> dict[str, datetime]:
        with self._lock:
            return dict(self._holders.get((queue, key), {}))

    def add_waiter(self, queue: str, key: str | None, run_id: str, priority: int) -> None:
        with self._lock:
            self._waiting.setdefault((queue, key), {})[waiter_order(priority, run_id)] = run_id
            self.writes += 1

    def remove_waiter(self, queue: str, key: str | None, run_id: str, priority: int) -> None:
        with self._lock:
            self._waiting.setdefault((queue, key), {}).pop(waiter_order(priority, run_id), None)
            self.writes += 1

    def waiters(self, queue: str, key: str | None, limit: int) -> list[tuple[int, str]]:
        with self._lock:
            return [waiter_of(order) for order in sorted(self._waiting.get((queue, key), {}))][
                :limit
            ]

    def count_waiters(
        self,
        queue: str,
        key: str | None,
        limit: int,
        before: tuple[int, str] | None = None,
    ) -> int:
        with self._lock:
            orders = self._waiting.get((queue, key), {})
            bound = waiter_order(*before) if before is not None else None
            found = sum(1 for order in orders if bound is None or order < bound)
            return min(found, limit)

    def queue_keys(self, queue: str, limit: int) -> list[str | None]:
        with self._lock:
            keys = {key for name, key in (*self._holders, *self._waiting) if name == queue}
            return sorted(keys, key=lambda key: key or "")[:limit]

    def get_runs(self, run_ids: Collection[str]) -> list[RunRecord]:
        with self._lock:
            return [self._runs[run_id] for run_id in run_ids if run_id in self._runs]
