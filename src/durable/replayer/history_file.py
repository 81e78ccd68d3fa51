"""History files (`durable replay RUN_ID --save FILE`, `--history FILE`): a run and its log.

They hold what the HTTP API shows: `{"run": <GET /runs/{id}>, "history": [<GET
/runs/{id}/history entries>]}`, values decoded; they are re-encoded into checkpoints here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from durable.blobs.memory import MemoryBlobStore
from durable.clock import utc
from durable.errors import InputError
from durable.records import Checkpoint, CheckpointKind, ErrorInfo, RunRecord, RunStatus
from durable.replayer.replay import replay_run
from durable.replayer.report import ReplayReport
from durable.serialization import dumps
from durable.task import TaskRegistry
from durable.values import ValueCodec

# Kinds whose value the context reads as plain JSON text (not through the codec).
_PLAIN_JSON_KINDS = frozenset(
    {
        CheckpointKind.VALUE_RECORDED,
        CheckpointKind.CHILD_STARTED,
        CheckpointKind.CHILD_TRIGGERED,
        CheckpointKind.CALLBACK_CREATED,
    }
)
# Kinds whose entries always carry a value (JSON null included).
_VALUE_KINDS = _PLAIN_JSON_KINDS | {
    CheckpointKind.STEP_COMPLETED,
    CheckpointKind.STEP_HEARTBEAT,
    CheckpointKind.EVENT_RECEIVED,
    CheckpointKind.CHILD_COMPLETED,
    CheckpointKind.CALLBACK_COMPLETED,
}


class HistoryFileError(InputError):
    """A history file that cannot be read or does not hold a run and its log."""

    code = "invalid_history"


@dataclass(frozen=True, slots=True)
class RecordedRun:
    """A run and its log as the HTTP API shows them: the body of a history file."""

    run: dict[str, Any]
    history: list[dict[str, Any]]

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    def to_json(self) -> str:
        return json.dumps({"run": self.run, "history": self.history}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "history file") -> RecordedRun:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise HistoryFileError(f"{source} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("run"), dict):
            raise HistoryFileError(f'{source} must hold {{"run": {{...}}, "history": [...]}}')
        history = data.get("history")
        if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
            raise HistoryFileError(f'{source}: "history" must be a list of log entries')
        recorded = cls(run=data["run"], history=history)
        recorded.decode(ValueCodec(MemoryBlobStore()), source)  # every field checked now
        return recorded

    def decode(
        self, codec: ValueCodec, source: str = "history file"
    ) -> tuple[RunRecord, list[Checkpoint]]:
        """The run record and checkpoints, values re-encoded with `codec`."""
        try:
            run = _run_record(self.run, codec)
            history = [_checkpoint(entry, codec) for entry in self.history]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise HistoryFileError(f"{source} is not a recorded run: {what}") from None
        return run, history

    def replay(self, registry: TaskRegistry | None = None) -> ReplayReport:
        """Replay this recording against the tasks `registry` holds (default: `@task`'s)."""
        codec = ValueCodec(MemoryBlobStore())
        run, history = self.decode(codec)
        return replay_run(run, history, codec, registry)


def load_history_file(path: str | Path) -> RecordedRun:
    """Read a history file (`durable replay --history FILE`); HistoryFileError if unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise HistoryFileError(f"cannot read {path}: {reason}") from None
    return RecordedRun.from_json(text, str(path))


def save_history_file(path: str | Path, recorded: RecordedRun) -> None:
    """Write a history file (`durable replay RUN_ID --save FILE`)."""
    try:
        Path(path).write_text(recorded.to_json(), encoding="utf-8")
    except OSError as exc:
        raise HistoryFileError(f"cannot write {path}: {exc.strerror}") from None


def _instant(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 instant, got {value!r}")
    return utc(datetime.fromisoformat(value))


def _optional_instant(value: Any) -> datetime | None:
    return None if value is None else _instant(value)


def _error(value: Any) -> ErrorInfo | None:
    return None if value is None else ErrorInfo.from_dict(value)


def _run_record(data: dict[str, Any], codec: ValueCodec) -> RunRecord:
    run_id = str(data["run_id"])
    version = data.get("version") or {}
    return RunRecord(
        run_id=run_id,
        task_id=str(data["task_id"]),
        status=RunStatus(data["status"]),
        payload=codec.encode(data.get("payload"), f"{run_id}/payload"),
        created_at=_instant(data["created_at"]),
        updated_at=_instant(data["updated_at"]),
        attempt=int(data.get("attempts", 1)),
        started_at=_optional_instant(data.get("started_at")),
        finished_at=_optional_instant(data.get("finished_at")),
        error=_error(data.get("error")),
        task_version=str(version.get("task", "1")),
        code_version=str(version.get("code", "dev")),
        wake_at=_optional_instant(data.get("wake_at")),
        waiting_for=data.get("waiting_for"),
        parent_run_id=data.get("parent_run_id"),
    )


def _checkpoint(data: dict[str, Any], codec: ValueCodec) -> Checkpoint:
    kind = CheckpointKind(data["kind"])
    seq = int(data["seq"])
    value: str | None = None
    if kind in _PLAIN_JSON_KINDS:
        value = dumps(data.get("value"))
    elif kind in _VALUE_KINDS or data.get("value") is not None:
        value = codec.encode(data.get("value"), f"replay/{seq}")
    return Checkpoint(
        seq=seq,
        kind=kind,
        op=int(data["position"]),
        name=str(data["name"]),
        task_attempt=int(data["task_attempt"]),
        at=_instant(data["at"]),
        step_attempt=int(data.get("attempt", 1)),
        value=value,
        error=_error(data.get("error")),
        wake_at=_optional_instant(data.get("wake_at")),
    )
