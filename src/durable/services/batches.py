"""Fan-out bookkeeping shared by the worker and the run services: starting and reporting
children.

A batch (`ctx.map`, `ctx.parallel`) starts `max_concurrency` children at once. When child
`i` ends, whoever ends it (the worker, or a cancellation: `durable.services.endings`) records its
outcome in the batch (one atomic write, once), starts child `i + max_concurrency` if the
batch still needs it, and wakes the parent only once the batch is decided. Every step is
idempotent: child run ids are derived from (parent, attempt, position, index), so a
repeated report after a crash starts nothing twice. Children start as any run does
(`durable.services.runs`).

    parent ─ start_batch ─► children 0..N-1
    child i ends ─► record result + counters ─► start child i+N ─► decided? wake parent
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from durable.errors import ConflictError
from durable.ids import child_run_id
from durable.records import (
    BatchItemResult,
    BatchRecord,
    ErrorInfo,
    RunRecord,
    WakeReason,
    WakeUp,
)
from durable.serialization import loads
from durable.services.runs import RunStarter


def batch_slot(task_attempt: int, position: int, index: int) -> str:
    return f"{task_attempt}:{position}:{index}"


def parse_slot(slot: str) -> tuple[int, int, int]:
    attempt, position, index = (int(part) for part in slot.split(":"))
    return attempt, position, index


@lru_cache(maxsize=8)
def _calls(calls_json: str) -> list[Any]:
    """The decoded calls of a batch; cached, as a warm container ends many of its children."""
    decoded: list[Any] = loads(calls_json)
    return decoded


def start_child(starter: RunStarter, batch: BatchRecord, index: int) -> str:
    """Start child `index` of the batch (or find it started)."""
    task_id, payload = _calls(starter.codec.decode_text(batch.calls))[index]
    run_id = child_run_id(batch.run_id, batch.task_attempt, batch.position, index)
    starter.trigger(
        task_id,
        payload,
        run_id=run_id,
        parent_run_id=batch.run_id,
        batch_slot=batch_slot(batch.task_attempt, batch.position, index),
    )
    return run_id


def start_batch(starter: RunStarter, batch: BatchRecord) -> None:
    """Store the batch and start its first `max_concurrency` children."""
    stored = starter.store.create_batch(batch)
    for index in range(min(stored.max_concurrency, stored.total)):
        start_child(starter, stored, index)


def report_child_end(
    starter: RunStarter, run: RunRecord, result: str | None, error: ErrorInfo | None
) -> None:
    """A batch child ended: record it, start its successor, wake the parent when decided."""
    store = starter.store
    if run.batch_slot is None or run.parent_run_id is None:
        return
    attempt, position, index = parse_slot(run.batch_slot)
    item = BatchItemResult(
        index=index, run_id=run.run_id, ok=error is None, result=result, error=error
    )
    try:
        batch, _ = store.record_batch_result(run.parent_run_id, attempt, position, item)
    except ConflictError:
        return  # the parent's batch is gone (purged with its run)
    successor = index + batch.max_concurrency
    if not batch.decided and successor < batch.total:
        parent = store.get_run(run.parent_run_id)
        # A parent that has ended (cancelled, failed) wants no more children.
        if parent is not None and not parent.status.is_terminal:
            start_child(starter, batch, successor)
    if batch.decided:
        starter.queue.send(WakeUp(run.parent_run_id, WakeReason.CHILD))
