"""The `durable` console script: its argument parser, put together from each command
group's `register`, and `main`, which runs the chosen command and turns a `CliError` into
its message on stderr and its exit code."""

from __future__ import annotations

import argparse
import sys

from durable.cli import bulk, dev, invoke, logs, migrate, repair, replay, runs, tasks
from durable.cli import queues as queues_cli
from durable.cli import resume as resume_cli
from durable.cli import stats as stats_cli
from durable.cli.transport import CliError, remote_options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="durable", description="Durable execution for AWS Lambda: local stack and client."
    )
    verbs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    remote = remote_options()
    # The order of registration is the order of the commands in `durable --help`.
    dev.register(verbs)
    runs.register(verbs, remote)
    repair.register(verbs, remote)
    logs.register(verbs, remote)
    tasks.register(verbs, remote)
    invoke.register(verbs, remote)
    replay.register(verbs, remote)
    migrate.register(verbs)
    stats_cli.register(verbs, remote)
    resume_cli.register(verbs, remote)
    bulk.register(verbs, remote)
    queues_cli.register(verbs, remote)
    return parser


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
