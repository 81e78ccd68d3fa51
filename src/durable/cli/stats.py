"""`durable stats [--json]`: the figures of `GET /metrics` (`durable.services.stats`) as
tables: the queue and workers, then one row per task (runs by status, the last hour)."""

from __future__ import annotations

import argparse
from typing import Any

from durable.cli.output import print_json, table
from durable.cli.transport import call, make_transport

_ACTIVE = ("QUEUED", "RUNNING", "WAITING", "RETRYING")
_ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


def cmd_stats(args: argparse.Namespace) -> int:
    figures = call(make_transport(args), "GET", "/metrics")
    if args.json:
        print_json(figures)
        return 0
    print(format_stats(figures))
    return 0


def format_stats(figures: dict[str, Any]) -> str:
    """The figures as text: a summary line per part, then a table of the tasks."""
    queue, dead, workers = figures["queue"], figures["dead_letter"], figures["workers"]
    limit = workers.get("limit")
    lines = [
        f"queue {_n(queue.get('name'))}: {_n(queue.get('depth'))} waiting, "
        f"{_n(queue.get('in_flight'))} in flight, {_n(queue.get('delayed'))} delayed",
        f"dead-letter queue {_n(dead.get('name'))}: {_n(dead.get('depth'))} messages",
        f"workers: {_n(workers.get('in_use'))} in use of "
        + (str(limit) if limit else "no known limit"),
        "",
    ]
    headers: tuple[str, ...] = ("TASK", *_ACTIVE, *_ENDED, "1H STARTED", "DONE", "FAILED")
    headers = (*headers, "RETRY RATE", "P50", "P95", "HELD")
    rows: list[tuple[str, ...]] = []
    for task in figures["tasks"]:
        by_status, hour = task["by_status"], task["last_hour"]
        rows.append(
            (
                task["task_id"],
                *(str(by_status.get(status, 0)) for status in (*_ACTIVE, *_ENDED)),
                str(hour["started"]),
                str(hour["completed"]),
                str(hour["failed"] + hour["timed_out"]),
                _rate(hour["retry_rate"]),
                _seconds(hour["p50_seconds"]),
                _seconds(hour["p95_seconds"]),
                str(task.get("held", 0)),
            )
        )
    totals = figures["totals"]["by_status"]
    rows.append(
        ("(all)", *(str(totals.get(status, 0)) for status in (*_ACTIVE, *_ENDED)), *("",) * 7)
    )
    lines.append(table(headers, rows) if figures["tasks"] else "no tasks")
    capped = figures.get("capped_statuses") or []
    if capped:
        lines.append(f"\nmore runs {', '.join(capped)} than were counted: those are lower bounds")
    return "\n".join(lines)


def _n(value: Any) -> str:
    return "-" if value is None else str(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def register(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], remote: argparse.ArgumentParser
) -> None:
    """Add `stats` (with `remote`'s options)."""
    stats = verbs.add_parser(
        "stats", parents=[remote], help="queue, worker and run figures (GET /metrics)"
    )
    stats.add_argument("--json", action="store_true", help="print the API's JSON")
    stats.set_defaults(handler=cmd_stats)
