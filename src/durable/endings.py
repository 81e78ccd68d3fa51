"""What follows a run's end, made crash-proof by an outbox on the run item itself.

A run that ends (the worker persisting its result or failure, `Client.cancel`) is written
terminal *with* a `wake_at` when its end has follow-ups, in that same write:

1. a child of a batch (`ctx.map` / `ctx.parallel`) reports its outcome to the batch, which
   starts its successor and wakes the parent once the batch is decided; any other child
   run wakes its parent;
2. a run that ended without a result cancels its children that still run;
3. the run's `wake_at` is cleared: nothing is pending any more.

Each follow-up is idempotent. If the process dies anywhere after the terminal write, the
run is still in the sweeper's due index (a finished run with a `wake_at`); the sweeper
sends it a wake-up, and the worker runs `follow_up_end` again for a finished run that has
one. So no parent's wake-up can be lost between a child's end and its notification, and no
batch child's result can go uncounted.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from durable.batches import report_child_end
from durable.errors import ConflictError, RunNotFoundError
from durable.records import TERMINAL_STATUSES, ErrorInfo, RunRecord, RunStatus, WakeReason, WakeUp

if TYPE_CHECKING:
    from durable.client import Client


def has_follow_ups(run: RunRecord, status: RunStatus) -> bool:
    """Whether ending `run` with `status` leaves anything to do after the terminal write."""
    return run.parent_run_id is not None or status is not RunStatus.COMPLETED


def follow_up_end(client: Client, run: RunRecord) -> None:
    """Carry out what follows the end of `run` (a finished run as stored), then clear it.

    Raises what the store and queue raise (an `InfrastructureError`): the run stays due
    and the sweeper brings it back.
    """
    if run.batch_slot is not None:
        report_child_end(
            store=client.store,
            queue=client.queue,
            client=client,
            codec=client.codec,
            run=run,
            result=run.result if run.status is RunStatus.COMPLETED else None,
            error=None if run.status is RunStatus.COMPLETED else _error_of(run),
        )
    elif run.parent_run_id is not None:
        client.queue.send(WakeUp(run.parent_run_id, WakeReason.CHILD))
    if run.status is not RunStatus.COMPLETED:
        # A run that ends without a result takes its still-running children with it.
        client.cancel_children(run.run_id)
    with contextlib.suppress(ConflictError, RunNotFoundError):
        client.store.update_run(run.run_id, {"wake_at": None}, expect_status=TERMINAL_STATUSES)


def _error_of(run: RunRecord) -> ErrorInfo:
    return run.error or ErrorInfo(type=str(run.status), message=f"the run ended {run.status}")
