"""The commands that start, inspect and steer runs through the API: `trigger` (and wait for
the end), `runs`, `show`, `send-event` and `cancel`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from durable.cli.output import TERMINAL, format_history, format_runs, print_json
from durable.cli.resume import print_hold_note
from durable.cli.transport import CliError, Transport, call, make_transport, path_segment
from durable.serialization import JsonData

STATUSES = (
    "QUEUED",
    "RUNNING",
    "WAITING",
    "RETRYING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMED_OUT",
)


def parse_json(text: str, option: str) -> JsonData:
    """A JSON value from the command line: inline, `@file.json`, or `-` for stdin."""
    source = text
    if text == "-":
        source = sys.stdin.read()
    elif text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as handle:
                source = handle.read()
        except OSError as exc:
            raise CliError(f"{option}: cannot read {text[1:]}: {exc.strerror}") from None
    try:
        return json.loads(source)
    except ValueError as exc:
        raise CliError(
            f"{option} is not valid JSON ({exc}); "
            f"""quote it for the shell, e.g. {option} '{{"name": "Ada"}}'"""
        ) from None


def cmd_trigger(args: argparse.Namespace) -> int:
    payload = parse_json(args.payload, "--payload")
    if args.delay is not None and args.delay < 0:
        raise CliError("--delay must not be negative")
    body: dict[str, Any] = {"payload": payload}
    if args.idempotency_key is not None:
        body["idempotency_key"] = args.idempotency_key
    if args.idempotency_ttl is not None:
        if args.idempotency_ttl < 1:
            raise CliError("--idempotency-ttl must be at least 1 second")
        body["idempotency_key_ttl"] = args.idempotency_ttl
    if args.delay:
        body["delay_seconds"] = args.delay
    if args.tag:
        body["tags"] = args.tag
    if args.meta:
        body["metadata"] = dict(_key_value(item) for item in args.meta)
    if args.concurrency_key is not None:
        body["concurrency_key"] = args.concurrency_key
    if args.priority is not None:
        body["priority"] = args.priority
    if args.ttl is not None:
        if args.ttl < 1:
            raise CliError("--ttl must be at least 1 second")
        body["ttl_seconds"] = args.ttl
    transport = make_transport(args)
    started = call(transport, "POST", f"/tasks/{path_segment(args.task_id)}/runs", body)
    if not args.wait:
        print_json(started)
        return 0
    run = wait_for_end(transport, started["run_id"], args.timeout)
    print_json(run)
    return 0 if run.get("status") == "COMPLETED" else 1


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise CliError(f"--meta {item!r}: give it as KEY=VALUE")
    return key, value


def wait_for_end(transport: Transport, run_id: str, timeout: float) -> dict[str, Any]:
    """Poll the run until it ends; CliError (exit 1) when `timeout` seconds pass first."""
    limit = time.monotonic() + timeout
    delay = 0.1
    while True:
        run: dict[str, Any] = call(transport, "GET", f"/runs/{path_segment(run_id)}")
        if run.get("status") in TERMINAL:
            return run
        if time.monotonic() >= limit:
            raise CliError(
                f"run {run_id} is still {run.get('status')} after {timeout:g}s; "
                f"follow it with `durable show {run_id}`",
                exit_code=1,
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def cmd_runs(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise CliError("--limit must be between 1 and 1000")
    filters = {
        "task_id": args.task,
        "status": args.status,
        "cursor": args.cursor,
        "created_after": args.since,
        "created_before": args.until,
        "tag": args.tag,
        "finished_after": args.finished_since,
        "finished_before": args.finished_until,
    }
    query = {"limit": str(args.limit)} | {name: value for name, value in filters.items() if value}
    page = call(make_transport(args), "GET", "/runs", query=query)
    if args.json:
        print_json(page)
        return 0
    runs = page.get("runs", [])
    print(format_runs(runs) if runs else "no runs")
    if page.get("next_cursor"):
        print(f"\nmore: durable runs --cursor {page['next_cursor']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    transport = make_transport(args)
    run = call(transport, "GET", f"/runs/{path_segment(args.run_id)}")
    if args.history:
        log = call(transport, "GET", f"/runs/{path_segment(args.run_id)}/history")
        run["history"] = log.get("history", log) if isinstance(log, dict) else log
    if not args.table:
        print_json(run)
        print_hold_note(run, to_stderr=True)
        return 0
    print(format_runs([run]))
    print_hold_note(run, to_stderr=False)
    if args.history:
        print()
        print(format_history(run["history"]) if run["history"] else "no checkpoints yet")
    return 0


def cmd_send_event(args: argparse.Namespace) -> int:
    data = parse_json(args.data, "--data")
    path = f"/runs/{path_segment(args.run_id)}/events/{path_segment(args.name)}"
    body: dict[str, Any] = {"data": data}
    if args.event_id:
        body["event_id"] = args.event_id
    print_json(call(make_transport(args), "POST", path, body))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    print_json(call(make_transport(args), "POST", f"/runs/{path_segment(args.run_id)}/cancel"))
    return 0


def _status(value: str) -> str:
    upper = value.upper()
    if upper not in STATUSES:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(STATUSES)}")
    return upper


def register(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], remote: argparse.ArgumentParser
) -> None:
    """Add `trigger`, `runs`, `show`, `send-event` and `cancel` (each with `remote`'s options)."""
    trigger = verbs.add_parser("trigger", parents=[remote], help="start a run of a task")
    trigger.add_argument("task_id", metavar="TASK_ID")
    trigger.add_argument(
        "--payload", default="null", help="JSON payload, @file.json, or - for stdin (null)"
    )
    trigger.add_argument("--idempotency-key", help="the same key gives the same run")
    trigger.add_argument(
        "--idempotency-ttl",
        type=int,
        metavar="SECONDS",
        help="how long the key holds (the deployment's default: 24 h); then it starts a new run",
    )
    trigger.add_argument("--delay", type=int, metavar="SECONDS", help="start this much later")
    trigger.add_argument(
        "--tag", action="append", metavar="TAG", help="tag the run, e.g. user:123 (repeat)"
    )
    trigger.add_argument(
        "--meta", action="append", metavar="KEY=VALUE", help="a metadata key-value (repeat)"
    )
    trigger.add_argument(
        "--concurrency-key", metavar="KEY", help="the queue's limits apply per key (a tenant)"
    )
    trigger.add_argument(
        "--priority", type=int, metavar="0-100", help="higher starts first in its queue (0)"
    )
    trigger.add_argument(
        "--ttl", type=int, metavar="SECONDS", help="cancel the run if not started by then"
    )
    trigger.add_argument("--wait", action="store_true", help="wait for the run to end")
    trigger.add_argument(
        "--timeout", type=float, default=300.0, metavar="SECONDS", help="--wait at most (300)"
    )
    trigger.set_defaults(handler=cmd_trigger)

    runs = verbs.add_parser("runs", parents=[remote], help="list runs, newest first")
    runs.add_argument("--task", help="only runs of this task id")
    runs.add_argument("--status", type=_status, help="only runs in this status")
    runs.add_argument("--limit", type=int, default=20, help="at most this many (20)")
    runs.add_argument("--cursor", help="the next page after an earlier listing")
    runs.add_argument("--since", metavar="INSTANT", help="created at or after (ISO-8601, UTC)")
    runs.add_argument("--until", metavar="INSTANT", help="created before (ISO-8601, UTC)")
    runs.add_argument("--tag", help="only runs with this tag")
    runs.add_argument(
        "--finished-since", metavar="INSTANT", help="finished at or after (ISO-8601, UTC)"
    )
    runs.add_argument("--finished-until", metavar="INSTANT", help="finished before (ISO-8601, UTC)")
    runs.add_argument("--json", action="store_true", help="print the API's JSON")
    runs.set_defaults(handler=cmd_runs)

    show = verbs.add_parser("show", parents=[remote], help="show a run")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--history", action="store_true", help="include the checkpoint log")
    show.add_argument(
        "--table",
        action="store_true",
        help="print tables instead of JSON (the log with each entry's task and step attempt)",
    )
    show.set_defaults(handler=cmd_show)

    send = verbs.add_parser("send-event", parents=[remote], help="send an event to a run")
    send.add_argument("run_id", metavar="RUN_ID")
    send.add_argument("name", metavar="NAME")
    send.add_argument("--data", default="null", help="JSON data, @file.json, or - (null)")
    send.add_argument(
        "--event-id", default=None, help="unique per event: sending it again stores it once"
    )
    send.set_defaults(handler=cmd_send_event)

    cancel = verbs.add_parser("cancel", parents=[remote], help="cancel a run")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.set_defaults(handler=cmd_cancel)
