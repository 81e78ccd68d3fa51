"""Ending runs by cancellation, and what follows any run's end, made crash-proof by an
outbox on the run item itself.

A run that ends (the worker persisting its result or failure, `RunEndings.cancel`) is written
terminal *with* a `wake_at` when its end has follow-ups, in that same write:

1. a child of a batch (`ctx.map` / `ctx.parallel`) reports its outcome to the batch, which
   starts its successor and wakes the parent once the batch is decided; any other child
   run wakes its parent;
2. a run that ended without a result cancels its children that still run;
3. a run of a queue with a concurrency limit gives its slot back (and a cancelled one its
   place among the runs waiting for one), which wakes the next (`durable.services.slots`);
4. the run's `wake_at` is cleared: nothing is pending any more.

Each follow-up is idempotent. If the process dies anywhere after the terminal write, the
run is still in the sweeper's due index (a finished run with a `wake_at`); the sweeper
sends it a wake-up, and the worker runs `RunEndings.follow_up` again for a finished run that
has one. So no parent's wake-up can be lost between a child's end and its notification, and no
batch child's result can go uncounted.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from durable.errors import ConflictError, RunFinishedError, RunNotFoundError
from durable.ids import child_run_id
from durable.records import (
    TERMINAL_STATUSES,
    CheckpointKind,
    ErrorInfo,
    RunRecord,
    RunStatus,
    WakeReason,
    WakeUp,
)
from durable.serialization import loads
from durable.services.batches import report_child_end
from durable.services.runs import RunStarter
from durable.services.slots import Slots
from durable.services.stats import count_ended


def has_follow_ups(run: RunRecord, status: RunStatus) -> bool:
    """Whether ending `run` with `status` leaves anything to do after the terminal write."""
    return run.parent_run_id is not None or status is not RunStatus.COMPLETED


class RunEndings:
    """Cancels runs and carries out the follow-ups of ends, on the starter's ports (a batch
    child's end may start its successor). A cancelled run is kept for `retention` (None:
    forever)."""

    def __init__(self, starter: RunStarter, retention: timedelta | None = None) -> None:
        self.starter = starter
        self.retention = retention
        self.slots = Slots(starter.store, starter.queue, starter.clock, starter.registry)

    def has_follow_ups(self, run: RunRecord, status: RunStatus) -> bool:
        """`has_follow_ups`, counting the slot a run of a limited queue gives back."""
        return has_follow_ups(run, status) or self.slots.limit_of(run) is not None

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run that has not ended, then follow its end up; the run as stored.

        Raises RunNotFoundError for an unknown run, RunFinishedError for one that has ended.
        """
        store = self.starter.store
        run = _require(store.get_run(run_id), run_id)
        if run.status.is_terminal:
            raise RunFinishedError(run_id, run.status)
        now = self.starter.clock.now()
        try:
            run = store.update_run(
                run_id,
                {
                    "status": RunStatus.CANCELLED,
                    "cancel_requested": True,
                    "error": ErrorInfo(type="RunCancelledError", message="the run was cancelled"),
                    "finished_at": now,
                    "expires_at": now + self.retention if self.retention is not None else None,
                    "updated_at": now,
                    # The follow-ups (children, parent, batch) are pending: see the docstring.
                    "wake_at": now,
                    "wake_token": None,
                    "waiting_for": None,
                },
                expect_status=[s for s in RunStatus if not s.is_terminal],
            )
        except ConflictError:
            run = _require(store.get_run(run_id), run_id)
            raise RunFinishedError(run_id, run.status) from None
        try:
            self.follow_up(run)
        finally:
            count_ended(store, self.starter.clock, run)  # best effort: never raises
        return run

    def cancel_children(self, run_id: str) -> None:
        """Cancel every child run this run started that has not ended (recursively)."""
        store = self.starter.store
        started = (CheckpointKind.CHILD_STARTED, CheckpointKind.CHILD_TRIGGERED)
        children: list[str] = []
        for checkpoint in store.load_history(run_id):
            if checkpoint.kind in started and checkpoint.value is not None:
                children.append(loads(checkpoint.value))
            elif checkpoint.kind is CheckpointKind.BATCH_STARTED:
                batch = store.get_batch(run_id, checkpoint.task_attempt, checkpoint.op)
                if batch is not None:
                    ended = {
                        item.index
                        for item in store.list_batch_results(
                            run_id, checkpoint.task_attempt, checkpoint.op
                        )
                    }
                    running = min(batch.total, len(ended) + batch.max_concurrency)
                    children.extend(
                        child_run_id(run_id, checkpoint.task_attempt, checkpoint.op, index)
                        for index in range(running)
                        if index not in ended
                    )
        for child_id in children:
            child = store.get_run(child_id)
            if child is not None and not child.status.is_terminal:
                with contextlib.suppress(RunFinishedError):
                    self.cancel(child.run_id)

    def follow_up(self, run: RunRecord) -> None:
        """Carry out what follows the end of `run` (a finished run as stored), then clear it.

        Raises what the store and queue raise (an `InfrastructureError`): the run stays due
        and the sweeper brings it back.
        """
        if run.batch_slot is not None:
            report_child_end(
                self.starter,
                run,
                result=run.result if run.status is RunStatus.COMPLETED else None,
                error=None if run.status is RunStatus.COMPLETED else _error_of(run),
            )
        elif run.parent_run_id is not None:
            self.starter.queue.send(WakeUp(run.parent_run_id, WakeReason.CHILD))
        if run.status is not RunStatus.COMPLETED:
            # A run that ends without a result takes its still-running children with it.
            self.cancel_children(run.run_id)
        self.slots.leave(run)
        with contextlib.suppress(ConflictError, RunNotFoundError):
            self.starter.store.update_run(
                run.run_id, {"wake_at": None}, expect_status=TERMINAL_STATUSES
            )


def _require(run: RunRecord | None, run_id: str) -> RunRecord:
    if run is None:
        raise RunNotFoundError(run_id)
    return run


def _error_of(run: RunRecord) -> ErrorInfo:
    return run.error or ErrorInfo(type=str(run.status), message=f"the run ended {run.status}")
