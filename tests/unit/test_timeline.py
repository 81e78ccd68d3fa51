"""`durable.timeline.build_timeline` on hand-built logs: what each entry becomes on the page."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable.records import BatchRecord, Checkpoint, CheckpointKind, ErrorInfo, RunRecord, RunStatus
from durable.timeline import build_timeline, waiting

K = CheckpointKind
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def run(status: RunStatus = RunStatus.RUNNING, **fields: Any) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": "run_1",
        "task_id": "orders",
        "status": status,
        "payload": "null",
        "created_at": T0,
        "updated_at": T0,
        "started_at": T0,
    }
    values.update(fields)
    return RunRecord(**values)


def cp(
    seq: int, kind: CheckpointKind, op: int, name: str, at: timedelta, **fields: Any
) -> Checkpoint:
    return Checkpoint(
        seq=seq,
        kind=kind,
        op=op,
        name=name,
        task_attempt=fields.pop("task_attempt", 1),
        at=T0 + at,
        **fields,
    )


def timeline(record: RunRecord, log: list[Checkpoint], **options: Any) -> dict[str, Any]:
    now = options.pop("now", T0 + 3600 * S)
    return build_timeline(record, log, json.loads, now, **options)


def test_an_old_log_without_start_times_still_draws_its_attempts_and_gaps() -> None:
    error = ErrorInfo("ConnectionError", "down", "Traceback ...")
    log = [
        cp(1, K.STEP_FAILED, 0, "charge", 2 * S, error=error, wake_at=T0 + 4 * S),
        cp(2, K.STEP_COMPLETED, 0, "charge", 9 * S, step_attempt=2, value='"ok"'),
    ]
    (op,) = timeline(run(RunStatus.COMPLETED, finished_at=T0 + 10 * S), log)["operations"]

    assert [bar["started_at"] for bar in op["attempts"]] == [None, None]
    assert op["started_at"] == (T0 + 2 * S).isoformat()  # its first entry, lacking better
    (gap,) = op["gaps"]
    # No start time for attempt 2: the gap runs to the retry instant.
    assert (gap["from"], gap["until"], gap["label"]) == (
        (T0 + 2 * S).isoformat(),
        (T0 + 4 * S).isoformat(),
        "backoff 2.0 s",
    )
    assert op["attempts"][0]["error"] == {
        "type": "ConnectionError",
        "message": "down",
        "traceback": "Traceback ...",
    }


def test_a_step_waiting_for_its_retry_is_retrying_with_a_gap_to_the_retry() -> None:
    log = [
        cp(
            1,
            K.STEP_FAILED,
            0,
            "charge",
            2 * S,
            error=ErrorInfo("E", "x"),
            wake_at=T0 + 32 * S,
            started_at=T0 + S,
        ),
    ]
    record = run(RunStatus.RETRYING, wake_at=T0 + 32 * S)
    body = timeline(record, log, now=T0 + 10 * S)
    (op,) = body["operations"]

    assert (op["status"], op["ended_at"], op["wake_at"]) == (
        "retrying",
        None,
        (T0 + 32 * S).isoformat(),
    )
    assert op["gaps"][0]["label"] == "backoff 30.0 s"
    assert body["waiting"] == {
        "for": "retry",
        "until": (T0 + 32 * S).isoformat(),
        "description": "waits to retry until 2030-01-01 12:00:32Z",
    }


def test_an_attempt_lost_with_its_invocation_is_running_while_the_run_lives() -> None:
    log = [cp(1, K.STEP_STARTED, 0, "charge", 5 * S)]
    (op,) = timeline(run(), log)["operations"]
    assert op["status"] == "running" and op["attempts"][0]["outcome"] == "running"
    assert op["attempts"][0]["started_at"] == (T0 + 5 * S).isoformat()

    ended = run(RunStatus.CANCELLED, finished_at=T0 + 60 * S)
    (op,) = timeline(ended, log)["operations"]
    assert op["status"] == "failed" and op["attempts"][0]["outcome"] == "failed"
    assert op["ended_at"] == (T0 + 60 * S).isoformat()


def test_a_sleep_cut_short_by_a_cancel_is_not_ended_by_its_timer() -> None:
    log = [cp(1, K.SLEEP_STARTED, 0, "nap", S, wake_at=T0 + 3600 * S)]
    ended = run(RunStatus.CANCELLED, finished_at=T0 + 60 * S)
    (op,) = timeline(ended, log)["operations"]
    assert (op["status"], op["ended_by"], op["ended_at"]) == (
        "failed",
        None,
        (T0 + 60 * S).isoformat(),
    )


def test_a_batch_shows_its_counters_and_only_its_first_hundred_children() -> None:
    log = [cp(1, K.BATCH_STARTED, 0, "map:price", S, value='{"total": 500}')]
    stored = BatchRecord(
        "run_1",
        0,
        1,
        500,
        "[]",
        max_concurrency=150,
        tolerated_failures=0,
        first_success=False,
        succeeded=40,
        failed=2,
    )
    record = run(RunStatus.WAITING, waiting_for="batch:1:0")
    body = timeline(record, log, batches={(1, 0): stored})
    (op,) = body["operations"]

    assert op["status"] == "waiting"
    assert {k: op["batch"][k] for k in ("total", "completed", "failed")} == {
        "total": 500,
        "completed": 40,
        "failed": 2,
    }
    assert len(op["batch"]["child_run_ids"]) == 100
    assert op["batch"]["child_run_ids"][:2] == ["run_1.1.0.0", "run_1.1.0.1"]
    assert body["waiting"]["for"] == "batch:1:0"

    # Without its record (purged, say), the log's counts.
    end = cp(
        2,
        K.BATCH_COMPLETED,
        0,
        "map:price",
        9 * S,
        value='{"total": 2, "succeeded": 2, "failed": 0}',
    )
    log = [cp(1, K.BATCH_STARTED, 0, "map:price", S, value='{"total": 2}'), end]
    (op,) = timeline(run(RunStatus.COMPLETED, finished_at=T0 + 10 * S), log)["operations"]
    assert op["batch"] == {
        "total": 2,
        "completed": 2,
        "failed": 0,
        "child_run_ids": ["run_1.1.0.0", "run_1.1.0.1"],
    }
    assert op["ended_by"] == "completed"


def test_values_patches_and_triggers_are_instants() -> None:
    log = [
        cp(1, K.VALUE_RECORDED, 0, "now", S, value='"2030-01-01T12:00:01+00:00"'),
        cp(2, K.PATCH_MARKER, 1, "fix-1", 2 * S),
        cp(3, K.CHILD_TRIGGERED, 2, "mail", 3 * S, value='"run_2"'),
    ]
    ops = timeline(run(), log)["operations"]
    assert [(op["kind"], op["started_at"] == op["ended_at"]) for op in ops] == [
        ("value", True),
        ("patch", True),
        ("trigger", True),
    ]
    assert ops[2]["child_run_id"] == "run_2"


@pytest.mark.parametrize(
    ("status", "waiting_for", "expected_for", "words"),
    [
        (RunStatus.WAITING, "approval", "event:approval", 'waits for event "approval"'),
        (RunStatus.WAITING, "child:run_9", "child:run_9", "child run run_9"),
        (RunStatus.WAITING, "callback:" + "a" * 64, "callback:aaaaaa…", "callback aaaaaa…"),
        (RunStatus.WAITING, "code-version:v2", "code-version:v2", "code version v2"),
        (RunStatus.WAITING, "fix:nondeterminism", "fix:nondeterminism", "held: its replay"),
        (RunStatus.WAITING, "fix:unknown-task", "fix:unknown-task", "held: the deployed code"),
        (RunStatus.QUEUED, "repair:fork", "repair:fork", "waits for its fork to be finished"),
        (RunStatus.QUEUED, None, "start", "waits to start"),
        (RunStatus.QUEUED, "queue:llm", "queue:llm", "waits for a slot in queue llm"),
        (RunStatus.QUEUED, "rate:llm", "rate:llm", "under queue llm's rate limit"),
    ],
)
def test_what_a_run_waits_for(
    status: RunStatus, waiting_for: str | None, expected_for: str, words: str
) -> None:
    found = waiting(run(status, waiting_for=waiting_for, wake_at=T0 + 60 * S))
    assert found is not None
    assert found["for"] == expected_for and words in found["description"]
    assert found["description"].endswith("until 2030-01-01 12:01:00Z")
    assert "a" * 7 not in json.dumps(found)


def test_a_running_or_finished_run_waits_for_nothing() -> None:
    assert waiting(run(RunStatus.RUNNING)) is None
    assert waiting(run(RunStatus.COMPLETED)) is None
