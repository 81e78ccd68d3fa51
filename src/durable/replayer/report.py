"""What a replay found (`ReplayReport`: OK, DIVERGED, UNKNOWN_TASK) and how it is printed.

A divergence is shown as a side-by-side of the recorded and the requested operation
(kind, name) at its position; a side that had ended there reads "end (task returned)".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ReplayStatus(StrEnum):
    """What a replay found."""

    OK = "OK"
    DIVERGED = "DIVERGED"
    UNKNOWN_TASK = "UNKNOWN_TASK"


@dataclass(frozen=True, slots=True)
class Operation:
    """One side of a divergence: what was recorded or requested at a position."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of replaying one run.

    On a divergence, `position` is where it happened, `attempt` the task attempt whose
    recording it is in, and each side is an `Operation`, or None when that side had ended
    there (`recorded_end` / `requested_end` say how: "returned", "raised KeyError").
    """

    run_id: str
    task_id: str
    status: ReplayStatus
    positions_replayed: int = 0
    position: int | None = None
    attempt: int | None = None
    recorded: Operation | None = None
    requested: Operation | None = None
    recorded_end: str | None = None
    requested_end: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is ReplayStatus.OK

    @property
    def recorded_text(self) -> str:
        return _side(self.recorded, self.recorded_end)

    @property
    def requested_text(self) -> str:
        return _side(self.requested, self.requested_end)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "task_id": self.task_id,
            "status": str(self.status),
            "ok": self.ok,
            "positions_replayed": self.positions_replayed,
        }
        if self.status is ReplayStatus.DIVERGED:
            data["divergence"] = {
                "position": self.position,
                "attempt": self.attempt,
                "recorded": _operation_dict(self.recorded, self.recorded_end),
                "requested": _operation_dict(self.requested, self.requested_end),
            }
        return data


def _side(operation: Operation | None, end: str | None) -> str:
    if operation is not None:
        return str(operation)
    return f"end (task {end})" if end else "end"


def _operation_dict(operation: Operation | None, end: str | None) -> dict[str, Any]:
    if operation is not None:
        return {"kind": operation.kind, "name": operation.name}
    return {"kind": "end", "name": None, "end": end}


def format_report(report: ReplayReport) -> str:
    """`OK run (task, N operations replayed)`, or the side-by-side of the first divergence."""
    if report.status is ReplayStatus.OK:
        count = report.positions_replayed
        noun = "operation" if count == 1 else "operations"
        return f"OK {report.run_id} ({report.task_id}, {count} {noun} replayed)"
    if report.status is ReplayStatus.UNKNOWN_TASK:
        return (
            f"UNKNOWN TASK {report.run_id} ({report.task_id}): no task with this id is "
            "registered in today's code (import its module with --tasks)"
        )
    rows = [
        ("position", "recorded", "requested"),
        (str(report.position), report.recorded_text, report.requested_text),
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    table = "\n".join(
        f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}".rstrip() for row in rows
    )
    return f"DIVERGED {report.run_id} ({report.task_id}, task attempt {report.attempt})\n{table}"
