"""The sweeper: hand off parked timers, re-enqueue runs whose wake-up is overdue, and purge
finished runs past retention.

Each sweep first sends the timers of the parked runs (wake-ups further than the queue's
longest delay when they were set) that fall due within that delay, each delayed to its
second (`durable.services.timers`); the overdue sweep below never meets a parked run.

Runs on a schedule (EventBridge in AWS, a loop in `durable dev`). A run is overdue when its
`wake_at` (sleep end, retry time, wait timeout, or a dead invocation's lease expiry) is more
than `grace` in the past. Sending a SWEEP message is always safe: the worker drops it when
the run is busy, finished or not due.

A run that waits for its message (queued, waiting or retrying, no invocation holding it)
may be overdue only because its message waits in a backlog: re-sending it then doubles the
work exactly when the workers are behind. So such a run is re-sent only when the queue
holds no message waiting for a consumer (its own cannot be among them: it was lost, a crash
between the write and the send), or once it is `BACKLOG_PATIENCE` overdue. A run whose
invocation died (an expired lease) and a finished run with follow-ups are re-sent at once.

A running run's `wake_at` is its lease's first expiry: heartbeats renew `lease_expires`
alone, so that they write no index (`durable.worker.invocation`). When the sweeper meets a run whose
`wake_at` has passed but whose lease is still live, it moves `wake_at` to the lease's
expiry (a conditional update on the lease owner) instead of re-sending it: a long step
costs one index write per sweep that meets it, not one per heartbeat. `wake_at` never
passes `lease_expires`, so a run whose invocation dies is still re-sent once its lease
has expired for `grace`, as before.

Retention: a run that ends gets `expires_at` (finish time + retention, none when runs are
kept forever). Each run past it is deleted with everything stored for it (see
`RunStore.delete_run`): a native DynamoDB TTL on the run item alone would orphan the log.
The scheduled sweeper does not delete runs itself: it sends one PURGE message per expiry
shard that holds expired runs, and the workers purge the shards (`durable.services.purge`, which
applies the rules below to each run). `purge_expired` here is the same purge, serial, in
one process (the test kit's `purge`, the capacity benchmark's per-run request count).
Nothing may write into a run once it is gone, or that write would be orphaned:

- only finished runs carry `expires_at`, and a finished run never runs again;
- a write that saw the run unfinished just before (an event put, a dying invocation's last
  checkpoint) lands within minutes at most (Lambda stops every invocation within 15), so a
  run is never purged sooner than `SETTLE` after it finished, whatever its retention.

A purge cut short (a timeout, throttling, a crash) leaves the run item, which is deleted
last, so the next sweep finds the run again and finishes it.
Large values in S3 are not deleted here: the bucket's lifecycle rule expires them.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from durable.clock import Clock
from durable.errors import ConflictError, RunNotFoundError
from durable.logs import library_logger
from durable.queues.base import WakeQueue, send_many, waiting_messages
from durable.records import RunRecord, RunStatus, WakeReason, WakeUp
from durable.services.purge import SETTLE, purgeable
from durable.services.timers import hand_off_timers
from durable.storage.base import RunStore

__all__ = ["BACKLOG_PATIENCE", "SETTLE", "purge_expired", "sweep"]

# How late a waiting run may be before it is re-sent even while the queue has a backlog.
BACKLOG_PATIENCE = timedelta(hours=1)
WAITS_FOR_ITS_MESSAGE = (RunStatus.QUEUED, RunStatus.WAITING, RunStatus.RETRYING)


def sweep(
    store: RunStore,
    queue: WakeQueue,
    clock: Clock,
    grace: timedelta = timedelta(seconds=60),
    limit: int = 10_000,
    budget: timedelta | None = None,
    page_size: int = 1000,
) -> int:
    """Hand off the parked timers due within the queue's delay, then send a wake-up for
    each overdue run; returns how many overdue runs were sent.

    Pages through the due index, oldest first, until it is exhausted, `limit` runs were
    sent or `budget` has gone by: runs that stay due (held for a code version, poisoned)
    never hide the ones behind them. Wake-ups go out ten to a request. A run that waits for
    its message is left alone while the queue has a backlog (see above).
    """
    started = clock.now()
    # First the parked timers due within the queue's delay (`durable.services.timers`).
    handed_off = hand_off_timers(
        store, queue, clock, limit=limit, budget=budget, page_size=page_size
    )
    if handed_off:
        library_logger().info("parked timers handed off", timers=handed_off)
    before = started - grace
    backlog = waiting_messages(queue)
    sent = 0
    after = None
    while sent < limit:
        asked = min(page_size, limit - sent)
        due = store.due_runs(before, limit=asked, after=after)
        if not due:
            break
        alive = [run for run in due if _lease_is_live(run, before)]
        alive_ids = {run.run_id for run in alive}
        lost = [
            run
            for run in due
            if run.run_id not in alive_ids and not _maybe_queued(run, backlog, started)
        ]
        send_many(queue, [WakeUp(run.run_id, WakeReason.SWEEP) for run in lost])
        sent += len(lost)
        for run in alive:
            _follow_lease(store, run)
        after = due[-1]
        if len(due) < asked:
            break  # the index has no more: asking again would cost a query per shard
        if budget is not None and clock.now() - started >= budget:
            break
    return sent


def _lease_is_live(run: RunRecord, before: datetime) -> bool:
    """Whether the run's invocation holds a lease that has not expired `grace` ago."""
    return (
        run.status is RunStatus.RUNNING
        and run.lease_owner is not None
        and run.lease_expires is not None
        and run.lease_expires > before
    )


def _follow_lease(store: RunStore, run: RunRecord) -> None:
    """Move a running run's `wake_at` to its lease's expiry as read, if the same invocation
    still holds a lease that lasts at least that long.

    A run persisted or leased again since it was read has a `wake_at` of its own, and a
    lease shortened since (a step with a heartbeat timeout) moved `wake_at` itself: the
    condition then fails and nothing is written.
    """
    with contextlib.suppress(ConflictError, RunNotFoundError):
        store.update_run(
            run.run_id,
            {"wake_at": run.lease_expires},
            expect_owner=run.lease_owner,
            expect_status=(RunStatus.RUNNING,),
            expect_lease_until=run.lease_expires,
        )


def _maybe_queued(run: RunRecord, backlog: int | None, now: datetime) -> bool:
    """Whether the run's message may still wait in the queue's backlog."""
    if run.status not in WAITS_FOR_ITS_MESSAGE or run.lease_owner is not None:
        return False
    if backlog is None or backlog == 0:
        return False
    assert run.wake_at is not None
    return now - run.wake_at < BACKLOG_PATIENCE


def purge_expired(
    store: RunStore,
    clock: Clock,
    limit: int = 1000,
    budget: timedelta | None = None,
    settle: timedelta = SETTLE,
) -> int:
    """Delete up to `limit` finished runs whose retention has passed; returns how many.

    A run that finished less than `settle` ago waits, even when it has expired. With a
    `budget`, no further run is started once that much time has gone by (the rest wait for
    the next sweep), so a backlog never runs the sweeper into its timeout.
    """
    started = clock.now()
    purged = 0
    for run in store.expired_runs(started, limit=limit):
        if budget is not None and clock.now() - started >= budget:
            break
        if not purgeable(run, started, settle):
            continue  # not settled, or the follow-ups of its end are pending: not yet
        if store.delete_run(run.run_id) > 0:
            purged += 1
    return purged
