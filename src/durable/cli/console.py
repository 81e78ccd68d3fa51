"""The `durable` command.

    durable dev [--port 8000] [--tasks MODULE,...]      the whole stack on this machine
    durable trigger TASK_ID --payload JSON [--wait]      start a run (and wait for its end)
    durable runs [--task ID] [--status S] [--limit N]    list runs, newest first
    durable show RUN_ID [--history] [--table]            a run (and its checkpoint log)
    durable send-event RUN_ID NAME --data JSON           deliver an event to a waiting run
    durable cancel RUN_ID                                cancel a run
    durable replay RUN_ID | --open | --history FILE      replay recorded histories against
                                                         today's code (exit 1: non-determinism)
    durable migrate [--table NAME] [--shards N]          bring a table made by an older
                                                         version to the current layout

The client verbs speak the HTTP API: to a running `durable dev` by default (`--url`,
`DURABLE_URL`, else http://127.0.0.1:8000), or, with `--aws` or when `AWS_REGION` and
`DURABLE_TABLE_NAME` are set (and no URL is given), to AWS directly: the same API code then
runs in this process on the DynamoDB/SQS/S3 adapters, so answers and errors are identical.

Exit codes: 0 done; 1 the run ended without completing (`trigger --wait`), a replay found
a divergence or a task missing from today's code (`replay`), or the server failed; 2 bad
input (invalid JSON, unknown task or run, refused payload, unreadable file) or no server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import quote, urlencode

DEFAULT_URL = "http://127.0.0.1:8000"
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
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})


class CliError(Exception):
    """A failure to report on stderr, with the exit code to end with."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- transports ------------------------------------------------------------------------


class Transport(Protocol):
    """Sends one API request; returns the status and the decoded JSON body."""

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]: ...


class HttpTransport:
    """The HTTP API of a running server (`durable dev` or API Gateway), over urllib."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(
                f"cannot reach the durable API at {self.base_url} ({reason}).\n"
                "Is `durable dev` running? Start it with `make dev` (or `durable dev`), "
                "or point --url / DURABLE_URL at your API; use --aws to talk to AWS directly."
            ) from None


class InProcessTransport:
    """The API's own code in this process, on the AWS adapters that the environment names."""

    def __init__(self) -> None:
        from durable.bootstrap import get_runtime
        from durable.errors import DurableError

        try:
            self._client = get_runtime().client
        except (DurableError, ImportError) as exc:
            raise CliError(f"cannot set up the AWS runtime: {exc}") from None

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        from durable.api import handle
        from durable.local.gateway import build_event

        target = path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode("utf-8") if body is not None else b""
        event = build_event(
            method=method,
            target=target,
            headers=[("content-type", "application/json")],
            body=data,
        )
        response = handle(event, None, self._client)
        return int(response["statusCode"]), _decode(str(response.get("body") or "").encode())


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def make_transport(args: argparse.Namespace) -> Transport:
    """HTTP unless `--aws` is given, or the AWS environment is set and no URL is."""
    url = args.url or os.environ.get("DURABLE_URL")
    aws_environment = bool(os.environ.get("AWS_REGION") and os.environ.get("DURABLE_TABLE_NAME"))
    if args.aws or (url is None and aws_environment):
        return InProcessTransport()
    return HttpTransport(url or DEFAULT_URL)


def call(
    transport: Transport,
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> Any:
    """The body of a 2xx answer; CliError with the API's message otherwise."""
    status, payload = transport.request(method, path, body, query)
    if 200 <= status < 300:
        return payload
    raise CliError(_error_message(status, payload), exit_code=2 if status < 500 else 1)


def _error_message(status: int, payload: Any) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return f"the API answered {status}: {payload}"
    message = str(error.get("message", "request refused"))
    lines = [f"{message} ({status} {error.get('code', '')})"]
    details = error.get("details")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, dict) and "msg" in detail and detail["msg"] not in message:
                where = ".".join(str(part) for part in detail.get("loc", ()))
                lines.append(f"  {where}: {detail['msg']}" if where else f"  {detail['msg']}")
    return "\n".join(lines)


def _segment(value: str) -> str:
    return quote(value, safe="")


# -- input -----------------------------------------------------------------------------


def parse_json(text: str, option: str) -> Any:
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


# -- output ----------------------------------------------------------------------------


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def format_runs(runs: list[dict[str, Any]]) -> str:
    """A table of runs, one line each."""
    headers = ("RUN ID", "TASK", "STATUS", "ATTEMPTS", "CREATED", "FINISHED")
    rows = [
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
    return _table(headers, rows)


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
    return _table(headers, rows)


def _is_step(entry: dict[str, Any]) -> bool:
    return str(entry.get("kind", "")).startswith("step_")


def _table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    )


