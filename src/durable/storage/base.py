"""The `RunStore` port: what every storage adapter must honour.

`RunStore` is the union of small ports, one a record family, each stating its contract:
`RunRecords` (creating, leasing and updating runs), `RunLog` (the checkpoint log), `Inbox`
(events waiting for a run), `Listings` (runs by task, status, wake-up time), `Retention`
(expired runs, their deletion, the purge leases), `Callbacks` and `Batches` (fan-out),
`RunStats` (counters of runs per task, for metrics: never a run's state), `BulkJobs`
(bulk actions on runs, `durable.storage.bulk_jobs`), `Admissions` (rate windows and
debounce items, `durable.storage.admission`), `ParkedTimers` (far wake-ups that wait in
the store, `durable.storage.timers`), `QueueSlots` (concurrency slots of queues and
the runs waiting for one, `durable.services.slots`). A
consumer that uses one family can depend on that port alone; adapters implement them all.
The in-memory adapter and the DynamoDB adapter both pass `tests/contract`.

Adapters translate their backend's errors: nothing but `durable.errors` escapes. A failure
of the backend itself (throttling, 5xx, a timeout, a transaction conflict left after the
adapter's retries) is an `InfrastructureError`, never a `ConflictError`: `ConflictError`
means a condition really did not hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from durable.records import (
    BatchItemResult,
    BatchRecord,
    Checkpoint,
    InboxEvent,
    RunRecord,
    RunStatus,
)
from durable.storage.admission import Admissions
from durable.storage.bulk_jobs import BulkJob
from durable.storage.slots import QueueSlots
from durable.storage.timers import ParkedTimers


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of a run listing, newest first."""

    runs: list[RunRecord]
    next_cursor: str | None


class RunRecords(Protocol):
    """Runs: create, read, lease, update.

    - `create_run` stores a new run. With an idempotency key, the first run stored under
      (task_id, key) wins atomically; later calls return that run and `created=False`.
    - `acquire_lease` sets status RUNNING, the lease owner and expiry, and `wake_at` to the
      expiry unless the run's `wake_at` is already at or before it (either way the sweeper
      meets the run by the time the lease expires; keeping it spares the due index a write),
      and adds 1 to `crash_streak` (the worker sets it back to 0 when it persists),
      only if the run is not terminal and its lease is free or expired at `now`;
      otherwise `ConflictError`. It returns the run as stored after the write.
    - `update_run` applies `changes` (field name -> new value, names of `RunRecord` fields)
      only if every given condition holds (`expect_owner`: the lease owner equals it;
      `expect_status`: the status is one of them; `expect_waiting_for`: the run waits for
      exactly that; `expect_wake_by`: the run has a `wake_at`, at or before it;
      `expect_lease_until`: the run has a lease expiring at or after it); otherwise
      `ConflictError`.
    """

    def create_run(self, run: RunRecord) -> tuple[RunRecord, bool]: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def acquire_lease(
        self, run_id: str, owner: str, now: datetime, expires: datetime
    ) -> RunRecord: ...

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
    ) -> RunRecord: ...


class RunLog(Protocol):
    """A run's checkpoint log: append-only, fenced by slot.

    - `append_checkpoint` writes log slot `checkpoint.seq` only if that slot is empty;
      otherwise it raises `ConflictError` and writes nothing. This is the fence: two
      invocations of the same run can never both record an entry at one position. Exactly
      one write.
    - `load_history` returns every checkpoint in `seq` order (adapters page internally);
      with `after_seq`, only those whose `seq` is greater (one strongly consistent read, as
      the whole log is: a worker that holds the start of a log reads only what follows it).
      A log entry never changes once written and a log never shrinks while its run exists
      (only the retention purge deletes checkpoints, and only of finished runs), which is
      what makes reading the tail alone correct (`durable.storage.log_cache`).
    """

    def append_checkpoint(self, run_id: str, checkpoint: Checkpoint) -> None: ...

    def load_history(self, run_id: str, after_seq: int = 0) -> list[Checkpoint]: ...


