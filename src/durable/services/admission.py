"""Admission at trigger: when a run of a rate-limited queue may start, and which pending run
a debounced trigger replaces. `RunStarter.trigger` calls in; the items are the store's
(`durable.storage.admission`).

Rate limits (`Queue(rate_limit=RateLimit(limit, period))`), decided at trigger:

- Time is cut into fixed windows of `period` since the epoch. A trigger takes a place in
  the first window, from the one of its start (now, or now + delay) on, that has fewer
  than `limit` places taken, for its queue and concurrency key; the run is created QUEUED
  with its start (`wake_at`, a delayed start: token "start") at that window's start, and
  `waiting_for` "rate:<queue>" when the limit pushed it back. No run is dropped: a full
  window sends it to the next.
- At most `limit` runs are admitted per window, whatever the races and crashes (each place
  is one conditional write, `take_rate_place`). A run starts at or after its window's
  start; one that comes to start after its window has ended (a backlog, a lost message
  found by the sweeper) takes a place again from then on (`durable.services.expiry.
  check_start`), so at most `limit` runs start in any window.
- A trigger that dies after taking its place and before its run is stored leaves that
  place taken and unused (a place wasted, never one too many). A retried trigger with the
  same idempotency key whose run exists takes no place: the store is asked first
  (`claimed_run`), as it is for a batch child started again (its run id is given). Two
  triggers racing with one new key may each take a place: one run, one place wasted.
- Cost: one read of the scope's head and one write per trigger, plus one write each time
  a window fills (the head moves on). A trigger not delayed walks from the head; a delayed
  one from its own window, one failed write per full window on its way.

Debounce (`Queue(debounce=period)`): per task and debounce key (the concurrency key, or
none), at most one run is pending (QUEUED, never started). A trigger meeting one replaces
its payload and moves its start to one period after this trigger's start (a new
`wake_token`: the old timer message is stale and dropped), and answers with the pending
run's id, `created=False`. A trigger meeting none (or a run that started) creates a run
starting one period later and makes it the key's pending run, in one transaction guarded
by the debounce item still naming what the trigger read: two racing triggers never make
two pending runs (the loser tries again, and replaces). A debounced trigger takes no
idempotency key (`InputError`): a retried one simply replaces again. The starts the
library makes (a child run, a batch item, a schedule's firing) are not debounced: each
starts its own run. A crash anywhere leaves either nothing, or the run stored with its
start in the due index (the sweeper sends it): no trigger is lost.

Debounce and a rate limit together: the debounced run takes its place in the rate windows
when it comes to start (`durable.services.expiry.readmit_if_late`), not at trigger (its
start moves with each trigger): a place in the current window and it starts, else it
waits for its window ("rate:<queue>"). A trigger replacing a run that waits so keeps its
place when the new start (one period after this trigger) falls within that window, and
starts at the later of the two; past it, the place is left unused and the run takes one
again when it comes. So a steady stream of triggers on one key starts at most `limit`
runs a window, each with the last payload before it started.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from durable.errors import ConflictError, InfrastructureError
from durable.flow import Queue, RateLimit
from durable.queues.base import WakeQueue
from durable.records import RunRecord, RunStatus, WakeReason, WakeUp
from durable.services.timers import parks
from durable.storage.admission import rate_scope
from durable.storage.base import RunStore
from durable.values import ValueCodec

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DEBOUNCE_ATTEMPTS = 10  # a debounce key contended this often in one trigger: give up (5xx)
RATE_WAIT_PREFIX = "rate:"  # `waiting_for` of a run held back by its queue's rate limit
DEBOUNCE_WAIT_PREFIX = "debounce:"  # ... of a debounced run waiting for triggers to stop


def window_of(instant: datetime, period: timedelta) -> int:
    """The number of the rate window holding `instant` (windows of `period` from the epoch)."""
    return (instant - _EPOCH) // period


def window_start(window: int, period: timedelta) -> datetime:
    return _EPOCH + window * period


def rate_limited_start(
    store: RunStore,
    queue: Queue,
    concurrency_key: str | None,
    requested: datetime,
    now: datetime,
) -> datetime:
    """Take a place for a run wanting to start at `requested` in its queue's rate windows;
    when it may start (`requested`, or the start of a later window)."""
    limit: RateLimit | None = queue.rate_limit
    if limit is None:
        return requested
    scope = rate_scope(queue.name, concurrency_key)
    first = window_of(requested, limit.period)
    head = store.rate_head(scope)
    start = first if head is None else max(first, head)
    window = start
    while not store.take_rate_place(scope, window, limit.limit):
        window += 1
    if window > start and first == window_of(now, limit.period):
        # Not delayed: every window from the current one to this one was full.
        store.advance_rate_head(scope, window)
    return max(requested, window_start(window, limit.period))


def admitted_start(
    store: RunStore,
    queue: Queue | None,
    task_id: str,
    requested: datetime,
    now: datetime,
    *,
    debounce: timedelta | None,
    ttl: timedelta | None,
    concurrency_key: str | None,
    idempotency_key: str | None,
    given_run_id: str | None,
) -> tuple[datetime, str | None]:
    """When a new run of a task in `queue` wanting to start at `requested` may start, and
    its `waiting_for` ("rate:<queue>" when the rate limit pushed it back, else None). A
    debounced trigger (`debounce` given) takes no place here: its run takes one when it
    comes to start (`durable.services.expiry.readmit_if_late`); a trigger whose idempotency
    key names a run already, or whose given run id (a batch child's) exists, takes no place
    (it will be given that run)."""
    if queue is None or queue.rate_limit is None or debounce is not None:
        return requested, None
    if idempotency_key is not None and store.claimed_run(task_id, idempotency_key, now):
        return requested, None
    if given_run_id is not None and store.get_run(given_run_id) is not None:
        return requested, None
    start = rate_limited_start(store, queue, concurrency_key, requested, now)
    if ttl is not None:
        start = min(start, requested + ttl)  # past its ttl: it wakes then, and expires
    return start, f"{RATE_WAIT_PREFIX}{queue.name}" if start > requested else None


def new_start_token() -> str:
    """The `wake_token` of a debounced run's start: each replacement makes the last stale."""
    return f"start-{secrets.token_hex(8)}"


def trigger_debounced(
    store: RunStore,
    queue: WakeQueue,
    codec: ValueCodec,
    run: RunRecord,
    value: Any,
    flow: Queue,
    now: datetime,
) -> tuple[RunRecord, bool]:
    """Replace the payload of the run pending for `run`'s debounce key, or create `run` as
    that key's pending run; the run as stored and whether it was created."""
    assert flow.debounce is not None
    key = run.concurrency_key or ""
    requested = run.wake_at or now
    start = requested + flow.debounce
    start_by = run.start_by + flow.debounce if run.start_by is not None else None
    debouncing = f"{DEBOUNCE_WAIT_PREFIX}{run.queue}"
    for _ in range(_DEBOUNCE_ATTEMPTS):
        pending_id = store.debounced_run(run.task_id, key)
        pending = store.get_run(pending_id) if pending_id is not None else None
        token = new_start_token()
        if pending is not None and _is_pending(pending):
            assert pending.wake_token is not None  # `_is_pending` checked it
            wake_at: datetime = start
            waiting_for: str | None = debouncing
            if _keeps_its_place(pending, flow, start):
                assert pending.wake_at is not None  # `_keeps_its_place` checked it
                wake_at, waiting_for = max(start, pending.wake_at), pending.waiting_for
            changes = {
                "payload": codec.encode(value, f"{pending.run_id}/payload"),
                "wake_at": wake_at,
                "wake_token": token,
                "wake_parked": parks(wake_at, now, queue),  # a far start: the sweeper's
                "start_by": start_by,
                "waiting_for": waiting_for,
                "updated_at": now,
            }
            try:
                stored = store.replace_pending_run(pending.run_id, pending.wake_token, changes)
            except ConflictError:
                continue  # it started (or another trigger replaced it) meanwhile: read again
            created = False
        else:
            stored = replace(
                run,
                wake_at=start,
                wake_token=token,
                wake_parked=parks(start, now, queue),
                start_by=start_by,
                waiting_for=debouncing,
            )
            try:
                store.create_debounced_run(stored, key, pending_id)
            except ConflictError:
                continue  # another trigger made its run the pending one: replace it
            created = True
        if not stored.wake_parked:
            assert stored.wake_at is not None  # set just above
            _send_start(queue, stored.run_id, token, stored.wake_at - now)
        return stored, created
    raise InfrastructureError(f"debounce key {key!r} of {run.task_id} is too contended")


def _keeps_its_place(pending: RunRecord, flow: Queue, start: datetime) -> bool:
    """Whether a debounced run waiting for its rate window (where it holds a place) keeps
    that place when a trigger moves its start to `start`: `start` is not past the window."""
    limit = flow.rate_limit
    return (
        limit is not None
        and pending.wake_at is not None
        and (pending.waiting_for or "").startswith(RATE_WAIT_PREFIX)
        and window_of(start, limit.period) <= window_of(pending.wake_at, limit.period)
    )


def _is_pending(run: RunRecord) -> bool:
    """Whether a debounced run can still take a trigger's payload: it has not started."""
    return (
        run.status is RunStatus.QUEUED
        and run.started_at is None
        and (run.wake_token or "").startswith("start")
    )


def _send_start(queue: WakeQueue, run_id: str, token: str, delay: timedelta) -> None:
    delay = max(delay, timedelta(0))
    queue.send(WakeUp(run_id, WakeReason.TIMER, token), min(delay, queue.max_delay))
