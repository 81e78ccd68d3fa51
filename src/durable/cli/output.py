"""What the client commands print: JSON as the API answered it, or tables of runs and of a
run's checkpoint log for people."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

# The statuses a run ends in (the API's names).
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def format_runs(runs: list[dict[str, Any]]) -> str:
    """A table of runs, one line each."""
    headers: tuple[str, ...] = ("RUN ID", "TASK", "STATUS", "ATTEMPTS", "CREATED", "FINISHED")
    rows: list[tuple[str, ...]] = [
        (
            str(run.get("run_id", "")),
            str(run.get("task_id", "")),
            str(run.get("status", "")),
            str(run.get("attempts", "")),
            _when(run.get("created_at")),
            _when(run.get("finished_at")),
        )
        for run in runs
    ]
    waits = [_waiting_for(run) for run in runs]
    if any(waits):  # a column only when some run waits: a slot, an event, a timer...
        headers = (*headers, "WAITING FOR")
        rows = [(*row, wait or "-") for row, wait in zip(rows, waits, strict=True)]
    if any(run.get("tags") for run in runs):  # a column only when some run has tags
        headers = (*headers, "TAGS")
        tags = [",".join(run.get("tags") or []) for run in runs]
        rows = [(*row, tag) for row, tag in zip(rows, tags, strict=True)]
    return table(headers, rows)


def _waiting_for(run: dict[str, Any]) -> str:
    """What an unfinished run waits for (`queue:llm`, an event's name...), "" if nothing."""
    if run.get("status") in TERMINAL or not run.get("waiting_for"):
        return ""
    return str(run["waiting_for"])


def format_history(entries: list[dict[str, Any]]) -> str:
    """A run's checkpoint log as a table, one entry a line.

    TASK ATTEMPT is the attempt of the run that wrote the entry (a task retry counts it up);
    STEP ATTEMPT is a step's own try within it (a step retry counts it up), `-` for entries
    that are not a step's.
    """
    headers = ("SEQ", "KIND", "NAME", "TASK ATTEMPT", "STEP ATTEMPT", "AT")
    rows = [
        (
            str(entry.get("seq", "")),
            str(entry.get("kind", "")),
            str(entry.get("name", "")),
            str(entry.get("task_attempt", "")),
            str(entry.get("attempt", "")) if _is_step(entry) else "-",
            _when(entry.get("at")),
        )
        for entry in entries
    ]
    return table(headers, rows)


def _is_step(entry: dict[str, Any]) -> bool:
    return str(entry.get("kind", "")).startswith("step_")


def table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """Rows under their headers, in columns as wide as their widest cell."""
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    )


def _when(value: Any) -> str:
    if not value:
        return "-"
    return str(value)[:19].replace("T", " ")
