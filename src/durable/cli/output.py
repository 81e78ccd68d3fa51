"""What the client commands print: JSON as the API answered it, or tables of runs and of a
run's checkpoint log for people."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


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
    if any(run.get("tags") for run in runs):  # a column only when some run has tags
        headers = (*headers, "TAGS")
        tags = [",".join(run.get("tags") or []) for run in runs]
        rows = [(*row, tag) for row, tag in zip(rows, tags, strict=True)]
    return table(headers, rows)


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