def _when(value: Any) -> str:
    if not value:
        return "-"
    return str(value)[:19].replace("T", " ")


# -- commands --------------------------------------------------------------------------


def cmd_dev(args: argparse.Namespace) -> int:
    from durable.local.stack import DevError, DevOptions, run_dev

    options = DevOptions(
        port=args.port,
        host=args.host,
        tasks=args.tasks,
        moto_port=args.moto_port,
        concurrency=args.concurrency,
        invocation_timeout=args.invocation_timeout,
        access_log=not args.quiet,
        state_dir=args.state_dir,
        ephemeral=args.ephemeral,
        log_format=args.log_format,
        verbose=args.verbose,
    )
    try:
        return run_dev(options)
    except DevError as exc:
        raise CliError(str(exc)) from None


def cmd_trigger(args: argparse.Namespace) -> int:
    payload = parse_json(args.payload, "--payload")
    if args.delay is not None and args.delay < 0:
        raise CliError("--delay must not be negative")
    body: dict[str, Any] = {"payload": payload}
    if args.idempotency_key is not None:
        body["idempotency_key"] = args.idempotency_key
    if args.delay:
        body["delay_seconds"] = args.delay
    transport = make_transport(args)
    started = call(transport, "POST", f"/tasks/{_segment(args.task_id)}/runs", body)
    if not args.wait:
        print_json(started)
        return 0
    run = wait_for_end(transport, started["run_id"], args.timeout)
    print_json(run)
    return 0 if run.get("status") == "COMPLETED" else 1


def wait_for_end(transport: Transport, run_id: str, timeout: float) -> dict[str, Any]:
    """Poll the run until it ends; CliError (exit 1) when `timeout` seconds pass first."""
    limit = time.monotonic() + timeout
    delay = 0.1
    while True:
        run: dict[str, Any] = call(transport, "GET", f"/runs/{_segment(run_id)}")
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
    query = {"limit": str(args.limit)}
    if args.task:
        query["task_id"] = args.task
    if args.status:
        query["status"] = args.status
    if args.cursor:
        query["cursor"] = args.cursor
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
    run = call(transport, "GET", f"/runs/{_segment(args.run_id)}")
    if args.history:
        log = call(transport, "GET", f"/runs/{_segment(args.run_id)}/history")
        run["history"] = log.get("history", log) if isinstance(log, dict) else log
    if not args.table:
        print_json(run)
        return 0
    print(format_runs([run]))
    if args.history:
        print()
        print(format_history(run["history"]) if run["history"] else "no checkpoints yet")
    return 0


def cmd_send_event(args: argparse.Namespace) -> int:
    data = parse_json(args.data, "--data")
    path = f"/runs/{_segment(args.run_id)}/events/{_segment(args.name)}"
    body: dict[str, Any] = {"data": data}
    if args.event_id:
        body["event_id"] = args.event_id
    print_json(call(make_transport(args), "POST", path, body))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    print_json(call(make_transport(args), "POST", f"/runs/{_segment(args.run_id)}/cancel"))
    return 0


# -- parser ----------------------------------------------------------------------------


def cmd_invoke(args: argparse.Namespace) -> int:
    from durable.local.invoker import InvokeError, invoke

    try:
        invocation = invoke(
            args.handler_name,
            args.event,
            url=args.url or os.environ.get("DURABLE_URL"),
            use_aws=args.aws,
            env_vars_path=args.env_vars,
            timeout=args.timeout,
        )
    except InvokeError as exc:
        raise CliError(str(exc)) from None
    print(json.dumps(invocation.output, indent=2, default=str))
    return 1 if invocation.failed else 0


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
        path = f"/runs/{_segment(str(run['run_id']))}/history"
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
                for run in page.get("runs", []):
                    if run["run_id"] not in seen:
                        seen.add(run["run_id"])
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
            run = call(transport, "GET", f"/runs/{_segment(args.run_id)}")
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
            "\ntoday's code would stop these runs with a NonDeterminismError. Keep the old "
            'path for them with `if ctx.patched("change-id"): <new> else: <old>`, '
            "or deploy once they have ended."
        )
    return 0 if counts[ReplayStatus.OK] == total else 1


def _status(value: str) -> str:
    upper = value.upper()
    if upper not in STATUSES:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(STATUSES)}")
    return upper


