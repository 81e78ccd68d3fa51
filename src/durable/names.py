"""Names: what users may call events and waits, and how the engine names its own waits.

A run's `waiting_for` says what it waits for, told apart by prefix:

    approval                an event (a user's name: never holds a colon)
    callback:<sha256>       a callback, by the hash of its token (never the token itself)
    child:<run_id>          a child run started by `ctx.invoke`
    batch:<attempt>:<pos>   a fan-out started by `ctx.map` / `ctx.parallel`
    code-version:<v>        held until code version <v> runs it

Event names are validated where they enter (`Client.send_event`, `ctx.wait_for_event`), so
no user name can reach the engine's own namespaces.
"""

from __future__ import annotations

import re

from durable.errors import InvalidNameError
from durable.storage.base import token_key

# 1 to 128 printable characters, no colon, not blank at either end.
EVENT_NAME = re.compile(r"[^:\s\x00-\x1f\x7f]([^:\x00-\x1f\x7f]{0,126}[^:\s\x00-\x1f\x7f])?")


def event_name(name: object) -> str:
    """`name` if it is a valid event name; `InvalidNameError` otherwise."""
    if not isinstance(name, str) or EVENT_NAME.fullmatch(name) is None:
        shown = repr(name)[:60]
        raise InvalidNameError(
            f"invalid event name {shown}: use 1 to 128 printable characters, no colon "
            "(reserved for the engine's own waits) and no space at either end"
        )
    return name


def callback_wait(token: str) -> str:
    """What a run waiting for the callback `token` waits for, and its inbox event's name."""
    return f"callback:{token_key(token)}"


def child_wait(run_id: str) -> str:
    return f"child:{run_id}"


def batch_wait(task_attempt: int, position: int) -> str:
    return f"batch:{task_attempt}:{position}"
