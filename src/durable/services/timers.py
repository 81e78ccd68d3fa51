"""Timers of any length without re-hops: far wake-ups parked in the store, handed off on time.

A queue delays a message by at most `queue.max_delay` (SQS: 15 minutes), the hand-off
window. A write that sets a `wake_at` further than the window and sends no message parks
the run in the same write (`wake_parked`, `durable.storage.timers`): a sleep's end, a
retry's backoff, a wait's timeout (the worker's persist), a delayed start (the trigger),
an early timer of an old deploy (`rehop_or_park`). A near `wake_at` is sent at once, as a
message delayed to it, and never waits for a sweep.

    worker: sleep 40 days ─► run WAITING, wake_at = t, parked (one write, no message)
    sweeper, each minute:  parked runs with wake_at < now + window
                           ─► send TIMER(token) delayed by wake_at - now (ten a request)
                           ─► un-park it (conditional on the same wake_at and wake_token)
    SQS, at t:             ─► the worker runs it, on time to the second

So a wait of any length costs one message and at most two invocations, where it cost one
re-hop every 15 minutes (3,839 for 40 days). Every case is safe:

- The process dies between the send and the un-park: the next sweep sends again. The
  duplicate is dropped by the worker (BUSY while the first runs, STALE after, as its
  token is then no longer the run's).
- A message lost after the un-park: the run's `wake_at` is overdue, so the overdue sweep
  (`durable.services.sweeper`) sends it, as for any run.
- A parked run whose `wake_at` moved earlier (an event delivered to a parked wait marks it
  due, `durable.services.delivery`) may stay parked: the hand-off finds every parked run
  due within the window, past ones included, so it is still sent by the next sweep if its
  own wake-up was lost; the lease (`acquire_lease`) un-parks it, so a run that runs is
  never parked and an invocation that dies is found by the overdue sweep.
- The run moved on before the un-park (woken, run, parked again): the condition fails and
  nothing is written; the timer sent is stale and dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from durable.clock import Clock
from durable.queues.base import WakeQueue, send_timed
from durable.records import RunRecord, WakeReason, WakeUp
from durable.storage.base import RunStore

__all__ = ["hand_off_timers", "handoff_window", "next_hand_off", "parks", "rehop_or_park"]

BATCH = 10  # messages per SQS request
_END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)


def handoff_window(queue: WakeQueue) -> timedelta:
    """How far ahead a wake-up is sent as a message: the queue's longest delay."""
    return queue.max_delay


def parks(wake_at: datetime | None, now: datetime, queue: WakeQueue) -> bool:
    """Whether a `wake_at` set at `now` is parked rather than sent (beyond the window)."""
    return wake_at is not None and wake_at - now > handoff_window(queue)


def hand_off_timers(
    store: RunStore,
    queue: WakeQueue,
    clock: Clock,
    *,
    limit: int = 10_000,
    budget: timedelta | None = None,
    page_size: int = 1000,
) -> int:
    """Send the timer of each parked run due within the window, then un-park it; returns
    how many were sent.

    Pages through the parked runs, oldest first, until none is left in the window, `limit`
    were sent or `budget` has gone by. Each message is delayed to its run's `wake_at` from
    the moment it is sent (a run already overdue is sent at once).
    """
    started = clock.now()
    before = started + handoff_window(queue)
    sent = 0
    after: RunRecord | None = None
    while sent < limit:
        asked = min(page_size, limit - sent)
        parked = store.parked_timers(before, limit=asked, after=after)
        if not parked:
            break
        for start in range(0, len(parked), BATCH):
            chunk = parked[start : start + BATCH]
            now = clock.now()
            send_timed(
                queue,
                [
                    (WakeUp(run.run_id, WakeReason.TIMER, run.wake_token), _delay(run, now))
                    for run in chunk
                ],
            )
            sent += len(chunk)
            for run in chunk:
                store.set_timer_parked(
                    run.run_id, False, wake_at=run.wake_at, wake_token=run.wake_token
                )
        after = parked[-1]
        if len(parked) < asked:
            break
        if budget is not None and clock.now() - started >= budget:
            break
    return sent


def _delay(run: RunRecord, now: datetime) -> timedelta:
    assert run.wake_at is not None  # a parked run has one
    return max(run.wake_at - now, timedelta(0))


def next_hand_off(store: RunStore, queue: WakeQueue) -> datetime | None:
    """When the earliest parked run is due for its hand-off (its `wake_at` less the
    window); None when no run is parked. The test kit skips the clock to it."""
    first = store.parked_timers(_END_OF_TIME, limit=1)
    if not first or first[0].wake_at is None:
        return None
    return first[0].wake_at - handoff_window(queue)


def rehop_or_park(store: RunStore, queue: WakeQueue, clock: Clock, run: RunRecord) -> bool:
    """A timer that came early (sent before a deploy that parks, with its 15-minute hop):
    a `wake_at` within the window is sent on as before; a further one is parked (one
    conditional write on the run's `wake_at` and token as read) and the message dropped.
    Returns whether it parked. A run that moved on meanwhile has a wake-up of its own."""
    assert run.wake_at is not None
    now = clock.now()
    if not parks(run.wake_at, now, queue):
        message = WakeUp(run.run_id, WakeReason.TIMER, run.wake_token)
        queue.send(message, max(run.wake_at - now, timedelta(0)))
        return False
    store.set_timer_parked(run.run_id, True, wake_at=run.wake_at, wake_token=run.wake_token)
    return True
