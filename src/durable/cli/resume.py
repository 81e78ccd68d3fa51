"""`durable resume RUN_ID`: let a held run go on (`POST /runs/{run_id}/resume`), and the note
`durable show` prints under a held run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from durable.cli.output import print_json
from durable.cli.transport import call, make_transport, path_segment

_WHY = {
    "nondeterminism": "its code diverged from its log",
    "unknown-task": "its task is not in the deployed code",
    "code-version": "it is pinned to a code version nobody runs",
}


def cmd_resume(args: argparse.Namespace) -> int:
    path = f"/runs/{path_segment(args.run_id)}/resume"
    print_json(call(make_transport(args), "POST", path))
    return 0


def hold_note(run: dict[str, Any]) -> str | None:
    """What `durable show` prints under a held run: why, since when, and how to resume it."""
    held = run.get("held")
    if not isinstance(held, dict):
        return None
    error = held.get("error") or {}
    lines = [
        f"HELD since {held.get('since')}: {_WHY.get(held.get('reason', ''), held.get('reason'))}",
    ]
    if error.get("message"):
        lines.append(f"  {error.get('type')}: {error['message']}")
    lines.append(
        "  it goes on by itself once other code is deployed, or now with: "
        f"durable resume {run.get('run_id')}"
    )
    return "\n".join(lines)


def print_hold_note(run: dict[str, Any], to_stderr: bool) -> None:
    """Print `hold_note` (on stderr beside JSON on stdout), if the run is held."""
    note = hold_note(run)
    if note is not None:
        print(note, file=sys.stderr if to_stderr else sys.stdout)


def register(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], remote: argparse.ArgumentParser
) -> None:
    """Add `resume` (with `remote`'s options)."""
    resume = verbs.add_parser(
        "resume",
        parents=[remote],
        help="let a held run go on (a code fix deployed, or re-pinned to this code version)",
    )
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.set_defaults(handler=cmd_resume)
