"""`durable logs RUN_ID [--follow]`: what a run logged, from `GET /runs/{run_id}/logs`.

Without `--follow` it prints every line logged so far (page after page, while the API says
there is `more`) and exits. With
`--follow` it keeps asking for newer lines with each page's `next_cursor`, every
`--interval` seconds, until the run has ended and no new line has come for `--settle`
seconds after that (on AWS a line is searchable a few seconds after it is printed);
Ctrl-C stops it too, with exit code 0. An unknown run is exit code 2, as for `show`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from datetime import datetime
from typing import Any

from durable.cli.output import TERMINAL
from durable.cli.transport import CliError, Transport, call, make_transport, path_segment

PAGE = 1000


def format_line(line: dict[str, Any]) -> str:
    """`12:00:01.250 INFO  [charge] durable: charging card amount=5`."""
    when = str(line.get("at", ""))
    with contextlib.suppress(ValueError):
        when = datetime.fromisoformat(when).strftime("%H:%M:%S.%f")[:-3]
    parts = [when, f"{line.get('level', '')!s:<5}"]
    if line.get("step"):
        parts.append(f"[{line['step']}]")
    parts.append(f"{line.get('logger', '')}: {line.get('message', '')}")
    data = line.get("data") or {}
    if isinstance(data, dict):
        parts.extend(f"{key}={json.dumps(value, default=str)}" for key, value in data.items())
    return " ".join(parts)


def _page(transport: Transport, run_id: str, cursor: str | None) -> dict[str, Any]:
    query = {"limit": str(PAGE)}
    if cursor:
        query["cursor"] = cursor
    page: dict[str, Any] = call(transport, "GET", f"/runs/{path_segment(run_id)}/logs", query=query)
    return page


def _print(lines: list[dict[str, Any]], as_json: bool) -> None:
    for line in lines:
        print(json.dumps(line, ensure_ascii=False) if as_json else format_line(line), flush=True)


def cmd_logs(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise CliError("--interval must be positive")
    if args.settle < 0:
        raise CliError("--settle must not be negative")
    transport = make_transport(args)
    try:
        follow(transport, args.run_id, args.follow, args.interval, args.settle, args.json)
    except KeyboardInterrupt:
        return 0
    return 0


def follow(
    transport: Transport,
    run_id: str,
    keep_following: bool,
    interval: float,
    settle: float,
    as_json: bool,
) -> None:
    """Print the run's lines; with `keep_following`, newer ones until the run has ended and
    `settle` seconds have passed since with nothing new."""
    cursor: str | None = None
    ended_at: float | None = None  # when the run was first seen ended (monotonic)
    while True:
        # The status first: lines read after seeing the run ended include its last ones.
        if keep_following and ended_at is None:
            run = call(transport, "GET", f"/runs/{path_segment(run_id)}")
            if isinstance(run, dict) and run.get("status") in TERMINAL:
                ended_at = time.monotonic()
        page = _page(transport, run_id, cursor)
        lines = page.get("logs", [])
        _print(lines, as_json)
        cursor = page.get("next_cursor") or cursor
        if page.get("more"):
            continue  # the read stopped before the end: the rest at once
        if not keep_following:
            return  # everything so far: `more` was false
        if ended_at is not None and not lines and time.monotonic() - ended_at >= settle:
            return
        time.sleep(interval)


def register(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], remote: argparse.ArgumentParser
) -> None:
    """Add `logs` (with `remote`'s options)."""
    logs = verbs.add_parser("logs", parents=[remote], help="print what a run logged")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument(
        "--follow", "-f", action="store_true", help="print new lines until the run ends"
    )
    logs.add_argument("--json", action="store_true", help="one JSON object a line")
    logs.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="--follow polls (1)"
    )
    logs.add_argument(
        "--settle",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="--follow waits this long after the run ended for late lines (2)",
    )
    logs.set_defaults(handler=cmd_logs)
