"""A step end's `input` (its attempt's argument preview) round trips on every backend,
non-ASCII and at the 4 KB bound included; a log written before it was kept reads back
without one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from durable.operations.step_input import MAX_INPUT_PREVIEW, input_preview
from durable.records import Checkpoint, CheckpointKind, ErrorInfo, RunRecord, RunStatus
from durable.storage.base import RunStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_step_end_keeps_its_input(store: RunStore) -> None:
    store.create_run(
        RunRecord("run_1", "orders", RunStatus.RUNNING, "null", created_at=T0, updated_at=T0)
    )
    given = input_preview(("o-1", {"city": "Zürich", "note": "naïve ✓"}), {"cents": 2500})
    frame = len('{"args":[""],"kwargs":{}}')
    room = MAX_INPUT_PREVIEW - frame  # bytes; "é" takes 2
    at_bound = input_preview(("é" * (room // 2) + "x" * (room % 2),), {})
    assert at_bound is not None
    assert len(at_bound.encode()) == MAX_INPUT_PREVIEW
    failed = Checkpoint(
        seq=1,
        kind=CheckpointKind.STEP_FAILED,
        op=0,
        name="charge",
        task_attempt=1,
        at=T0 + timedelta(seconds=2),
        error=ErrorInfo("ConnectionError", "down"),
        wake_at=T0 + timedelta(seconds=4),
        started_at=T0 + timedelta(seconds=1),
        input=given,
    )
    completed = Checkpoint(
        seq=2,
        kind=CheckpointKind.STEP_COMPLETED,
        op=1,
        name="label",
        task_attempt=1,
        at=T0 + timedelta(seconds=5),
        value='"ok"',
        started_at=T0 + timedelta(seconds=4),
        input=at_bound,
    )
    older = Checkpoint(
        seq=3, kind=CheckpointKind.STEP_COMPLETED, op=2, name="ship", task_attempt=1, at=T0
    )
    for checkpoint in (failed, completed, older):
        store.append_checkpoint("run_1", checkpoint)

    history = store.load_history("run_1")

    assert history == [failed, completed, older]
    assert [cp.input for cp in history] == [given, at_bound, None]
    assert json.loads(history[0].input or "") == {
        "args": ["o-1", {"city": "Zürich", "note": "naïve ✓"}],
        "kwargs": {"cents": 2500},
    }
