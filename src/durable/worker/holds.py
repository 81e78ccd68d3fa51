"""Runs held for a code fix instead of failed: a replay that diverged, a task not deployed.

    replay diverges ─► Held outcome ─► WAITING, waiting_for "fix:nondeterminism" (or
    "fix:unknown-task"), error = what diverged, held_code = this code's fingerprint,
    wake_at = now + hold_recheck, lease given back; no log entry, no attempt spent

Rules:
- A held run's wake-ups keep coming (the sweeper meets its `wake_at`). A worker whose code
  is the one that held it (its fingerprint of the task, `TaskDefinition.fingerprint`,
  equals `held_code`; for an unknown task: the task is still unknown) does not replay it:
  when the run is due it moves `wake_at` on by the recheck, one conditional update, and
  answers `Handled.HELD`; any other message for it (an event, a child's end) is dropped
  without a write. The recheck costs one read and one write, never a replay.
- A worker with other code (a deploy) replays it: the run goes on (the hold, its error and
  `held_code` are cleared by the invocation's persist) or is held again with the new
  fingerprint. `resume` (`durable.services.resume`) clears `held_code`: the next worker
  replays whatever its code.
- An event or callback sent to a held run waits in its inbox: it is consumed after the fix.
  A held child keeps its parent waiting (it has not ended); a cancel ends a held run as any
  waiting run.

Runs pinned to another code version are held by `durable.worker.versions`, which moves
their `wake_at` with `recheck_hold` too.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime, timedelta
from typing import Any

from durable.clock import Clock
from durable.engine.outcomes import Held
from durable.errors import ConflictError
from durable.records import (
    HOLD_UNKNOWN_TASK,
    RunRecord,
    RunStatus,
    is_fix_hold,
)
from durable.storage.base import RunStore
from durable.task import TaskRegistry


def code_fingerprint(registry: TaskRegistry, task_id: str, code_version: str) -> str:
    """The fingerprint of the code that runs `task_id` here (of its absence, if unknown)."""
    if task_id in registry:
        return registry.get(task_id).fingerprint(code_version)
    text = f"{code_version}\0no task {task_id}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def still_held(run: RunRecord, registry: TaskRegistry, code_version: str) -> bool:
    """Whether `run`, held for a code fix, would only be held again by this code: the same
    code held it, or its task is still not here. False for a run that is not so held."""
    if run.status is not RunStatus.WAITING or not is_fix_hold(run.waiting_for):
        return False
    if run.held_code is None:
        return False  # resumed: the next worker replays it, whatever its code
    if run.task_id not in registry:
        return True
    if run.waiting_for == HOLD_UNKNOWN_TASK:
        return False  # the task is back
    return run.held_code == code_fingerprint(registry, run.task_id, code_version)


def recheck_hold(store: RunStore, clock: Clock, run: RunRecord, recheck: timedelta) -> bool:
    """Move a held run's `wake_at` on by `recheck` when it is due (one conditional update,
    on the hold still being the same); a run not yet due is left as it is. Returns whether
    it wrote."""
    now = clock.now()
    if run.wake_at is not None and run.wake_at > now:
        return False
    with contextlib.suppress(ConflictError):  # resumed, cancelled or replayed meanwhile
        store.update_run(
            run.run_id,
            {"wake_at": now + recheck},
            expect_status=[run.status],
            expect_waiting_for=run.waiting_for,
        )
        return True
    return False


def hold_changes(
    outcome: Held, held_code: str, now: datetime, recheck: timedelta
) -> dict[str, Any]:
    """What the invocation that held a run writes, with its lease's release."""
    return {
        "status": RunStatus.WAITING,
        "error": outcome.error,
        "waiting_for": outcome.reason,
        "held_code": held_code,
        "wake_at": now + recheck,
        "wake_token": None,
    }
