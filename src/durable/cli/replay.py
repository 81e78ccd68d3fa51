"""`durable replay`: replay recorded histories (one run, a saved history file, or every open
run) against today's code, and report any non-determinism (exit 1)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from durable.cli.transport import CliError, Transport, call, make_transport, path_segment


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay recorded histories against today's code; 1 when any run diverges."""
    import importlib
    from collections.abc import Iterable, Iterator

    from durable.errors import InputError
    from durable.replayer import (
        RecordedRun,
        ReplayStatus,
        format_report,
        load_history_file,
        save_history_file,
    )

    if args.open and (args.run_id or args.history or args.save):
        raise CliError("--open replays every open run: give no RUN_ID, --history or --save")
    if not (args.open or args.run_id or args.history):
        raise CliError("give a RUN_ID, --history FILE or --open")
    if args.save and (args.history or not args.run_id):
        raise CliError("--save FILE needs a RUN_ID to fetch (and no --history)")
    # Like `python -m`, the current directory holds the user's task modules.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    modules = args.tasks or os.environ.get("DURABLE_TASK_MODULES") or "tasks"
    for module in (name.strip() for name in modules.split(",")):
        if module:
            try:
                importlib.import_module(module)
            except Exception as exc:
                raise CliError(f"cannot import the task module {module!r}: {exc}") from None

    def fetch(transport: Transport, run: dict[str, Any]) -> RecordedRun:
        # The run is read before its log: a run seen open is never judged as finished
        # against a log read before it finished.
        path = f"/runs/{path_segment(str(run['run_id']))}/history"
        log = call(transport, "GET", path)
        return RecordedRun(run, log.get("history", []) if isinstance(log, dict) else log)

    def open_runs(transport: Transport) -> Iterator[RecordedRun]:
        seen: set[str] = set()
        for status in ("QUEUED", "RUNNING", "WAITING", "RETRYING"):
            cursor: str | None = None
            while True:
                query = {"status": status, "limit": "100"}
                if cursor:
                    query["cursor"] = cursor
                page = call(transport, "GET", "/runs", query=query)
                for summary in page.get("runs", []):
                    if summary["run_id"] not in seen:
                        seen.add(summary["run_id"])
                        # The list carries summaries: the run itself holds the payload.
                        run = call(transport, "GET", f"/runs/{path_segment(summary['run_id'])}")
                        yield fetch(transport, run)
                cursor = page.get("next_cursor")
                if not cursor:
                    break

    counts = dict.fromkeys(ReplayStatus, 0)
    try:
        if args.history:
            recorded = load_history_file(args.history)
            if args.run_id and recorded.run_id != args.run_id:
                raise CliError(f"{args.history} holds run {recorded.run_id}, not {args.run_id}")
            recordings: Iterable[RecordedRun] = [recorded]
        elif args.open:
            recordings = open_runs(make_transport(args))
        else:
            transport = make_transport(args)
            run = call(transport, "GET", f"/runs/{path_segment(args.run_id)}")
            recorded = fetch(transport, run)
            if args.save:
                save_history_file(args.save, recorded)
            recordings = [recorded]
        for recorded in recordings:
            report = recorded.replay()
            counts[report.status] += 1
            print(format_report(report), flush=True)
    except InputError as exc:
        raise CliError(str(exc)) from None
    total = sum(counts.values())
    if args.open:
        print(
            f"{total} open run{'' if total == 1 else 's'} replayed: {counts[ReplayStatus.OK]} OK, "
            f"{counts[ReplayStatus.DIVERGED]} diverged, "
            f"{counts[ReplayStatus.UNKNOWN_TASK]} of unknown tasks"
            if total
            else "no open runs to replay"
        )
    if counts[ReplayStatus.DIVERGED]:
        print(
            "\ntoday's code would hold these runs (WAITING fix:nondeterminism, a "
            "NonDeterminismError) until code that can replay them is deployed. Keep the old "
            'path for them with `if ctx.patched("change-id"): <new> else: <old>`, '
            "or deploy once they have ended."
        )
    return 0 if counts[ReplayStatus.OK] == total else 1


def register(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], remote: argparse.ArgumentParser
) -> None:
    """Add `replay` (with `remote`'s options: where to read the runs from)."""
    replay = verbs.add_parser(
        "replay",
        parents=[remote],
        help="replay recorded histories against today's code; report any non-determinism",
    )
    replay.add_argument("run_id", metavar="RUN_ID", nargs="?", help="the run to replay")
    replay.add_argument(
        "--tasks",
        help="comma-separated task modules to import (default: $DURABLE_TASK_MODULES or tasks)",
    )
    replay.add_argument(
        "--open",
        action="store_true",
        help="replay every run not yet finished (the check to run before a deploy)",
    )
    replay.add_argument(
        "--history", metavar="FILE", help="replay a history file (from --save) instead"
    )
    replay.add_argument("--save", metavar="FILE", help="also write the run and its history to FILE")
    replay.set_defaults(handler=cmd_replay)