class Inbox(Protocol):
    """Events sent to a run, waiting for its log to consume them.

    - Inbox events are kept in arrival order; `put_inbox` never overwrites. `delete_inbox`
      deletes the named events of a run (the ones its log has consumed); an id that is not
      there is skipped. Not atomic across ids: a delete cut short leaves some, and deleting
      them again finishes (the log, not the inbox, says what was consumed).
    - `claim_event_id(run_id, event_id, inbox_id)` records that the event sent to the run
      with `event_id` has `inbox_id`, unless one was recorded before, and returns the inbox
      id on record: a retried send reuses it, so the event is stored once. One conditional
      write; `delete_run` deletes these with the run.
    """

    def put_inbox(self, event: InboxEvent) -> None: ...

    def list_inbox(self, run_id: str) -> list[InboxEvent]: ...

    def delete_inbox(self, run_id: str, inbox_ids: Collection[str]) -> None: ...

    def claim_event_id(self, run_id: str, event_id: str, inbox_id: str) -> str: ...


class Listings(Protocol):
    """Runs found by task, status or wake-up time.

    - `list_runs` pages runs newest first, of a task and in a status when given, created at
      or after `created_after` and before `created_before` when given; a page's
      `next_cursor` continues that listing. The creation instant is the one a run's id
      carries (`durable.ids`: run ids sort by it, to the millisecond; a batch child's is
      its parent's), so a time range is a range of run ids (`run_id_bound`).
      With `tag`, only runs carrying that tag (a listing of the tag's index entries, task
      and status then checked on the runs read). With `finished_after` / `finished_before`,
      only finished runs whose `finished_at` is in [after, before): no index holds a finish
      time, so these are checked on the runs read; `finished_before` also bounds the
      creation range (a run finishes after it is created). A page whose filters are checked
      on the runs read examines at most `MAX_EXAMINED_PER_PAGE` index entries: it may hold
      fewer than `limit` runs (none, even) and still have a `next_cursor`; the listing ends
      only when `next_cursor` is None.
    - `due_runs` lists unparked runs (see `durable.storage.timers`) whose `wake_at` is at
      or before `before`, oldest first (by
      `wake_at`, then run id), up to `limit`, starting after the run `after` (the last of
      the previous page). A finished run carries a `wake_at` only while the follow-ups of
      its end are pending (see `durable.services.endings`), so it is listed until they are done.
    """

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
    ) -> RunPage: ...

    def due_runs(
        self, before: datetime, limit: int = 100, after: RunRecord | None = None
    ) -> list[RunRecord]: ...


class Retention(Protocol):
    """Finished runs past their retention: finding them, deleting them, who purges which shard.

    - `expired_runs` lists finished runs whose `expires_at` is at or before `before`
      (oldest expiry first, then by run id); with `shard`, only those of that index shard
      (`index_shards` of them, `durable.storage._shards.shard_of`), and with `after`, only
      those after that run (the last of the previous page), as `due_runs` pages.
    - `delete_run` deletes a finished run and everything stored for it: the run, every
      checkpoint and inbox event, its idempotency claim (only while the claim still names
      this run, so the key can start a new run afterwards) and its callbacks. It returns how
      many items it deleted; a run that is gone deletes nothing and returns 0. A run that
      has not ended raises `ConflictError` and nothing is deleted. The run itself goes last:
      a delete cut short leaves the run findable, and deleting it again finishes.
    - Purge leases (`durable.services.purge`): `claim_purge_lease(shard, owner, now, until)` gives
      the shard's lease to `owner` until `until` and returns True, if nobody holds it at
      `now` (free, expired, or held by `owner` already); otherwise it returns False and
      writes nothing. One conditional write. `release_purge_lease(shard, owner)` frees it if
      `owner` still holds it (otherwise nothing happens).
    """

    @property
    def index_shards(self) -> int: ...

    def expired_runs(
        self,
        before: datetime,
        limit: int = 100,
        *,
        shard: int | None = None,
        after: RunRecord | None = None,
    ) -> list[RunRecord]: ...

    def claim_purge_lease(self, shard: int, owner: str, now: datetime, until: datetime) -> bool: ...

    def release_purge_lease(self, shard: int, owner: str) -> None: ...

    def delete_run(self, run_id: str) -> int: ...


class Callbacks(Protocol):
    """Callbacks, kept by a hash of their token (`token_key`), never the token itself.

    `put_callback` registers one; `claim_callback` marks it completed once, keeping the
    encoded `outcome` (so `callback_outcome` can tell a retried completion from a second
    one), and returns its run id, raising `CallbackNotFoundError` for an unknown token and
    `CallbackAlreadyCompletedError` for one completed before or past its expiry. One
    conditional write.
    """

    def put_callback(
        self, token: str, run_id: str, name: str, expires_at: datetime | None
    ) -> None: ...

    def claim_callback(self, token: str, now: datetime, outcome: str = "") -> str: ...

    def callback_outcome(self, token: str) -> tuple[str, str] | None: ...


