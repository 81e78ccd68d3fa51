"""The in-memory store's counters (`RunStats`), a mixin of `MemoryRunStore`: the same record
per task, shard and ring slot as on DynamoDB (`durable.storage.dynamodb.stats`: the bucket
the slot holds, its counters, the slot's share of the totals), written in the same steps.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from durable.records import RunRecord, RunStatus
from durable.storage._shards import shard_of
from durable.storage.base import (
    STATS_BUCKETS,
    STATS_SHARDS,
    ActiveCounts,
    SlotHeld,
    TaskCounts,
    add_to_stats_ring,
)


@dataclass
class _Slot:
    """One (task, shard, slot) record: `period` the bucket it holds (None before its first
    bucket), `counts` that bucket's counters, `totals` the slot's share of the totals."""

    period: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


class MemoryRunStats:
    """`add_stats`, `read_stats`, `stats_task_ids`, `count_active` over the store's dicts."""

    # The store's own, and the counters' records: (task, shard, slot) -> `_Slot`.
    _lock: threading.RLock
    _runs: dict[str, RunRecord]
    writes: int
    _stat_slots: dict[tuple[str, int, int], _Slot]

    def add_stats(
        self,
        task_id: str,
        bucket: int,
        window: Mapping[str, int],
        totals: Mapping[str, int],
        shard_key: str,
    ) -> None:
        add_to_stats_ring(self, task_id, shard_of(shard_key, STATS_SHARDS), bucket, window, totals)

    def _stats_try_add(
        self,
        task_id: str,
        shard: int,
        bucket: int,
        window: Mapping[str, int],
        totals: Mapping[str, int],
    ) -> SlotHeld | None:
        with self._lock:
            slot = self._stat_slots.get((task_id, shard, bucket % STATS_BUCKETS))
            if slot is None or slot.period != bucket:
                return SlotHeld(
                    period=None if slot is None else slot.period,
                    names=frozenset(slot.counts if slot else ()),
                )
            _add_into(slot.counts, window)
            _add_into(slot.totals, totals)
            self.writes += 1
        return None

    def _stats_roll(
        self,
        task_id: str,
        shard: int,
        bucket: int,
        held: SlotHeld,
        window: Mapping[str, int],
        totals: Mapping[str, int],
    ) -> bool:
        with self._lock:
            key = (task_id, shard, bucket % STATS_BUCKETS)
            slot = self._stat_slots.get(key) or _Slot()
            if slot.period != held.period:
                return False
            self._stat_slots[key] = slot
            # As on DynamoDB, only the counters the failed add saw are removed.
            counts = {
                name: amount for name, amount in slot.counts.items() if name not in held.names
            }
            counts.update(window)
            slot.period, slot.counts = bucket, counts
            _add_into(slot.totals, totals)
            self.writes += 1
        return True

    def _stats_add_totals(
        self, task_id: str, shard: int, bucket: int, totals: Mapping[str, int]
    ) -> None:
        with self._lock:
            slot = self._stat_slots.setdefault((task_id, shard, bucket % STATS_BUCKETS), _Slot())
            _add_into(slot.totals, totals)
            self.writes += 1

    def read_stats(
        self, task_ids: Collection[str], since_bucket: int, until_bucket: int | None = None
    ) -> list[TaskCounts]:
        last = until_bucket if until_bucket is not None else float("inf")
        found: list[TaskCounts] = []
        with self._lock:
            for task_id in task_ids:
                window: dict[str, int] = {}
                totals: dict[str, int] = {}
                for shard in range(STATS_SHARDS):
                    for index in range(STATS_BUCKETS):
                        slot = self._stat_slots.get((task_id, shard, index))
                        if slot is None:
                            continue
                        _add_into(totals, slot.totals)
                        if slot.period is not None and since_bucket <= slot.period <= last:
                            _add_into(window, slot.counts)
                found.append(TaskCounts(task_id, window, totals))
        return found

    def stats_task_ids(self) -> set[str]:
        with self._lock:
            return {task_id for task_id, _, _ in self._stat_slots}

    def count_active(self, statuses: Collection[RunStatus], cap: int) -> ActiveCounts:
        counts: dict[str, dict[RunStatus, int]] = {}
        seen: dict[RunStatus, int] = {}
        capped: set[RunStatus] = set()
        with self._lock:
            for run in self._runs.values():
                if run.status not in statuses:
                    continue
                if seen.get(run.status, 0) >= cap:
                    capped.add(run.status)
                    continue
                seen[run.status] = seen.get(run.status, 0) + 1
                per_task = counts.setdefault(run.task_id, {})
                per_task[run.status] = per_task.get(run.status, 0) + 1
        return ActiveCounts(counts, frozenset(capped))


def _add_into(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for name, amount in counts.items():
        into[name] = into.get(name, 0) + amount
