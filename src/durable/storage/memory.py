"""In-memory `RunStore`: the test kit's backend and the reference for the contract.

Thread-safe (one lock); every method copies nothing because records are frozen. The run
counters (`RunStats`) are in `durable.storage.memory_stats`, a mixin, and the bulk jobs
(`BulkJobs`) in `durable.storage.memory_bulk`, another, and the queue slots (`QueueSlots`)
in `durable.storage.memory_slots`, a third.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from durable.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    ConflictError,
    RunNotFoundError,
)
from durable.records import (
    BatchItemResult,
    BatchRecord,
    Checkpoint,
    InboxEvent,
    RunRecord,
    RunStatus,
)
from durable.storage._shards import shard_of
from durable.storage.base import RunPage, finished_within, run_id_bound, token_key
from durable.storage.memory_admission import MemoryAdmissions
from durable.storage.memory_bulk import MemoryBulkJobs
from durable.storage.memory_slots import MemoryQueueSlots
from durable.storage.memory_stats import MemoryRunStats
from durable.storage.memory_timers import MemoryParkedTimers


class MemoryRunStore(
    MemoryRunStats, MemoryBulkJobs, MemoryAdmissions, MemoryParkedTimers, MemoryQueueSlots
):
    """Keeps everything in dictionaries; behaves like the DynamoDB adapter."""

    def __init__(self, index_shards: int = 1) -> None:
        if index_shards < 1:
            raise ValueError("a store needs at least one index shard")
        self._index_shards = index_shards
        self._lock = threading.RLock()
        self._runs: dict[str, RunRecord] = {}
        self._logs: dict[str, dict[int, Checkpoint]] = {}
        self._inbox: dict[str, list[InboxEvent]] = {}
        self._event_ids: dict[tuple[str, str], str] = {}
        # (task, key) -> (run id, when the claim expires; None: never)
        self._idempotency: dict[tuple[str, str], tuple[str, datetime | None]] = {}
        self._tags: dict[str, set[str]] = {}  # tag -> its runs' ids (DynamoDB's tag items)
        self._callbacks: dict[str, tuple[str, str, datetime | None, bool]] = {}
        self._callback_outcomes: dict[str, str] = {}
        self._batches: dict[tuple[str, int, int], BatchRecord] = {}
        self._batch_results: dict[tuple[str, int, int], dict[int, BatchItemResult]] = {}
        self._purge_leases: dict[int, tuple[str, datetime]] = {}
        self._stat_slots = {}  # the counters (`MemoryRunStats`)
        self.writes = 0  # counted for tests and benchmarks

    def create_run(self, run: RunRecord) -> tuple[RunRecord, bool]:
        with self._lock:
            if run.run_id in self._runs:
                raise ConflictError(f"run {run.run_id} exists")
            if run.idempotency_key is not None:
                key = (run.task_id, run.idempotency_key)
                claim = self._idempotency.get(key)
                # A claim holds until it expires; an expired one is replaced.
                if claim is not None and (claim[1] is None or claim[1] > run.created_at):
                    return self._runs[claim[0]], False
                self._idempotency[key] = (run.run_id, run.idempotency_expires_at)
            for tag in run.tags:
                self._tags.setdefault(tag, set()).add(run.run_id)
            self._runs[run.run_id] = run
            self._logs[run.run_id] = {}
            self.writes += 1
            return run, True

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def _require(self, run_id: str) -> RunRecord:
        run = self._runs.get(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    def acquire_lease(self, run_id: str, owner: str, now: datetime, expires: datetime) -> RunRecord:
        with self._lock:
            run = self._require(run_id)
            if run.status.is_terminal:
                raise ConflictError(f"run {run_id} is {run.status}")
            if (
                run.lease_owner is not None
                and run.lease_expires is not None
                and run.lease_expires > now
            ):
                raise ConflictError(f"run {run_id} is leased by another invocation")
            updated = run.with_changes(
                status=RunStatus.RUNNING,
                lease_owner=owner,
                lease_expires=expires,
                # An earlier wake-up stays (see RunStore.acquire_lease).
                wake_at=run.wake_at
                if run.wake_at is not None and run.wake_at <= expires
                else expires,
                wake_parked=False,  # the lease's expiry is its wake-up now
                updated_at=now,
                started_at=run.started_at or now,
                crash_streak=run.crash_streak + 1,
            )
            self._runs[run_id] = updated
            self.writes += 1
            return updated

    def update_run(
        self,
        run_id: str,
        changes: Mapping[str, Any],
        *,
        expect_owner: str | None = None,
        expect_status: Collection[RunStatus] | None = None,
        expect_waiting_for: str | None = None,
        expect_wake_by: datetime | None = None,
        expect_lease_until: datetime | None = None,
    ) -> RunRecord:
        if "tags" in changes:
            raise TypeError("update_run cannot change ['tags']: they are fixed at creation")
        with self._lock:
            run = self._require(run_id)
            if expect_owner is not None and run.lease_owner != expect_owner:
                raise ConflictError(f"run {run_id}: lease is not held by {expect_owner}")
            if expect_status is not None and run.status not in expect_status:
                raise ConflictError(f"run {run_id} is {run.status}")
            if expect_waiting_for is not None and run.waiting_for != expect_waiting_for:
                raise ConflictError(f"run {run_id} is not waiting for {expect_waiting_for}")
            if expect_wake_by is not None and (run.wake_at is None or run.wake_at > expect_wake_by):
                raise ConflictError(f"run {run_id} is not due by {expect_wake_by}")
            if expect_lease_until is not None and (
                run.lease_expires is None or run.lease_expires < expect_lease_until
            ):
                raise ConflictError(f"run {run_id}: no lease lasts until {expect_lease_until}")
            updated = run.with_changes(**changes)
            self._runs[run_id] = updated
            self.writes += 1
            return updated

    def append_checkpoint(self, run_id: str, checkpoint: Checkpoint) -> None:
        with self._lock:
            log = self._logs.get(run_id)
            if log is None:
                raise RunNotFoundError(run_id)
            if checkpoint.seq in log:
                raise ConflictError(f"run {run_id}: log slot {checkpoint.seq} is taken")
            log[checkpoint.seq] = checkpoint
            self.writes += 1

    def load_history(self, run_id: str, after_seq: int = 0) -> list[Checkpoint]:
        log = self._logs.get(run_id, {})
        return [log[seq] for seq in sorted(log) if seq > after_seq]

    def put_inbox(self, event: InboxEvent) -> None:
        with self._lock:
            self._require(event.run_id)
            inbox = self._inbox.setdefault(event.run_id, [])
            if any(existing.inbox_id == event.inbox_id for existing in inbox):
                raise ConflictError(f"run {event.run_id}: inbox id {event.inbox_id} is taken")
            inbox.append(event)
            self.writes += 1

    def claim_event_id(self, run_id: str, event_id: str, inbox_id: str) -> str:
        with self._lock:
            self._require(run_id)
            claimed = self._event_ids.setdefault((run_id, event_id), inbox_id)
            if claimed == inbox_id:
                self.writes += 1
            return claimed

    def list_inbox(self, run_id: str) -> list[InboxEvent]:
        return sorted(self._inbox.get(run_id, []), key=lambda event: event.inbox_id)

    def delete_inbox(self, run_id: str, inbox_ids: Collection[str]) -> None:
        with self._lock:
            doomed = set(inbox_ids)
            inbox = self._inbox.get(run_id, [])
            kept = [event for event in inbox if event.inbox_id not in doomed]
            if len(kept) != len(inbox):
                self._inbox[run_id] = kept
            self.writes += -(-len(doomed) // 25)  # as DynamoDB's batch writes: 25 a request

    def list_runs(
        self,
        *,
        task_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        tag: str | None = None,
        finished_after: datetime | None = None,
        finished_before: datetime | None = None,
    ) -> RunPage:
        with self._lock:
            candidates = (
                [self._runs[run_id] for run_id in self._tags.get(tag, ()) if run_id in self._runs]
                if tag is not None
                else list(self._runs.values())
            )
        runs = sorted(candidates, key=lambda run: run.run_id, reverse=True)
        low = run_id_bound(created_after) if created_after is not None else None
        high = run_id_bound(created_before) if created_before is not None else None
        selected = [
            run
            for run in runs
            if (task_id is None or run.task_id == task_id)
            and (status is None or run.status == status)
            and (cursor is None or run.run_id < cursor)
            and (low is None or run.run_id >= low)
            and (high is None or run.run_id < high)
            and finished_within(run, finished_after, finished_before)
        ]
        page = selected[:limit]
        next_cursor = page[-1].run_id if len(selected) > limit else None
        return RunPage(runs=page, next_cursor=next_cursor)

    def due_runs(
        self, before: datetime, limit: int = 100, after: RunRecord | None = None
    ) -> list[RunRecord]:
        start = (after.wake_at, after.run_id) if after is not None else None
        due = [
            run
            for run in self._runs.values()
            if run.wake_at is not None
            and not run.wake_parked
            and run.wake_at <= before
            and (start is None or (run.wake_at, run.run_id) > start)
        ]
        due.sort(key=lambda run: (run.wake_at, run.run_id))
        return due[:limit]

    @property
    def index_shards(self) -> int:
        """How many shards the expiry listing is split into (as a DynamoDB table's)."""
        return self._index_shards

    def expired_runs(
        self,
        before: datetime,
        limit: int = 100,
        *,
        shard: int | None = None,
        after: RunRecord | None = None,
    ) -> list[RunRecord]:
        start = (after.expires_at, after.run_id) if after is not None else None
        with self._lock:
            expired = [
                run
                for run in self._runs.values()
                if run.status.is_terminal
                and run.expires_at is not None
                and run.expires_at <= before
                and (shard is None or shard_of(run.run_id, self._index_shards) == shard)
                and (start is None or start[0] is None or (run.expires_at, run.run_id) > start)
            ]
        expired.sort(key=lambda run: (run.expires_at, run.run_id))
        return expired[:limit]

    def claim_purge_lease(self, shard: int, owner: str, now: datetime, until: datetime) -> bool:
        with self._lock:
            held = self._purge_leases.get(shard)
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self._purge_leases[shard] = (owner, until)
            self.writes += 1
            return True

    def release_purge_lease(self, shard: int, owner: str) -> None:
        with self._lock:
            held = self._purge_leases.get(shard)
            if held is not None and held[0] == owner:
                del self._purge_leases[shard]
                self.writes += 1

    def delete_run(self, run_id: str) -> int:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return 0
            if not run.status.is_terminal:
                raise ConflictError(f"run {run_id} is {run.status}: only finished runs are deleted")
            deleted = 1 + len(self._logs.pop(run_id, {})) + len(self._inbox.pop(run_id, []))
            for key in [key for key in self._event_ids if key[0] == run_id]:
                del self._event_ids[key]
                deleted += 1
            if run.idempotency_key is not None:
                key = (run.task_id, run.idempotency_key)
                claim = self._idempotency.get(key)
                if claim is not None and claim[0] == run_id:
                    del self._idempotency[key]
                    deleted += 1
            for tag in run.tags:
                self._tags.get(tag, set()).discard(run_id)
                deleted += 1
            for token, callback in list(self._callbacks.items()):
                if callback[0] == run_id:
                    del self._callbacks[token]
                    deleted += 1
            for batch_key in [batch_key for batch_key in self._batches if batch_key[0] == run_id]:
                deleted += 1 + len(self._batch_results.pop(batch_key, {}))
                del self._batches[batch_key]
            del self._runs[run_id]
            self.writes += deleted
            return deleted

    def put_callback(self, token: str, run_id: str, name: str, expires_at: datetime | None) -> None:
        with self._lock:
            self._callbacks[token_key(token)] = (run_id, name, expires_at, False)
            self.writes += 1

    def claim_callback(self, token: str, now: datetime, outcome: str = "") -> str:
        with self._lock:
            key = token_key(token)
            callback = self._callbacks.get(key)
            if callback is None:
                raise CallbackNotFoundError("no callback has this token")
            run_id, name, expires_at, completed = callback
            if completed:
                raise CallbackAlreadyCompletedError("this callback was completed already")
            if expires_at is not None and expires_at <= now:
                raise CallbackAlreadyCompletedError("this callback expired")
            self._callbacks[key] = (run_id, name, expires_at, True)
            self._callback_outcomes[key] = outcome
            self.writes += 1
            return run_id

    def callback_outcome(self, token: str) -> tuple[str, str] | None:
        key = token_key(token)
        callback = self._callbacks.get(key)
        if callback is None or not callback[3]:
            return None
        return callback[0], self._callback_outcomes.get(key, "")

    def create_batch(self, batch: BatchRecord) -> BatchRecord:
        with self._lock:
            key = (batch.run_id, batch.task_attempt, batch.position)
            existing = self._batches.get(key)
            if existing is not None:
                return existing
            self._batches[key] = batch
            self._batch_results[key] = {}
            self.writes += 1
            return batch

    def get_batch(self, run_id: str, task_attempt: int, position: int) -> BatchRecord | None:
        return self._batches.get((run_id, task_attempt, position))

    def record_batch_result(
        self, run_id: str, task_attempt: int, position: int, item: BatchItemResult
    ) -> tuple[BatchRecord, bool]:
        with self._lock:
            key = (run_id, task_attempt, position)
            batch = self._batches.get(key)
            if batch is None:
                raise ConflictError(f"run {run_id} has no batch at {task_attempt}/{position}")
            results = self._batch_results[key]
            if item.index in results:
                return batch, False
            results[item.index] = item
            batch = replace(
                batch,
                succeeded=batch.succeeded + (1 if item.ok else 0),
                failed=batch.failed + (0 if item.ok else 1),
            )
            self._batches[key] = batch
            self.writes += 1  # one transaction
            return batch, True

    def list_batch_results(
        self,
        run_id: str,
        task_attempt: int,
        position: int,
        *,
        start: int = 0,
        limit: int | None = None,
    ) -> list[BatchItemResult]:
        results = self._batch_results.get((run_id, task_attempt, position), {})
        indexes = sorted(index for index in results if index >= start)
        return [results[index] for index in indexes[:limit]]