class Batches(Protocol):
    """Batches (fan-out), beside their run, keyed by (run, task attempt, position).

    `create_batch` stores one unless it exists (then returns the stored one);
    `record_batch_result` stores a child's outcome and moves the counters in one atomic
    write, once per child (a repeat changes nothing and returns `recorded=False`);
    `list_batch_results` returns the outcomes in index order, those from index `start` on,
    at most `limit` of them (all when None): a page, whose next one starts one past its last
    index. `delete_run` deletes them.
    """

    def create_batch(self, batch: BatchRecord) -> BatchRecord: ...

    def get_batch(self, run_id: str, task_attempt: int, position: int) -> BatchRecord | None: ...

    def record_batch_result(
        self, run_id: str, task_attempt: int, position: int, item: BatchItemResult
    ) -> tuple[BatchRecord, bool]: ...

    def list_batch_results(
        self,
        run_id: str,
        task_attempt: int,
        position: int,
        *,
        start: int = 0,
        limit: int | None = None,
    ) -> list[BatchItemResult]: ...


# How many time buckets of counters a store keeps per task (a ring: an add to a newer bucket
# takes the slot of the one `STATS_BUCKETS` before it), and how many shards each task's
# counters are spread over (by a hash of the run, so a busy task is not one hot key).
STATS_BUCKETS = 8
STATS_SHARDS = 4


@dataclass(frozen=True, slots=True)
class TaskCounts:
    """A task's counters as read: `window` summed over the buckets asked for, `totals` its
    lifetime counters (name -> amount; a name never added is absent)."""

    task_id: str
    window: dict[str, int]
    totals: dict[str, int]


@dataclass(frozen=True, slots=True)
class SlotHeld:
    """What an add found in its ring slot when that slot held another bucket than its own:
    that bucket's number (`period`, None for an empty slot) and the names of its counters
    (what a rollover removes). The adapters' two steps of an add, `_stats_try_add` (the add,
    guarded by the slot's period: a `SlotHeld` when the guard failed) and `_stats_roll` (the
    rollover, guarded by the slot still holding `period`: False when another writer rolled
    it first), take and give it, so a test can run two writers' steps in a racing order."""

    period: int | None
    names: frozenset[str]


class StatsRingSteps(Protocol):
    """An adapter's steps of a counter add (see `SlotHeld`), for `add_to_stats_ring`."""

    def _stats_try_add(
        self,
        task_id: str,
        shard: int,
        bucket: int,
        window: Mapping[str, int],
        totals: Mapping[str, int],
    ) -> SlotHeld | None: ...

    def _stats_roll(
        self,
        task_id: str,
        shard: int,
        bucket: int,
        held: SlotHeld,
        window: Mapping[str, int],
        totals: Mapping[str, int],
    ) -> bool: ...

    def _stats_add_totals(
        self, task_id: str, shard: int, bucket: int, totals: Mapping[str, int]
    ) -> None: ...


def add_to_stats_ring(
    steps: StatsRingSteps,
    task_id: str,
    shard: int,
    bucket: int,
    window: Mapping[str, int],
    totals: Mapping[str, int],
) -> None:
    """`RunStats.add_stats` on an adapter's steps: the add; on a slot holding an older
    bucket (or none), its rollover, and the add once more if another writer rolled it
    first. An add whose bucket has left the ring (the slot holds a newer one), or that
    loses the race twice, still counts its totals."""
    if window:
        for _ in range(2):
            held = steps._stats_try_add(task_id, shard, bucket, window, totals)
            if held is None:
                return
            if held.period is not None and held.period > bucket:
                break  # the slot holds a newer bucket: this add's is gone from the ring
            if steps._stats_roll(task_id, shard, bucket, held, window, totals):
                return
    if totals:
        steps._stats_add_totals(task_id, shard, bucket, totals)


@dataclass(frozen=True, slots=True)
class ActiveCounts:
    """Runs not yet ended, per task and status, from the status index; `capped` names the
    statuses with more runs than the count read (their figure is a lower bound)."""

    counts: dict[str, dict[RunStatus, int]]
    capped: frozenset[RunStatus]


