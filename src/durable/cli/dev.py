"""`durable dev`: the whole stack on this machine (moto, the API, workers), reachable from
`sam local`'s containers with `--host`."""

from __future__ import annotations

import argparse

from durable.cli.transport import CliError


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


def _host_address(value: str) -> str:
    """`--host`: an IPv4 address of this machine, 0.0.0.0, or a host name (exit 2 if not)."""
    from durable.local.samlocal import check_host

    try:
        return check_host(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dev`."""
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
