"""`durable invoke`: run one Lambda handler on an event file, as `sam local invoke` does."""

from __future__ import annotations

import argparse
import json
import os

from durable.cli.transport import CliError


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


def register(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], remote: argparse.ArgumentParser
) -> None:
    """Add `invoke` (with `remote`'s options: the stack whose environment the handler gets)."""
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