class RunStats(Protocol):
    """Counters of runs per task (`durable.services.stats` says what it counts). Counters are
    figures about runs, never their state: nothing reads them to decide what a run does.

    - `add_stats(task_id, bucket, window, totals, shard_key)` adds each amount of `window`
      (counter name -> amount) to the task's counters of time bucket `bucket` (a number
      that grows with time, chosen by the caller) and each of `totals` to its lifetime
      counters; `shard_key` (the run id) picks one of `STATS_SHARDS` shards. A store keeps
      the last `STATS_BUCKETS` buckets of a task: an add to a bucket newer than the one in
      its slot (`bucket % STATS_BUCKETS`) replaces it (rolls the slot over), the window of an
      add to an older one is dropped (its totals are kept). Each (shard, slot) is one
      record holding the slot's bucket and its share of the totals: an add is one atomic
      write of both to the current slot's record (one more at a rollover, which clears
      that slot's bucket only, never its totals; the totals are the sum over the
      records). Names are `[a-z0-9_]` only. The first add of a task records the task
      (`stats_task_ids`).
    - `read_stats(task_ids, since_bucket, until_bucket)` returns each task's counters: its
      window summed over the buckets it still keeps from `since_bucket` on (up to
      `until_bucket` when given, which lets an adapter read only those slots), its totals;
      a task with none has empty ones. Reads by key only (no scan).
    - `stats_task_ids()` lists every task that has counters.
    - `count_active(statuses, cap)` counts the runs in each of `statuses` per task (from
      the status index), reading about `cap` runs of each status at most (an adapter
      with index shards reads at least one a shard); `capped` names the statuses it did
      not read to the end.
    """

    def add_stats(
        self,
        task_id: str,
        bucket: int,
        window: Mapping[str, int],
        totals: Mapping[str, int],
        shard_key: str,
    ) -> None: ...

    def read_stats(
        self, task_ids: Collection[str], since_bucket: int, until_bucket: int | None = None
    ) -> list[TaskCounts]: ...

    def stats_task_ids(self) -> set[str]: ...

    def count_active(self, statuses: Collection[RunStatus], cap: int) -> ActiveCounts: ...


class BulkJobs(Protocol):
    """Bulk jobs (`durable.services.bulk`), each one record with a processing lease.

    - `create_bulk_job` stores a new job (its lease free); `ConflictError` if its id exists.
    - `get_bulk_job` returns the job as stored (strongly consistent), None when unknown.
    - `claim_bulk_job(job_id, owner, now, until)` gives the job's lease to `owner` until
      `until` and returns the job as stored after the write, if the job is running and
      nobody holds its lease at `now` (free, expired, or held by `owner` already);
      otherwise it returns None and writes nothing. One conditional write.
    - `save_bulk_job(job, owner)` replaces the stored job with `job` (its lease fields
      included: `lease_owner=None` frees it) only if `owner` holds the lease; otherwise
      `ConflictError` and nothing is written. One conditional write: a worker that lost
      its lease (expired, taken over) can never count anything twice.
    """

    def create_bulk_job(self, job: BulkJob) -> None: ...

    def get_bulk_job(self, job_id: str) -> BulkJob | None: ...

    def claim_bulk_job(
        self, job_id: str, owner: str, now: datetime, until: datetime
    ) -> BulkJob | None: ...

    def save_bulk_job(self, job: BulkJob, owner: str) -> BulkJob: ...


class RunStore(
    RunRecords,
    RunLog,
    Inbox,
    Listings,
    Retention,
    Callbacks,
    Batches,
    RunStats,
    BulkJobs,
    Admissions,
    ParkedTimers,
    QueueSlots,
    Protocol,
):
    """Durable storage of runs, their checkpoint logs and inboxes: every family above."""


# How many index entries one listing page may examine when its filters are checked on the
# runs read (a tag with a task or status, a finish-time range): a bounded read per request.
MAX_EXAMINED_PER_PAGE = 1000


def finished_within(run: RunRecord, after: datetime | None, before: datetime | None) -> bool:
    """Whether the run is in the finish-time range [after, before) (any run, without one)."""
    if after is None and before is None:
        return True
    finished = run.finished_at
    if finished is None or not run.status.is_terminal:
        return False
    return (after is None or finished >= after) and (before is None or finished < before)


def run_id_bound(when: datetime) -> str:
    """The run-id prefix of the instant `when` (`durable.ids.new_run_id`, to the millisecond):
    every run created at or after `when` has an id above it, every run created before it
    one below (a prefix sorts before every id that extends it)."""
    millis = int(when.timestamp() * 1000)
    return f"run_{max(millis, 0):012x}"


def token_key(token: str) -> str:
    """What a store keeps instead of a callback token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
