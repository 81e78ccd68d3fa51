"""Audit entries: what someone did to a run (resume, retry, cancel...), when, and who.

An action is recorded in the run's own log, as a `RUN_ACTION` entry at the next free slot
(op -1: no operation of the task's code, so replay never reads it), so it shows in the
run's history and timeline beside what the run did. Its value is a JSON object: `by`, the
caller (`durable.api.caller` for API requests), then the action's own details.

The slot is found from the run's checkpoint count (which may lag: the log is read from
there), or is the one after `last_seq` when the caller has just read the log's end, and is
taken with the log's conditional put; a slot taken meanwhile (an invocation appending,
another action) moves the entry to the next one. A caller that holds the run passes the
record, so the entry costs no read of it. Record an action while no
invocation holds the run (a finished, held or waiting run), or before waking it: an
invocation that loses its slot to an audit entry abandons what it was doing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from durable.clock import Clock
from durable.errors import ConflictError, RunNotFoundError
from durable.records import Checkpoint, CheckpointKind, RunRecord
from durable.storage.base import RunStore

# Slots taken under an action's feet before it gives up (each loss re-reads the log's tail).
MAX_SLOT_RACES = 20
MAX_CALLER = 512


def record_action(
    store: RunStore,
    clock: Clock,
    run: RunRecord | str,
    action: str,
    by: str,
    details: Mapping[str, object] | None = None,
    *,
    last_seq: int | None = None,
) -> Checkpoint:
    """Append a `RUN_ACTION` entry for `action` by `by` to the run's log; returns it.

    `run` is the run as the caller read it, or its id (then it is read); `last_seq` the
    log's last seq if the caller has just read it (0: empty). Raises `RunNotFoundError` for
    an unknown run, `ConflictError` if the log kept moving under it `MAX_SLOT_RACES` times
    in a row.
    """
    if isinstance(run, str):
        found = store.get_run(run)
        if found is None:
            raise RunNotFoundError(run)
        run = found
    run_id = run.run_id
    value = json.dumps({"by": by[:MAX_CALLER], **(details or {})}, sort_keys=True)
    known = max(run.checkpoints - 1, 0)
    last = last_seq
    for _ in range(MAX_SLOT_RACES):
        if last is None:
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
            known, last = last + 1, None
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