def cmd_migrate(args: argparse.Namespace) -> int:
    """Migrate the table named by `--table` or the DURABLE_* environment (AWS or moto)."""
    from durable.aws import endpoint_url, region_name
    from durable.settings import Settings
    from durable.storage.migration import MigrationError, migrate_table

    settings = Settings()
    table = args.table or settings.table_name
    try:
        report = migrate_table(
            table,
            region_name(settings),
            endpoint_url(settings, "dynamodb"),
            shards=args.shards,
            progress=lambda line: print(line, file=sys.stderr),
        )
    except MigrationError as exc:
        raise CliError(str(exc), exit_code=1) from None
    print(
        json.dumps(
            {
                "table": table,
                "index_shards": report.shards,
                "created_indexes": report.created_indexes,
                "config_written": report.config_written,
                "runs_backfilled": report.runs_backfilled,
                "runs_current": report.runs_current,
                "deleted_indexes": report.deleted_indexes,
            },
            indent=2,
        )
    )
    return 0


def _host_address(value: str) -> str:
    """`--host`: an IPv4 address of this machine, 0.0.0.0, or a host name (exit 2 if not)."""
    from durable.local.samlocal import check_host

    try:
        return check_host(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="durable", description="Durable execution for AWS Lambda: local stack and client."
    )
    verbs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument(
        "--url", help=f"the API's base URL (default: $DURABLE_URL or {DEFAULT_URL})"
    )
    remote.add_argument(
        "--aws",
        action="store_true",
        help="talk to AWS directly (DynamoDB/SQS/S3 from the usual AWS and DURABLE_* env)",
    )

    dev = verbs.add_parser("dev", help="run the whole stack on this machine (moto, API, worker)")
    dev.add_argument("--port", type=int, default=8000, help="port of the HTTP API (8000)")
    dev.add_argument(
        "--host",
        type=_host_address,
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address the API and moto listen on (127.0.0.1); for `sam local`, Docker's "
        "bridge (172.17.0.1) or 0.0.0.0, so that containers reach them",
    )
    dev.add_argument(
        "--tasks", help="comma-separated task modules to import (default: the example tasks)"
    )
    dev.add_argument("--moto-port", type=int, default=0, help="port of moto (any free one)")
    dev.add_argument(
        "--concurrency", type=int, default=4, help="worker processes, like Lambda concurrency (4)"
    )
    dev.add_argument(
        "--invocation-timeout",
        type=float,
        default=8.0,
        metavar="SECONDS",
        help="kill an invocation after this long, like a Lambda timeout (8)",
    )
    dev.add_argument("--quiet", action="store_true", help="no log line per API write or error")
    dev.add_argument(
        "--state-dir",
        default=".durable",
        metavar="DIR",
        help="where the stack keeps its state across restarts (.durable)",
    )
    dev.add_argument(
        "--ephemeral", action="store_true", help="keep nothing: state is gone when the stack stops"
    )
    dev.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="the console: one readable line per invocation and log record (text), or one "
        "JSON object per line with every key, for piping into tools (json)",
    )
    dev.add_argument(
        "--verbose",
        action="store_true",
        help="text console: whole tracebacks, and where each record was logged",
    )
    dev.set_defaults(handler=cmd_dev)

    trigger = verbs.add_parser("trigger", parents=[remote], help="start a run of a task")
    trigger.add_argument("task_id", metavar="TASK_ID")
    trigger.add_argument(
        "--payload", default="null", help="JSON payload, @file.json, or - for stdin (null)"
    )
    trigger.add_argument("--idempotency-key", help="the same key gives the same run")
    trigger.add_argument("--delay", type=int, metavar="SECONDS", help="start this much later")
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

    invoke = verbs.add_parser(
        "invoke",
        parents=[remote],
        help="run a Lambda handler on an event file, as `sam local invoke` does",
    )
    invoke.add_argument(
        "handler_name",
        metavar="HANDLER",
        help="api | worker | sweeper, a template function id (WorkerFunction), or module:function",
    )
    invoke.add_argument("--event", "-e", required=True, help="the event file (see events/)")
    invoke.add_argument("--env-vars", "-n", help="JSON file of environment variables (SAM format)")
    invoke.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="the Lambda timeout (30)"
    )
    invoke.set_defaults(handler=cmd_invoke)

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

    migrate = verbs.add_parser(
        "migrate",
        help="bring a table made by an older version of durable to the current layout",
        description=(
            "Creates the current indexes, writes the table's config item, gives every run "
            "its index keys, then deletes the old indexes. Idempotent: run it again to "
            "finish a migration cut short. Uses DURABLE_TABLE_NAME, DURABLE_ENDPOINT_URL "
            "and the usual AWS environment."
        ),
    )
    migrate.add_argument("--table", help="the table (default: $DURABLE_TABLE_NAME)")
    migrate.add_argument(
        "--shards",
        type=_positive_int,
        default=None,
        help="index shards, if the table has no config item yet (default: 64)",
    )
    migrate.set_defaults(handler=cmd_migrate)
    return parser


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `durable` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except CliError as exc:
        print(f"durable {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
