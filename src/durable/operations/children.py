"""`ctx.invoke` and `ctx.trigger`: child runs started from a task.

Log entries for `invoke`: `child_started` (the child's run id), then `child_completed` (its
result) or `child_failed` (its end status and error). For `trigger` (fire and forget): one
`child_triggered` with the child's run id. Replay rule: a recorded end is returned or
raised again; a started child is looked up, never started twice (its idempotency key is
the parent's run id, attempt and position). The parent is woken when the child ends.
"""

from __future__ import annotations

from typing import Any

from durable.errors import ChildRunFailedError
from durable.names import child_wait
from durable.operations.attempt import Attempt
from durable.records import CheckpointKind, ErrorInfo, RunStatus
from durable.serialization import JsonData, dumps, loads, revive
from durable.task import TaskDefinition

# A child task: its typed handle (what `@task` returns), or its id.
ChildTask = TaskDefinition[Any, Any] | str


def start_child(attempt: Attempt, task_id: str, payload: Any, position: int) -> str:
    """Start (or find) the child run of the operation at `position`; its run id."""
    attempt.before_fresh_operation()
    key = f"{attempt.run.id}:{attempt.run.attempt}:{position}"
    return attempt.environment.start_child(task_id, payload, key, attempt.run.id)


def invoke(attempt: Attempt, task_id: str, payload: Any) -> JsonData:
    """Start a child run, suspend until it ends, return its result (as JSON values)."""
    position, entries = attempt.open("invoke", task_id)
    child_id: str | None = None
    for entry in entries:
        if entry.kind is CheckpointKind.CHILD_COMPLETED:
            assert entry.value is not None
            return attempt.codec.decode(entry.value)
        if entry.kind is CheckpointKind.CHILD_FAILED:
            assert entry.error is not None
            raise ChildRunFailedError(
                loads(entries[0].value or "null"),
                # The child's end status (logs written before it was recorded: FAILED).
                loads(entry.value) if entry.value is not None else str(RunStatus.FAILED),
                entry.error.type,
                entry.error.message,
            )
        if entry.kind is CheckpointKind.CHILD_STARTED:
            child_id = loads(entry.value or "null")
    if child_id is None:
        child_id = start_child(attempt, task_id, payload, position)
        attempt.record(CheckpointKind.CHILD_STARTED, position, task_id, value=dumps(child_id))
    child = attempt.environment.get_run(child_id)
    if child is None or not child.status.is_terminal:
        raise attempt.suspend_until(RunStatus.WAITING, None, waiting_for=child_wait(child_id))
    if child.status is RunStatus.COMPLETED:
        result = child.result or "null"
        attempt.record(CheckpointKind.CHILD_COMPLETED, position, task_id, value=result)
        return attempt.codec.decode(result)
    error = child.error or ErrorInfo(type=str(child.status), message="the child run ended")
    attempt.record(
        CheckpointKind.CHILD_FAILED,
        position,
        task_id,
        value=dumps(str(child.status)),
        error=error,
    )
    raise ChildRunFailedError(child_id, str(child.status), error.type, error.message)


def trigger(attempt: Attempt, task_id: str, payload: Any) -> str:
    """Start a child run and go on at once; its run id."""
    position, entries = attempt.open("trigger", task_id)
    if entries:
        return str(loads(entries[0].value or "null"))
    child_id = start_child(attempt, task_id, payload, position)
    attempt.record(CheckpointKind.CHILD_TRIGGERED, position, task_id, value=dumps(child_id))
    return child_id


def task_id(task: ChildTask) -> str:
    """The id of a child task given by handle or by id."""
    return task if isinstance(task, str) else task.id


def as_result(task: ChildTask, value: Any) -> JsonData:
    """A child's JSON result as its task's result type, when the task was given by handle."""
    return value if isinstance(task, str) else revive(value, task.result_annotation)


def invoke_task(attempt: Attempt, task: ChildTask, payload: Any) -> JsonData:
    """`invoke` of a task given by handle (result revived into its type) or by id."""
    return as_result(task, invoke(attempt, task_id(task), payload))
