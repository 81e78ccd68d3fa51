"""Concurrency slots: at most `Queue.concurrency` runs of a queue execute at once, per
concurrency key, and the others wait their turn in priority order.

    message ─► enter: acquire a slot ─► lease, execute ─► persist ─► release (end, wait)
                 └─ full: waiter item, QUEUED `queue:<name>`, acquire once more ─► drop

The slots of (queue, key) are one item (`durable.storage.base.QueueSlots`): acquiring is
one conditional write that adds the run to its holders only while fewer than the limit
hold one, so a slot is never handed out twice, whatever races or repeats; a run that
holds one holds it still (a duplicate message, an invocation that died and comes back).
The limit is the code's (`Queue.concurrency`, read at every acquire). Each key has its own
slots: a busy key never takes another's, and a key's waiters are woken by its releases.

Rules, each making a crash, a lost message or a duplicate harmless:
- A run that finds the slots full writes its waiter item, becomes QUEUED with
  `waiting_for = "queue:<name>"` and a `wake_at` `WAIT_RECHECK` out (the sweeper's: a
  lost wake-up costs at most that long; each recheck that finds the slots full puts the
  next one twice as far, up to `MAX_WAIT_RECHECK`), then tries once more: a release between its
  first try and its waiter item would not have seen it.
- A run that arrives while others wait queues behind them without trying (one query of
  the waiters, limit 1), and wakes the first waiters if slots are free: so runs start in
  priority order, then oldest first. Only a waiter woken by its recheck (a lost wake-up)
  may take a free slot before one ahead of it.
- A release (the run ended, or it waits with `release_on_wait`) wakes the first waiters,
  as many as slots are free; the run that gets the slot deletes its waiter item. A
  woken run that finds the slots taken again (woken twice for one slot) waits on.
- The release at a run's end is one of its end's follow-ups (`durable.services.endings`):
  the finished run keeps a `wake_at` until it is done, so a crash cannot skip it. The
  release of a wait comes after the wait is persisted; a crash between the two leaves the
  slot with a run that does not need it.
- No leak: when an acquire finds the slots full (at most every `LEAK_CHECK_EVERY` per key
  and process) it reads the holders' runs and drops, each with a write guarded by the
  instant it acquired, the holders that cannot come back to use their slot: a run that
  is gone or finished, a held run, a run that waits (not due) with `release_on_wait`. A
  holder that acquired less than `HOLDER_GRACE` ago is left alone: it may be between its
  acquire and its lease. A run whose invocation died holding a slot keeps it: its lease
  expires, the sweeper sends it again, and it goes on with its own slot.
- A cancelled run leaves the waiters at its cancel's follow-up; a waiter item left by a
  crash is deleted when its run is woken for it and does not wait any more.

Runs of a queue without a concurrency limit make no call here at all.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from durable.clock import Clock
from durable.errors import (
    ConflictError,
    InfrastructureError,
    RunNotFoundError,
    UnknownTaskError,
)
from durable.flow import Queue
from durable.logs import library_logger
from durable.queues.base import WakeQueue
from durable.records import RunRecord, RunStatus, WakeReason, WakeUp, is_held
from durable.storage.base import RunStore
from durable.task import TaskRegistry

QUEUE_WAIT_PREFIX = "queue:"
# A run waiting for a slot is looked at again this often (its `wake_at`), should the
# release that was to wake it be lost.
WAIT_RECHECK = timedelta(minutes=2)
# ... and less often the longer it has waited (twice its last interval, up to this): a
# backlog of runs waiting an hour costs about 8 rechecks each, not 30.
MAX_WAIT_RECHECK = timedelta(minutes=10)
LEAK_CHECK_EVERY = timedelta(seconds=30)
HOLDER_GRACE = timedelta(minutes=1)
# A release reads this many waiters beyond the slots it frees: the waiter items of runs
# that ended (left by a crash) among them are deleted, and the next live ones woken.
STALE_LOOKAHEAD = 2
_WAITING = (RunStatus.QUEUED, RunStatus.WAITING, RunStatus.RETRYING)


def queue_wait(name: str) -> str:
    """What a run waiting for a slot of queue `name` shows as `waiting_for`."""
    return f"{QUEUE_WAIT_PREFIX}{name}"


class Slots:
    """Acquires and releases the slots of the runs of one registry's tasks."""

    def __init__(
        self, store: RunStore, queue: WakeQueue, clock: Clock, registry: TaskRegistry
    ) -> None:
        self.store = store
        self.queue = queue
        self.clock = clock
        self.registry = registry
        self._checked: dict[tuple[str, str | None], datetime] = {}
        self._lock = threading.Lock()

    def limit_of(self, run: RunRecord) -> Queue | None:
        """The queue whose slots the run needs; None when it needs none (no limit, or a
        task this code does not know)."""
        name = run.queue
        if name is None:
            try:
                name = self.registry.get(run.task_id).queue_name
            except UnknownTaskError:
                return None
        declared = self.registry.queue(name)
        if declared is None or declared.concurrency is None:
            return None
        return declared

    def enter(self, run: RunRecord, limit: Queue, woken: bool = False) -> bool:
        """Take a slot for `run` (or find it holds one): True to go on; False when the
        run now waits for one (QUEUED, `waiting_for` the queue). `woken`: the message was
        a release's (the run may have a waiter item whatever it shows)."""
        key = run.concurrency_key
        lease = run.lease_expires
        if run.status is RunStatus.RUNNING and lease is not None and lease > self.clock.now():
            return True  # an invocation has it (and its slot): the lease turns this one away
        waits = run.waiting_for == queue_wait(limit.name)
        holders: dict[str, datetime] | None = None
        if not (waits or woken) and self.store.waiters(limit.name, key, 1):
            # Runs wait already: this one queues behind them, unless it holds a slot (it
            # took one, then its invocation died before the lease).
            holders = self.store.slot_holders(limit.name, key)
            if run.run_id in holders:
                return True
        elif self._acquire(run, limit):
            if waits or woken:
                self.store.remove_waiter(limit.name, key, run.run_id, run.priority)
            return True
        elif waits:
            self._recheck_later(run)  # woken too early, or its recheck: it waits on
            return False
        self.store.add_waiter(limit.name, key, run.run_id, run.priority)
        library_logger().info(
            "run waits for a slot", run_id=run.run_id, queue=limit.name, concurrency_key=key
        )
        if run.status in _WAITING:
            now = self.clock.now()
            # A change meanwhile (taken, cancelled) is left alone: its new state decides.
            with contextlib.suppress(ConflictError):
                self.store.update_run(
                    run.run_id,
                    {
                        "status": RunStatus.QUEUED,
                        "waiting_for": queue_wait(limit.name),
                        "wake_at": now + WAIT_RECHECK,
                        "wake_token": None,
                        "updated_at": now,
                    },
                    expect_status=[run.status],
                )
        concurrency, now = limit.concurrency or 0, self.clock.now()
        if holders is not None:
            # Slots may be free (their wake-ups on the way, or lost): wake the first.
            self.wake(limit, key, concurrency - len(holders))
            return False
        # A release since the first try would have missed this run's waiter item.
        if self.store.acquire_slot(limit.name, key, run.run_id, concurrency, now):
            self.store.remove_waiter(limit.name, key, run.run_id, run.priority)
            return True
        return False

    def release(self, run: RunRecord, limit: Queue) -> None:
        """Give the run's slot back (if it holds one) and wake as many waiters as slots
        are free."""
        _, held = self.store.release_slot(limit.name, run.concurrency_key, run.run_id)
        self.wake(limit, run.concurrency_key, (limit.concurrency or 0) - held)

    def leave(self, run: RunRecord) -> None:
        """What a run that ended gives up: its slot, and its place among the waiters."""
        limit = self.limit_of(run)
        if limit is None:
            return
        if run.status is RunStatus.CANCELLED or run.waiting_for == queue_wait(limit.name):
            self.store.remove_waiter(limit.name, run.concurrency_key, run.run_id, run.priority)
        self.release(run, limit)

    def dismiss(self, run: RunRecord) -> None:
        """A finished run woken for a slot: its waiter item (if a crash left one) goes, and
        the wake-up passes to the next waiter."""
        limit = self.limit_of(run)
        if limit is not None:
            self.store.remove_waiter(limit.name, run.concurrency_key, run.run_id, run.priority)
            self.wake(limit, run.concurrency_key, 1)

    def release_waiting(self, run: RunRecord, held: bool) -> None:
        """After a run's wait (or hold) is persisted: give its slot back if its queue says
        so (a held run always does). Best effort: a slot left behind is dropped by the
        next acquire that finds the slots full (the "No leak" rule)."""
        limit = self.limit_of(run)
        if limit is None or not (limit.release_on_wait or held):
            return
        try:
            self.release(run, limit)
        except InfrastructureError as exc:
            library_logger().warning("slot not released", run_id=run.run_id, error=str(exc))

    def wake(self, limit: Queue, key: str | None, free: int) -> None:
        """Wake the first `free` runs waiting for a slot of (queue, key). A waiter item
        whose run is gone or finished (left by a crash) is deleted instead, so that it
        never stands at the head of the line."""
        if free < 1:
            return
        waiting = self.store.waiters(limit.name, key, free + STALE_LOOKAHEAD)
        if not waiting:
            return
        runs = {run.run_id: run for run in self.store.get_runs([i for _, i in waiting])}
        for priority, run_id in waiting:
            run = runs.get(run_id)
            if run is None or run.status.is_terminal:
                self.store.remove_waiter(limit.name, key, run_id, priority)
            elif free > 0:
                self.queue.send(WakeUp(run_id, WakeReason.QUEUE))
                free -= 1

    def _acquire(self, run: RunRecord, limit: Queue) -> bool:
        key, concurrency = run.concurrency_key, limit.concurrency or 0
        now = self.clock.now()
        if self.store.acquire_slot(limit.name, key, run.run_id, concurrency, now):
            return True
        dropped = self._drop_leaks(limit, key, now)
        if not dropped:
            return False
        taken = self.store.acquire_slot(limit.name, key, run.run_id, concurrency, now)
        self.wake(limit, key, dropped - 1 if taken else dropped)
        return taken

    def _drop_leaks(self, limit: Queue, key: str | None, now: datetime) -> int:
        """Drop the holders that cannot come back to use their slot; how many."""
        with self._lock:
            last = self._checked.get((limit.name, key))
            if last is not None and now - last < LEAK_CHECK_EVERY:
                return 0
            self._checked[(limit.name, key)] = now
        holders = self.store.slot_holders(limit.name, key)
        runs = {run.run_id: run for run in self.store.get_runs(list(holders))}
        dropped = 0
        for run_id, acquired_at in holders.items():
            if _needs_slot(runs.get(run_id), limit, acquired_at, now):
                continue
            if self.store.drop_holder(limit.name, key, run_id, acquired_at):
                dropped += 1
        return dropped

    def _recheck_later(self, run: RunRecord) -> None:
        """Move a waiting run's recheck on (it met the slots full again), twice as far as
        the last one (`MAX_WAIT_RECHECK` at most)."""
        now = self.clock.now()
        interval = min(max(2 * (now - run.updated_at), WAIT_RECHECK), MAX_WAIT_RECHECK)
        with contextlib.suppress(ConflictError, RunNotFoundError):
            self.store.update_run(
                run.run_id,
                {"wake_at": now + interval, "updated_at": now},
                expect_status=[RunStatus.QUEUED],
                expect_waiting_for=run.waiting_for,
            )


