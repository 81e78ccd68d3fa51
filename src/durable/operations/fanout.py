"""`ctx.map` and `ctx.parallel`: child runs side by side, results in input order.

Log entries: `batch_started` (the number of children) when the batch is first reached,
then `batch_completed` or `batch_failed` holding a reference to the batch's result items
(stored beside the batch, not in the log). Replay rule: a recorded end answers from its
reference (old logs hold the results by copy); a started batch is read back, never
started twice. Children report to the batch, not to the parent's log; the parent sleeps
until the batch is decided, whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from durable.batch_results import (
    PAGE_SIZE,
    BatchReference,
    BatchResults,
    recorded_outcome,
    referenced_outcome,
)
from durable.errors import BatchFailedError
from durable.ids import child_run_id
from durable.names import batch_wait
from durable.operations.attempt import Attempt
from durable.operations.children import ChildTask, task_id
from durable.records import BatchItemResult, BatchRecord, Checkpoint, CheckpointKind, RunStatus
from durable.serialization import JsonData, dumps, revive

DEFAULT_MAP_CONCURRENCY = 50


def batch(
    attempt: Attempt,
    name: str,
    calls: list[tuple[str, Any]],
    max_concurrency: int,
    tolerated_failures: int,
    *,
    first_success: bool,
    decode: Callable[[str], Any] | None = None,
) -> JsonData:
    """Run `calls` as child runs; their outcome once the batch is decided. `decode` reads
    a child's stored result (JSON values unless given)."""
    if max_concurrency < 1 or tolerated_failures < 0:
        raise ValueError("max_concurrency must be >= 1 and tolerated_failures >= 0")
    if not calls:
        if first_success:
            raise BatchFailedError(name, [], 0)
        return []
    position, entries = attempt.open("batch", name)
    for entry in entries:
        if entry.kind in (CheckpointKind.BATCH_COMPLETED, CheckpointKind.BATCH_FAILED):
            return _batch_end(attempt, name, entry, first_success, decode=decode)
    run_id, task_attempt = attempt.run.id, attempt.run.attempt
    if not entries:
        attempt.before_fresh_operation()
        total = len(calls)
        attempt.environment.start_batch(
            BatchRecord(
                run_id=run_id,
                position=position,
                task_attempt=task_attempt,
                total=total,
                calls=attempt.codec.encode(calls, f"{run_id}/batch-{task_attempt}-{position}"),
                max_concurrency=min(max_concurrency, total),
                tolerated_failures=tolerated_failures,
                first_success=first_success,
            )
        )
        attempt.record(CheckpointKind.BATCH_STARTED, position, name, value=dumps({"total": total}))
    stored = attempt.environment.get_batch(run_id, task_attempt, position)
    if stored is None or not stored.decided:
        raise attempt.suspend_until(
            RunStatus.WAITING, None, waiting_for=batch_wait(task_attempt, position)
        )
    reference, listed = _decided_batch(attempt, stored)
    failed = stored.failed > stored.tolerated_failures or (first_success and stored.succeeded == 0)
    kind = CheckpointKind.BATCH_FAILED if failed else CheckpointKind.BATCH_COMPLETED
    entry = attempt.record(
        kind,
        position,
        name,
        value=attempt.codec.encode(reference.to_value(), attempt.blob_key()),
    )
    if reference.ended is not None:
        started = min(stored.total, len(reference.ended) + stored.max_concurrency)
        unfinished = [
            child_run_id(run_id, task_attempt, position, index)
            for index in range(started)
            if index not in reference.ended
        ]
        if unfinished:
            attempt.environment.cancel_runs(unfinished)  # no longer needed
    return _batch_end(attempt, name, entry, first_success, listed, decode)


def _decided_batch(
    attempt: Attempt, stored: BatchRecord
) -> tuple[BatchReference, list[BatchItemResult] | None]:
    """The reference the batch's end entry keeps (counts, and which children count),
    and the result items if it read them.

    When every child has ended (the counters move with the result items, in one
    write) nothing more is read; otherwise the result items are, so that a child
    ending after the decision changes nothing on replay.
    """
    reference = BatchReference(
        run_id=stored.run_id,
        task_attempt=stored.task_attempt,
        position=stored.position,
        total=stored.total,
        succeeded=stored.succeeded,
        failed=stored.failed,
    )
    if stored.succeeded + stored.failed >= stored.total:
        return reference, None
    ended: list[BatchItemResult] = []
    while True:
        start = ended[-1].index + 1 if ended else 0
        page_size = PAGE_SIZE
        page = attempt.environment.batch_results(
            stored.run_id, stored.task_attempt, stored.position, start, page_size
        )
        ended.extend(page)
        if len(page) < page_size:
            break
    decided = replace(
        reference,
        succeeded=sum(1 for item in ended if item.ok),
        failed=sum(1 for item in ended if not item.ok),
        ended=frozenset(item.index for item in ended),
    )
    return decided, ended


def _batch_end(
    attempt: Attempt,
    name: str,
    entry: Checkpoint,
    first_success: bool,
    known: list[BatchItemResult] | None = None,
    decode: Callable[[str], Any] | None = None,
) -> JsonData:
    """The batch's outcome from its end entry: by reference, or (old logs) by copy."""
    assert entry.value is not None
    value = attempt.codec.decode(entry.value)
    reference = BatchReference.from_value(value)
    if reference is None:
        return recorded_outcome(entry.name, value, first_success, entry.kind)
    environment = attempt.environment

    def pages(start: int, limit: int) -> list[BatchItemResult]:
        return environment.batch_results(
            reference.run_id, reference.task_attempt, reference.position, start, limit
        )

    results = BatchResults(reference, pages, decode or attempt.codec.decode, known=known)
    return referenced_outcome(name, results, first_success, entry.kind)


def map_task(
    attempt: Attempt,
    task: ChildTask,
    items: Sequence[Any],
    max_concurrency: int,
    tolerated_failures: int,
) -> JsonData:
    """`ctx.map`: one child per item; a task given by handle has its results revived."""
    child_task_id = task_id(task)
    decode: Callable[[str], Any] | None = None
    if not isinstance(task, str):
        annotation = task.result_annotation

        def decode(stored: str) -> JsonData:
            return revive(attempt.codec.decode(stored), annotation)

    return batch(
        attempt,
        f"map:{child_task_id}",
        [(child_task_id, item) for item in items],
        max_concurrency,
        tolerated_failures,
        first_success=False,
        decode=decode,
    )


def parallel(
    attempt: Attempt,
    calls: Sequence[tuple[ChildTask, Any]],
    max_concurrency: int | None,
    tolerated_failures: int,
    first_success: bool,
    name: str,
) -> JsonData:
    """`ctx.parallel`: children `(task, payload)` side by side."""
    return batch(
        attempt,
        name,
        [(task_id(task), payload) for task, payload in calls],
        max_concurrency or max(len(calls), 1),
        tolerated_failures if not first_success else max(len(calls) - 1, 0),
        first_success=first_success,
    )
