"""Records to DynamoDB items and back: runs, checkpoints, inbox events and their errors."""

from __future__ import annotations

from typing import Any

from durable.records import Checkpoint, CheckpointKind, ErrorInfo, InboxEvent, RunRecord, RunStatus
from durable.storage._items import CheckpointItem, ErrorMap, InboxItem, RunItem
from durable.storage._tables import TIMER_PREFIX


def attribute_value(name: str, value: Any) -> Any:
    """A `RunRecord` field value as its attribute takes it; None means 'absent'."""
    if value is None:
        return None
    if name == "status":
        return str(RunStatus(value))
    if name == "error":
        return error_map(value)
    if name == "tags":
        return list(value) if value else None
    if name == "metadata":
        return dict(value) if value else None
    return value


def error_map(error: ErrorInfo | None) -> ErrorMap | None:
    if error is None:
        return None
    return ErrorMap(
        type_name=error.type,
        message=error.message,
        traceback=error.traceback,
        non_retryable=error.non_retryable or None,
    )


def error_info(error: ErrorMap | None) -> ErrorInfo | None:
    if error is None:
        return None
    return ErrorInfo(
        type=error.type_name,
        message=error.message,
        traceback=error.traceback,
        non_retryable=bool(error.non_retryable),
    )


def run_record(item: RunItem) -> RunRecord:
    metadata = item.metadata
    return RunRecord(
        run_id=item.run_id,
        task_id=item.task_id,
        status=RunStatus(item.status),
        payload=item.payload,
        created_at=item.created_at,
        updated_at=item.updated_at,
        attempt=int(item.attempt),
        started_at=item.started_at,
        finished_at=item.finished_at,
        result=item.result,
        error=error_info(item.error),
        idempotency_key=item.idempotency_key,
        task_version=item.task_version,
        code_version=item.code_version,
        wake_at=item.wake_at,
        wake_token=item.wake_token,
        wake_parked=(item.due_pk or "").startswith(TIMER_PREFIX),
        waiting_for=item.waiting_for,
        lease_owner=item.lease_owner,
        lease_expires=item.lease_expires,
        checkpoints=int(item.checkpoints),
        cancel_requested=bool(item.cancel_requested),
        parent_run_id=item.parent_run_id,
        tags=tuple(str(tag) for tag in item.tags or ()),
        metadata=(
            {str(key): str(value) for key, value in metadata.attribute_values.items()}
            if metadata
            else {}
        ),
        expires_at=item.expires_at,
        batch_slot=item.batch_slot,
        crash_streak=int(item.crash_streak or 0),
        held_code=item.held_code,
        origin=item.origin,
        idempotency_expires_at=item.idempotency_expires_at,
        queue=item.queue,
        concurrency_key=item.concurrency_key,
        priority=int(item.priority or 0),
        start_by=item.start_by,
    )


def checkpoint_record(item: CheckpointItem) -> Checkpoint:
    return Checkpoint(
        seq=int(item.seq),
        kind=CheckpointKind(item.kind),
        op=int(item.op),
        name=item.name,
        task_attempt=int(item.task_attempt),
        at=item.at,
        step_attempt=int(item.step_attempt),
        value=item.value,
        error=error_info(item.error),
        wake_at=item.cp_wake_at,
        inbox_id=item.inbox_id,
        started_at=item.started_at,
        input=item.input,
    )


def inbox_event(item: InboxItem) -> InboxEvent:
    return InboxEvent(
        run_id=item.run_id,
        inbox_id=item.inbox_id,
        name=item.name,
        data=item.data,
        received_at=item.received_at,
    )
