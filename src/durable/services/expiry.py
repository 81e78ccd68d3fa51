"""A run's `ttl`: a run not started by its `start_by` ends CANCELLED, saying why.

`start_by` is set at trigger (`durable.services.runs`): the run's requested start (now, or
now + delay) plus the trigger's `ttl`. Whoever would first start the run checks it with
`expire_if_late` before taking the run: the worker, before the lease of a run that has
never started (`durable.worker.wakeups`), and whatever hands out a queue's slots to runs
waiting for one. A run held back past its ttl (by a rate limit, a concurrency slot, a
backlog of workers) so never starts: it ends as a cancel does (`durable.services.endings`:
its end's follow-ups, a parent's wake-up or a batch's report, are carried out), with the
error `RunExpired`. A rate-limited run whose window begins after its `start_by` is woken at
`start_by`, so it ends then rather than at its window.
"""

from __future__ import annotations

from durable.errors import ConflictError
from durable.records import ErrorInfo, RunRecord, RunStatus
from durable.services.endings import RunEndings
from durable.services.stats import count_ended
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
