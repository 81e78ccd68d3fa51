"""`durable bulk`: act on every run a filter matches, as a background job, and follow it.

    durable bulk cancel|retry|resume [--task T] [--status S] [--since ISO] [--until ISO]
                                     [--tag X] [--all] [--wait] [--json]
    durable bulk show JOB_ID [--json]

The job runs on the workers (`POST /bulk`); `--wait` polls `GET /bulk/{id}` and prints a
progress line as it goes (on stderr when it is a terminal), then the job. With no filter the
command refuses, unless `--all` says every run is meant. Exit codes: 0 the job was started
(or, with `--wait` and `show`, completed without errors); 1 it failed, or some runs failed;
2 bad input (an unknown action, a bad filter, an unknown job) or no server.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from durable.cli.output import print_json
from durable.cli.runs import _status
from durable.cli.transport import CliError, Transport, call, make_transport, path_segment

ACTIONS = ("cancel", "retry", "resume")


def progress_line(job: dict[str, Any]) -> str:
    """One line of a job's progress."""
    line = (
        f"{job.get('job_id')} {job.get('action')} {job.get('state')}: "
        f"{job.get('matched', 0)} matched, {job.get('acted', 0)} acted, "
        f"{job.get('skipped', 0)} skipped, {job.get('errors', 0)} errors"
    )
    if job.get("reason"):
        line += f" ({job['reason']})"
    return line


def _outcome(job: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print_json(job)
    else:
        print(progress_line(job))
        for message in job.get("error_messages") or []:
            print(f"  {message}")
    failed = job.get("state") == "failed" or job.get("errors", 0) > 0
    return 1 if job.get("done") and failed else 0


def wait_for_job(transport: Transport, job_id: str, timeout: float) -> dict[str, Any]:
    """Poll the job until it ends, showing its progress; CliError (exit 1) after `timeout`."""
    limit = time.monotonic() + timeout
    live = sys.stderr.isatty()
    delay = 0.2
    while True:
        job: dict[str, Any] = call(transport, "GET", f"/bulk/{path_segment(job_id)}")
        if live:
            print(f"\r{progress_line(job)}", end="", file=sys.stderr, flush=True)
        if job.get("done"):
            if live:
                print(file=sys.stderr)
            return job
        if time.monotonic() >= limit:
            raise CliError(
                f"bulk job {job_id} is still running after {timeout:g}s "
                f"({progress_line(job)}); follow it with `durable bulk show {job_id}`",
                exit_code=1,
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def cmd_bulk_action(args: argparse.Namespace) -> int:
    conditions = {
        "task_id": args.task,
        "status": args.status,
        "created_after": args.since,
        "created_before": args.until,
        "tag": args.tag,
    }
    bulk_filter: dict[str, Any] = {k: v for k, v in conditions.items() if v is not None}
    if not bulk_filter and not args.all:
        raise CliError(
            "no filter: this would act on every run; give --task, --status, --since, "
            "--until or --tag, or --all to mean every run"
        )
    if args.all:
        bulk_filter["all"] = True
    transport = make_transport(args)
    job = call(transport, "POST", "/bulk", {"action": args.action, "filter": bulk_filter})
    if not args.wait:
        return _outcome(job, args.json)
    return _outcome(wait_for_job(transport, job["job_id"], args.timeout), args.json)


def cmd_bulk_show(args: argparse.Namespace) -> int:
    job = call(make_transport(args), "GET", f"/bulk/{path_segment(args.job_id)}")
    return _outcome(job, args.json)


def register(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], remote: argparse.ArgumentParser
) -> None:
    """Add `bulk` (its actions, and `show`), each with `remote`'s options."""
    bulk = verbs.add_parser("bulk", help="cancel, retry or resume every run a filter matches")
    actions = bulk.add_subparsers(dest="bulk_command", metavar="ACTION", required=True)
    for action in ACTIONS:
        verb = actions.add_parser(
            action, parents=[remote], help=f"{action} every matching run (a background job)"
        )
        verb.set_defaults(action=action, handler=cmd_bulk_action)
        verb.add_argument("--task", help="only runs of this task id")
        verb.add_argument("--status", type=_status, help="only runs in this status")
        verb.add_argument("--since", metavar="INSTANT", help="created at or after (ISO-8601)")
        verb.add_argument("--until", metavar="INSTANT", help="created before (ISO-8601)")
        verb.add_argument("--tag", help="only runs carrying this tag")
        verb.add_argument("--all", action="store_true", help="every run (when no filter)")
        verb.add_argument("--wait", action="store_true", help="follow the job until it ends")
        verb.add_argument(
            "--timeout", type=float, default=3600.0, metavar="SECONDS", help="--wait at most"
        )
        verb.add_argument("--json", action="store_true", help="print the API's JSON")
    show = actions.add_parser("show", parents=[remote], help="a bulk job and its progress")
    show.add_argument("job_id", metavar="JOB_ID")
    show.add_argument("--json", action="store_true", help="print the API's JSON")
    show.set_defaults(handler=cmd_bulk_show)
