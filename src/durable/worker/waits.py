"""Whether what a waiting run waits for has happened: read from the store, never assumed.

The worker asks twice: after an invocation has persisted a wait (its sender's wake-up may
have been dropped as BUSY meanwhile), and before it drops a message as stale or early for
a WAITING run (the run's own wake-up may have been lost).
"""

from __future__ import annotations

from durable.records import InboxEvent
from durable.storage.base import RunStore


def wait_satisfied(
    store: RunStore, run_id: str, waiting_for: str, seen: list[InboxEvent] | None
) -> bool:
    """Whether what `waiting_for` names has happened.

    Waits are told apart by prefix: `batch:ATTEMPT:POSITION`, `child:RUN_ID`,
    `callback:TOKEN_HASH`, `code-version:V` and `fix:...` (held: nothing to look at, an
    event can never wake a held run into a replay bound to diverge); an event name never
    holds a colon (see `durable.names`). For an inbox wait, `seen` is the inbox the attempt
    read: an event that arrived since counts; without it, any event of that name does
    (one consumed by a run that died before deleting it too: the run then runs, finds
    it consumed and waits again, and deletes it).
    """
    kind, _, detail = waiting_for.partition(":")
    if not detail:
        name = waiting_for  # an event
    elif kind == "batch":
        attempt, _, position = detail.partition(":")
        batch = store.get_batch(run_id, int(attempt), int(position))
        return batch is None or batch.decided
    elif kind == "child":
        child = store.get_run(detail)
        return child is None or child.status.is_terminal
    elif kind == "callback":
        name = waiting_for
    else:
        return False
    # By id, not by count: the inbox loses the events the invocation consumed.
    known = {event.inbox_id for event in seen or []}
    return any(
        event.name == name and event.inbox_id not in known for event in store.list_inbox(run_id)
    )
