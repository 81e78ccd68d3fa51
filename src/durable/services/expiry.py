"""Checks before a run's first start: its `ttl`, and its rate window (`check_start`).

A run not started by its `start_by` ends CANCELLED, saying why.

`start_by` is set at trigger (`durable.services.runs`): the run's requested start (now, or
now + delay) plus the trigger's `ttl`. Whoever would first start the run checks it with
`expire_if_late` before taking the run: the worker, just before the lease of a run that
has never started (`check_start`, in `durable.worker.wakeups`, after the checks that hand
the run to another code version or keep it held: the worker that would run it decides),
and whatever hands out a queue's slots to runs waiting for one. A run held back past its
ttl (by a rate limit, a concurrency slot, a backlog of workers) so never starts: it ends
as a cancel does (`durable.services.endings`: its end's follow-ups, a parent's wake-up or
a batch's report, are carried out), with the error `RunExpired`. A rate-limited run whose
window begins after its `start_by` is woken at `start_by`, so it ends then rather than at
its window.

A rate-limited run holds a place in one window (`durable.services.admission`); one that
comes to start after that window has ended takes a place again from now on
(`readmit_if_late`), so no window sees more starts than its limit however late workers are.
A debounced run of a rate-limited queue takes its place when it comes to start.
"""

from __future__ import annotations

from durable.errors import ConflictError, UnknownTaskError
from durable.flow import Queue
from durable.records import ErrorInfo, RunRecord, RunStatus, WakeReason, WakeUp
from durable.services.admission import (
    DEBOUNCE_WAIT_PREFIX,
    RATE_WAIT_PREFIX,
    new_start_token,
    rate_limited_start,
    window_of,
)
from durable.services.endings import RunEndings
from durable.services.stats import count_ended
from durable.services.timers import parks
from durable.task import TaskRegistry
from durable.views import iso

EXPIRED_ERROR = "RunExpired"


def expire_if_late(endings: RunEndings, run: RunRecord) -> bool:
    """End `run` CANCELLED (error `RunExpired`) if it has never started and its `start_by`
    has passed; True if it ended so (then nobody may start it). One conditional write:
    the run must still be QUEUED, not started, and due no later than when it was read, so
    a run taken by a worker meanwhile (RUNNING, or back to QUEUED with a later `wake_at`)
    is left alone and False returned."""
    now = endings.starter.clock.now()
    if run.start_by is None or run.started_at is not None or now < run.start_by:
        return False
    if run.status is not RunStatus.QUEUED:
        return False
    store = endings.starter.store
    message = (
        f"not started by {iso(run.start_by)}, the end of its ttl (queued since "
        f"{iso(run.created_at)})"
    )
    try:
        ended = store.update_run(
            run.run_id,
            {
                "status": RunStatus.CANCELLED,
                "error": ErrorInfo(type=EXPIRED_ERROR, message=message, non_retryable=True),
                "finished_at": now,
                "expires_at": now + endings.retention if endings.retention is not None else None,
                "updated_at": now,
                # The follow-ups of its end are pending: see `durable.services.endings`.
                "wake_at": now,
                "wake_token": None,
                "waiting_for": None,
            },
            expect_status=[RunStatus.QUEUED],
            expect_wake_by=run.wake_at,
        )
    except ConflictError:
        return False
    try:
        endings.follow_up(ended)
    finally:
        count_ended(store, endings.starter.clock, ended)  # best effort: never raises
    return True


def check_start(endings: RunEndings, registry: TaskRegistry, run: RunRecord) -> str | None:
    """What stops a run that has never started from starting now, if anything: "expired"
    (its ttl passed: ended, `expire_if_late`) or "readmitted" (it comes after its rate
    window has ended, and the current window is full: it took a place in a later one and
    waits for it, `readmit_if_late`). None: it may start now."""
    if run.started_at is not None:
        return None
    if run.start_by is not None and expire_if_late(endings, run):
        return "expired"
    try:
        queue = registry.get(run.task_id).queue
    except UnknownTaskError:
        return None  # held by the worker until code that has the task comes
    if queue is not None and readmit_if_late(endings, queue, run):
        return "readmitted"
    return None


def readmit_if_late(endings: RunEndings, queue: Queue, run: RunRecord) -> bool:
    """A rate-limited run coming to its first start after the window it holds a place in
    has ended (workers behind, a lost message found by the sweeper) takes a place again,
    from now on: starting now would count against a window it has no place in. True when
    that place is in a later window: the run waits for it (`wake_at`, a new start token,
    `waiting_for` "rate:<queue>"). A QUEUED run that never started holds the window of its
    `wake_at` (its window's start, or its requested start within it), except a debounced
    run still waiting for triggers to stop (`waiting_for` "debounce:<queue>"): it holds no
    place yet (`durable.services.admission`) and takes one now."""
    limit = queue.rate_limit
    if limit is None or run.wake_at is None:
        return False
    if run.status is not RunStatus.QUEUED:
        return False
    clock, store = endings.starter.clock, endings.starter.store
    now = clock.now()
    placeless = (run.waiting_for or "").startswith(DEBOUNCE_WAIT_PREFIX)
    if not placeless and window_of(now, limit.period) == window_of(run.wake_at, limit.period):
        return False
    start = rate_limited_start(store, queue, run.concurrency_key, now, now)
    if start <= now:
        return False  # a place in the current window: it starts now
    if run.start_by is not None:
        start = min(start, run.start_by)  # past its ttl: it wakes then, and expires
    token = new_start_token()
    wake_queue = endings.starter.queue
    parked = parks(start, now, wake_queue)  # a far window: the sweeper sends it on time
    try:
        store.update_run(
            run.run_id,
            {
                "wake_at": start,
                "wake_token": token,
                "wake_parked": parked,
                "waiting_for": f"{RATE_WAIT_PREFIX}{queue.name}",
                "updated_at": now,
            },
            expect_status=[RunStatus.QUEUED],
            expect_wake_by=run.wake_at,
        )
    except ConflictError:
        return True  # another invocation moved it on (or took it): this one stops
    if not parked:
        wake_queue.send(WakeUp(run.run_id, WakeReason.TIMER, token), start - now)
    return True
