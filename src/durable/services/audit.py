"""Audit entries: what someone did to a run (resume, retry, cancel...), when, and who.

An action is recorded in the run's own log, as a `RUN_ACTION` entry at the next free slot
(op -1: no operation of the task's code, so replay never reads it), so it shows in the
run's history and timeline beside what the run did. Its value is a JSON object: `by`, the
caller (`durable.api.caller` for API requests), then the action's own details.

The slot is found from the run's checkpoint count (which may lag: the log is read from
there) and taken with the log's conditional put; a slot taken meanwhile (an invocation
appending, another action) moves the entry to the next one. Record an action while no
invocation holds the run (a finished, held or waiting run), or before waking it: an
invocation that loses its slot to an audit entry abandons what it was doing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from durable.clock import Clock
from durable.errors import ConflictError, RunNotFoundError
from durable.records import Checkpoint, CheckpointKind
from durable.storage.base import RunStore

# Slots taken under an action's feet before it gives up (each loss re-reads the log's tail).
MAX_SLOT_RACES = 20
MAX_CALLER = 512


def record_action(
    store: RunStore,
    clock: Clock,
    run_id: str,
    action: str,
    by: str,
    details: Mapping[str, object] | None = None,
) -> Checkpoint:
    """Append a `RUN_ACTION` entry for `action` by `by` to the run's log; returns it.

    Raises `RunNotFoundError` for an unknown run, `ConflictError` if the log kept moving
    under it `MAX_SLOT_RACES` times in a row.
    """
    run = store.get_run(run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    value = json.dumps({"by": by[:MAX_CALLER], **(details or {})}, sort_keys=True)
    known = max(run.checkpoints - 1, 0)
    for _ in range(MAX_SLOT_RACES):
        tail = store.load_history(run_id, after_seq=known)
        last = tail[-1].seq if tail else known
        entry = Checkpoint(
            seq=last + 1,
            kind=CheckpointKind.RUN_ACTION,
            op=-1,
            name=action,
            task_attempt=run.attempt,
            at=clock.now(),
            value=value,
        )
        try:
            store.append_checkpoint(run_id, entry)
        except ConflictError:
            known = last + 1
            continue
        return entry
    raise ConflictError(f"run {run_id}: its log kept moving; {action!r} was not recorded")


def action_details(entry: Checkpoint) -> dict[str, object]:
    """The details of a `RUN_ACTION` entry (`by` and the action's own), {} for another."""
    if entry.kind is not CheckpointKind.RUN_ACTION or entry.value is None:
        return {}
    try:
        details = json.loads(entry.value)
    except json.JSONDecodeError:
        return {}
    return details if isinstance(details, dict) else {}
