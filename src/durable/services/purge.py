"""The retention purge, fanned out to the workers: one purger per expiry shard at a time.

The sweeper does not delete runs itself. Once a sweep, it looks at each shard of the
expiry index (`RunStore.index_shards`) and, for each that holds a run past its expiry,
sends one PURGE message for that shard to the worker queue (`send_purge_messages`). A
worker that receives it purges the shard (`purge_shard`):

    sweeper ──► PURGE#k ──► worker: claim lease PURGE#k ─┬─ held by another: drop the message
                                                         └─ got it: page the shard's expired
                                                            runs, oldest first, delete them
                                                            `threads` at a time, until none
                                                            is left or `budget` is spent
                                    release the lease ◄──┘
                                    budget spent: send PURGE#k again (a continuation)

So a backlog drains at the rate of the workers (a purger per shard, `threads` deletes in
flight each), not of the sweeper. The rules are those of the serial purge
(`durable.services.sweeper`), applied to each run by `purgeable`:

- only finished runs carry `expires_at` (the store checks it again, and `delete_run`
  refuses a run that has not ended);
- a run that finished less than `SETTLE` ago waits, whatever its retention;
- a run whose `wake_at` is set still has the follow-ups of its end pending: it waits;
- `delete_run` deletes the run item last, so a purge cut short is found again.

At most one purger per shard: the shard's lease (`RunStore.claim_purge_lease`) lasts the
purger's budget and `LEASE_MARGIN` more, and a message for a shard whose lease is held is
acknowledged and dropped. The next sweep sends another: a purger that died leaves a lease
that expires, and the next message takes over. Duplicate and late messages are harmless:
each claims the lease or is dropped, and a purger that finds nothing left releases it.
The lease is released before the continuation is sent, so the continuation can claim it.
The lease spares work; safety never rests on it: should two purgers meet (one past its
lease), each delete is idempotent and the rules above hold for each.
A PURGE message is never routed by code version: it belongs to no run.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from durable.clock import Clock
from durable.errors import ConflictError
from durable.ids import new_owner_id
from durable.queues.base import WakeQueue, send_many
from durable.records import RunRecord, WakeUp
from durable.storage.base import RunStore

# The least time between a run's end and its purge (see `durable.services.sweeper`).
SETTLE = timedelta(hours=1)
# How long one purger works on its shard before it hands over to a continuation.
PURGE_BUDGET = timedelta(seconds=60)
# How long past its budget a purger's lease lasts (the last page's deletes in flight).
LEASE_MARGIN = timedelta(seconds=30)
# How many `delete_run`s one purger has in flight.
PURGE_THREADS = 8
# How many expired runs one purger reads at a time.
PURGE_PAGE = 100


@dataclass(frozen=True, slots=True)
class ShardPurge:
    """What one purge message did to its shard."""

    shard: int
    purged: int = 0
    held: bool = False  # another purger holds the shard: nothing was done
    continued: bool = False  # the budget ran out: the shard's message was sent again


def purgeable(run: RunRecord, now: datetime, settle: timedelta = SETTLE) -> bool:
    """Whether an expired run may be deleted now (the rules above)."""
    if run.finished_at is not None and now - run.finished_at < settle:
        return False
    return run.wake_at is None  # a wake_at: the follow-ups of its end are pending


def send_purge_messages(store: RunStore, queue: WakeQueue, clock: Clock) -> int:
    """Send one PURGE message for each expiry shard that holds a run past its expiry;
    returns how many were sent (one index query per shard, and one read of its oldest)."""
    now = clock.now()
    shards = [
        shard
        for shard in range(store.index_shards)
        if store.expired_runs(now, limit=1, shard=shard)
    ]
    send_many(queue, [WakeUp.purge(shard) for shard in shards])
    return len(shards)


def purge_shard(
    store: RunStore,
    queue: WakeQueue,
    clock: Clock,
    shard: int,
    *,
    budget: timedelta = PURGE_BUDGET,
    threads: int = PURGE_THREADS,
    settle: timedelta = SETTLE,
    page_size: int = PURGE_PAGE,
) -> ShardPurge:
    """Purge the expired runs of `shard` unless another purger holds it (see above)."""
    started = clock.now()
    owner = new_owner_id()
    if not store.claim_purge_lease(shard, owner, started, started + budget + LEASE_MARGIN):
        return ShardPurge(shard, held=True)
    try:
        purged, spent = _drain(store, clock, shard, started, budget, threads, settle, page_size)
    except Exception:
        # An infrastructure error: the message comes back, and must find the shard free.
        with contextlib.suppress(Exception):
            store.release_purge_lease(shard, owner)
        raise
    store.release_purge_lease(shard, owner)
    if spent:
        queue.send(WakeUp.purge(shard))
    return ShardPurge(shard, purged=purged, continued=spent)


def _drain(
    store: RunStore,
    clock: Clock,
    shard: int,
    started: datetime,
    budget: timedelta,
    threads: int,
    settle: timedelta,
    page_size: int,
) -> tuple[int, bool]:
    """Delete the shard's purgeable runs, a page at a time; returns how many runs were
    deleted and whether the budget ran out before the shard was done. The budget is looked
    at after each page, so every purger makes progress, however little time it was given."""
    purged = 0
    after: RunRecord | None = None
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        while True:
            page = store.expired_runs(started, limit=page_size, shard=shard, after=after)
            run_ids = [run.run_id for run in page if purgeable(run, started, settle)]
            deleted = pool.map(_delete, [store] * len(run_ids), run_ids)
            purged += sum(1 for gone in deleted if gone)
            if len(page) < page_size:
                return purged, False
            if clock.now() - started >= budget:
                return purged, True
            after = page[-1]


def _delete(store: RunStore, run_id: str) -> bool:
    """Delete one run; whether it was there (a run that has not ended is left alone)."""
    try:
        return store.delete_run(run_id) > 0
    except ConflictError:
        return False