def _needs_slot(run: RunRecord | None, limit: Queue, acquired_at: datetime, now: datetime) -> bool:
    """Whether a holder may still use its slot (see the module's "No leak" rule)."""
    if run is None or run.status.is_terminal:
        return False
    if now - acquired_at < HOLDER_GRACE:
        return True
    if is_held(run.waiting_for):
        return False
    if limit.release_on_wait and run.status in (RunStatus.WAITING, RunStatus.RETRYING):
        return run.wake_at is not None and run.wake_at <= now  # due: coming back now
    return True


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """One concurrency key of a queue as read: slots in use, runs waiting (at most
    `MAX_COUNTED` counted)."""

    key: str | None
    running: int
    waiting: int


# `GET /queues` reads at most this many keys of a queue, and counts at most this many
# waiting runs a key: a bounded read per request.
MAX_KEYS = 100
MAX_COUNTED = 10_000


def queue_usage(store: RunStore, name: str) -> tuple[list[KeyUsage], bool]:
    """The keys of queue `name` with their slots in use and waiting runs (up to `MAX_KEYS`
    of them: True when there may be more): one query for the keys, then a read of each
    key's slots item and a count of its waiters."""
    keys = store.queue_keys(name, MAX_KEYS + 1)
    usage = [
        KeyUsage(
            key=key,
            running=len(store.slot_holders(name, key)),
            waiting=store.count_waiters(name, key, MAX_COUNTED),
        )
        for key in keys[:MAX_KEYS]
    ]
    return usage, len(keys) > MAX_KEYS


def queue_position(
    store: RunStore,
    run_id: str,
    queue: str | None,
    key: str | None,
    priority: int,
    waiting_for: str | None,
) -> int | None:
    """Where a run waiting for a slot stands among its key's waiters (1: next), None when
    it does not wait for one. One count of the waiter items ahead of it."""
    if queue is None or waiting_for != queue_wait(queue):
        return None
    return store.count_waiters(queue, key, MAX_COUNTED, before=(priority, run_id)) + 1
