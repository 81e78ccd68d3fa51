"""The audit entries of a run's timeline (`durable.timeline`): what people did to the run
(retry, rerun, fork, resume, cancel...) as markers, and the task-attempt bands a retry
starts and ends (a retry entry keeps how the attempt before it had ended, since the retry
clears the run's own end)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from durable.records import Checkpoint, CheckpointKind, RunStatus

K = CheckpointKind
Json = dict[str, Any]
# A task attempt's outcome on the timeline, by the status it ended the run with.
OUTCOME = {
    RunStatus.COMPLETED: "completed",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.TIMED_OUT: "timed_out",
    RunStatus.RUNNING: "running",
}


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def action_details(cp: Checkpoint) -> Json:  # a RUN_ACTION entry's JSON object, or {}
    try:
        details = json.loads(cp.value or "{}")
    except ValueError:
        return {}
    return details if isinstance(details, dict) else {}


def actions(checkpoints: list[Checkpoint]) -> list[Json]:
    """What people did to the run (retry, rerun, fork, resume, cancel...), as markers."""
    actions: list[Json] = []
    for cp in checkpoints:
        if cp.kind is not K.RUN_ACTION:
            continue
        details = action_details(cp)
        by = details.pop("by", None)
        at, attempt = _iso(cp.at), cp.task_attempt
        by = str(by) if by is not None else None
        actions.append(
            {"seq": cp.seq, "at": at, "name": cp.name, "by": by, "task_attempt": attempt}
            | {"details": details}
        )
    return actions


def retry_starts(checkpoints: list[Checkpoint]) -> dict[int, Checkpoint]:
    """The "retry" entries, by the task attempt each started."""
    starts: dict[int, Checkpoint] = {}
    for cp in (cp for cp in checkpoints if cp.kind is K.RUN_ACTION and cp.name == "retry"):
        attempt = action_details(cp).get("attempt")
        starts[attempt if isinstance(attempt, int) else cp.task_attempt + 1] = cp
    return starts


def retried_end(band: Json, retry: Checkpoint) -> Json:
    """How an attempt ended before someone retried the run (its retry entry keeps it)."""
    previous = action_details(retry).get("previous")
    previous = previous if isinstance(previous, dict) else {}
    status, error = str(previous.get("status")), previous.get("error")
    outcome = (
        OUTCOME.get(RunStatus(status), "failed") if status in RunStatus.__members__ else "failed"
    )
    return band | {
        "ended_at": previous.get("finished_at") or _iso(retry.at),
        "outcome": outcome,
        "error": {**error, "traceback": None} if isinstance(error, dict) else None,
        "retry_at": None,
    }
