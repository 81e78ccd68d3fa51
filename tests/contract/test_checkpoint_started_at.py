"""A step end's `started_at` (when that attempt began) round trips on every backend; a log
written before it was kept reads back without one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from durable.records import Checkpoint, CheckpointKind, ErrorInfo, RunRecord, RunStatus
from durable.storage.base import RunStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_step_end_keeps_when_its_attempt_started(store: RunStore) -> None:
    store.create_run(
        RunRecord("run_1", "orders", RunStatus.RUNNING, "null", created_at=T0, updated_at=T0)
    )
    failed = Checkpoint(
        seq=1,
        kind=CheckpointKind.STEP_FAILED,
        op=0,
        name="charge",
        task_attempt=1,
        at=T0 + timedelta(seconds=3),
        error=ErrorInfo("ConnectionError", "down"),
        wake_at=T0 + timedelta(seconds=5),
        started_at=T0 + timedelta(seconds=1, microseconds=250_000),
    )
    completed = Checkpoint(
        seq=2,
        kind=CheckpointKind.STEP_COMPLETED,
        op=0,
        name="charge",
        task_attempt=1,
        at=T0 + timedelta(seconds=7),
        step_attempt=2,
        value='"ok"',
        started_at=T0 + timedelta(seconds=6),
    )
    older = Checkpoint(
        seq=3, kind=CheckpointKind.STEP_COMPLETED, op=1, name="ship", task_attempt=1, at=T0
    )
    for checkpoint in (failed, completed, older):
        store.append_checkpoint("run_1", checkpoint)

    history = store.load_history("run_1")

    assert history == [failed, completed, older]
    assert [cp.started_at for cp in history] == [
        T0 + timedelta(seconds=1, microseconds=250_000),
        T0 + timedelta(seconds=6),
        None,
    ]
