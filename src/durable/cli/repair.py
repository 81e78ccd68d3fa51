"""The repair commands, through the API (`durable.api.repair`): `retry`, `rerun` and `fork`.

    durable retry RUN_ID                              the run again, from its failure point
    durable rerun RUN_ID [--idempotency-key KEY]      a new run with the same payload
    durable fork RUN_ID --from-step N|NAME [--idempotency-key KEY]
                                                      a new run copying the first N entries

Each prints the run the API answers (the retried run, or the new one) as JSON, as `cancel`
does; a refusal (not ended, completed, a child whose parent waits, a cut inside an
operation) is printed with its code and ends with exit code 2. The API records the caller
the CLI declares (`X-Durable-Caller: cli <user>@<host>`) in the run's history.
"""

from __future__ import annotations

import argparse

from durable.cli.output import print_json
from durable.cli.transport import call, make_transport, path_segment


def cmd_retry(args: argparse.Namespace) -> int:
    print_json(call(make_transport(args), "POST", f"/runs/{path_segment(args.run_id)}/retry"))
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    body = {"idempotency_key": args.idempotency_key} if args.idempotency_key else None
    path = f"/runs/{path_segment(args.run_id)}/rerun"
    print_json(call(make_transport(args), "POST", path, body))
    return 0


def cmd_fork(args: argparse.Namespace) -> int:
    step: int | str = int(args.from_step) if args.from_step.isdigit() else args.from_step
    body: dict[str, object] = {"from_step": step}
    if args.idempotency_key:
        body["idempotency_key"] = args.idempotency_key
    print_json(call(make_transport(args), "POST", f"/runs/{path_segment(args.run_id)}/fork", body))
    return 0


def register(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], remote: argparse.ArgumentParser
) -> None:
    """Add `retry`, `rerun` and `fork` (each with `remote`'s options)."""
    retry = verbs.add_parser(
        "retry", parents=[remote], help="retry a failed, timed-out or cancelled run in place"
    )
    retry.add_argument("run_id", metavar="RUN_ID")
    retry.set_defaults(handler=cmd_retry)

    rerun = verbs.add_parser("rerun", parents=[remote], help="a new run with a run's payload")
    rerun.add_argument("run_id", metavar="RUN_ID")
    rerun.add_argument("--idempotency-key", help="the same key gives back the same new run")
    rerun.set_defaults(handler=cmd_rerun)

    fork = verbs.add_parser(
        "fork", parents=[remote], help="a new run copying a run's first N log entries"
    )
    fork.add_argument("run_id", metavar="RUN_ID")
    fork.add_argument(
        "--from-step",
        required=True,
        metavar="N|NAME",
        help="log entries to copy, or a step's name: everything before its first entry",
    )
    fork.add_argument("--idempotency-key", help="the same key gives back the same fork")
    fork.set_defaults(handler=cmd_fork)
