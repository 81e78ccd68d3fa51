"""`durable queues [NAME] [--json]`: the queues the tasks declare, from `GET /queues`.

Without a name, a table: each queue's concurrency per key, whether a wait releases the
slot, its size limit, its slots in use and runs waiting (summed over its keys) and its
tasks. With a name, that queue and each of its concurrency keys. `--json` prints what the
API answered.
"""

from __future__ import annotations

import argparse
from typing import Any

from durable.cli.output import print_json, table
from durable.cli.transport import call, make_transport, path_segment


def cmd_queues(args: argparse.Namespace) -> int:
    transport = make_transport(args)
    if args.name is not None:
        queue = call(transport, "GET", f"/queues/{path_segment(args.name)}")
        if args.json:
            print_json(queue)
        else:
            print(format_queues([queue]))
            print()
            print(format_keys(queue.get("keys") or []))
        return 0
    listing = call(transport, "GET", "/queues")
    if args.json:
        print_json(listing)
        return 0
    queues = listing.get("queues", []) if isinstance(listing, dict) else []
    if not queues:
        print("no queues declared (a task declares one with @task(queue=Queue(...)))")
        return 0
    print(format_queues(queues))
    return 0


def format_queues(queues: list[dict[str, Any]]) -> str:
    """A table of queues, one line each."""
    headers = ("QUEUE", "CONCURRENCY", "RELEASE ON WAIT", "MAX SIZE", "RUNNING", "WAITING")
    rows = [
        (
            str(queue.get("name", "")),
            _number(queue.get("concurrency")),
            "yes" if queue.get("release_on_wait") else "no",
            _number(queue.get("max_size")),
            str(queue.get("running", 0)),
            str(queue.get("waiting", 0)) + ("+" if queue.get("keys_capped") else ""),
            ", ".join(queue.get("tasks") or []) or "-",
        )
        for queue in queues
    ]
    return table((*headers, "TASKS"), rows)


def format_keys(keys: list[dict[str, Any]]) -> str:
    """A queue's concurrency keys, one line each (`-`: the runs without a key)."""
    if not keys:
        return "no runs have used its slots yet"
    rows = [
        (str(key.get("key") or "-"), str(key.get("running", 0)), str(key.get("waiting", 0)))
        for key in keys
    ]
    return table(("KEY", "RUNNING", "WAITING"), rows)


def _number(value: Any) -> str:
    return "-" if value is None else str(value)


def register(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], remote: argparse.ArgumentParser
) -> None:
    """Add `queues` (with `remote`'s options)."""
    queues = verbs.add_parser(
        "queues", parents=[remote], help="list the queues: limits, slots in use, runs waiting"
    )
    queues.add_argument("name", metavar="NAME", nargs="?", help="show this queue by key")
    queues.add_argument("--json", action="store_true", help="print the API's JSON")
    queues.set_defaults(handler=cmd_queues)
