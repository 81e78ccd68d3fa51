"""`durable tasks [TASK_ID] [--json]`: the tasks the API serves, from `GET /tasks`.

Without an id, a table: each task's version, retry policy, timeout, schedule, whether it is
async, its payload's fields (`name?` when optional) and its docstring's first line. With an
id, one task in full: the same, its payload and result JSON Schemas, and an example
payload as a ready `durable trigger` command. `--json` prints what the API answered.
"""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from durable.cli.output import print_json, table
from durable.cli.transport import call, make_transport, path_segment

# The widest a PAYLOAD and a DESCRIPTION cell get in the table; the rest is cut with "…".
PAYLOAD_WIDTH = 36
DESCRIPTION_WIDTH = 60


def cmd_tasks(args: argparse.Namespace) -> int:
    transport = make_transport(args)
    if args.task_id is not None:
        task = call(transport, "GET", f"/tasks/{path_segment(args.task_id)}")
        if args.json:
            print_json(task)
        else:
            print(format_task(task))
        return 0
    listing = call(transport, "GET", "/tasks")
    if args.json:
        print_json(listing)
        return 0
    tasks = listing.get("tasks", []) if isinstance(listing, dict) else []
    if not tasks:
        print("no tasks registered (the API imports the modules in DURABLE_TASK_MODULES)")
        return 0
    print(format_tasks(tasks))
    print("\nmore: durable tasks TASK_ID (schemas and an example payload)")
    return 0


def format_tasks(tasks: list[dict[str, Any]]) -> str:
    """A table of tasks, one line each (DESCRIPTION only when some task has a docstring)."""
    headers: tuple[str, ...] = ("TASK", "VERSION", "RETRY", "TIMEOUT", "SCHEDULE", "ASYNC")
    headers += ("PAYLOAD", "DESCRIPTION")
    rows: list[tuple[str, ...]] = [
        (
            str(task.get("task_id", "")),
            str(task.get("version") or "-"),
            retry_text(task.get("retry"), with_exceptions=False),
            duration_text(task.get("timeout_seconds")),
            schedule_text(task.get("schedule"), with_next=False),
            "yes" if task.get("is_async") else "no",
            _cut(fields_text(task.get("payload_schema")), PAYLOAD_WIDTH),
            _cut(str(task.get("description") or "-"), DESCRIPTION_WIDTH),
        )
        for task in tasks
    ]
    if not any(task.get("description") for task in tasks):  # no docstrings: no column
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    return table(headers, rows)


def format_task(task: dict[str, Any]) -> str:
    """One task in full, for people."""
    task_id = str(task.get("task_id", ""))
    lines = [
        f"task         {task_id}",
        f"description  {task.get('description') or '-'}",
        f"version      {task.get('version') or '-'}",
        f"retry        {retry_text(task.get('retry'), with_exceptions=True)}",
        f"timeout      {duration_text(task.get('timeout_seconds'))}",
        f"schedule     {schedule_text(task.get('schedule'), with_next=True)}",
        f"async        {'yes' if task.get('is_async') else 'no'}",
        f"payload      {fields_text(task.get('payload_schema'))}",
        "",
        "payload schema:",
        _indented(task.get("payload_schema")),
        "result schema:",
        _indented(task.get("result_schema")),
    ]
    example = task.get("payload_example")
    if example is not None:
        text = json.dumps(example, ensure_ascii=False)
        lines += [
            "example:",
            f"  durable trigger {shlex.quote(task_id)} --payload {shlex.quote(text)}",
        ]
    return "\n".join(lines)


def retry_text(retry: Any, *, with_exceptions: bool) -> str:
    """`5 tries 1s..1m ×2`: tries, first and longest delay, factor (`, never ValueError`
    with the exception types that are never retried)."""
    if not isinstance(retry, dict):
        return "-"
    tries = int(retry.get("max_attempts", 1))
    if tries <= 1:
        text = "1 try"
    else:
        low = duration_text(retry.get("min_delay_seconds"))
        high = duration_text(retry.get("max_delay_seconds"))
        text = f"{tries} tries {low}..{high} ×{float(retry.get('factor', 1)):g}"
    never = retry.get("non_retryable") or []
    return f"{text}, never {', '.join(never)}" if never and with_exceptions else text


def duration_text(seconds: Any) -> str:
    """`90s`, `30m`, `2h`, `1d12h`; `-` for none."""
    if not isinstance(seconds, int | float):
        return "-"
    if seconds < 60:
        return f"{seconds:g}s"
    parts = []
    rest = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def schedule_text(schedule: Any, *, with_next: bool) -> str:
    """`0 9 * * * UTC` (and its next instant)."""
    if not isinstance(schedule, dict):
        return "-"
    text = f"{schedule.get('cron', '')} {schedule.get('timezone', 'UTC')}"
    if with_next and schedule.get("next_at"):
        text += f" (next {str(schedule['next_at'])[:19].replace('T', ' ')} UTC)"
    return text


def fields_text(schema: Any) -> str:
    """A payload schema in a few words: an object's fields (`name?` when optional), else
    its type; `any JSON` for `{}`."""
    if not isinstance(schema, dict) or not schema:
        return "any JSON"
    if isinstance(schema.get("properties"), dict):
        required = set(schema.get("required", []))
        names = [name if name in required else f"{name}?" for name in schema["properties"]]
        return ", ".join(names) if names else "{}"
    kind = schema.get("type")
    if isinstance(kind, str):
        return "null" if kind == "null" else kind
    return str(schema.get("title") or "see the schema")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _indented(schema: Any) -> str:
    text = json.dumps(schema if schema is not None else {}, indent=2, ensure_ascii=False)
    return "\n".join("  " + line for line in text.splitlines())


def register(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], remote: argparse.ArgumentParser
) -> None:
    """Add `tasks` (with `remote`'s options)."""
    tasks = verbs.add_parser(
        "tasks", parents=[remote], help="list the registered tasks (or show one in full)"
    )
    tasks.add_argument(
        "task_id", metavar="TASK_ID", nargs="?", help="show this task's schemas and an example"
    )
    tasks.add_argument("--json", action="store_true", help="print the API's JSON")
    tasks.set_defaults(handler=cmd_tasks)
