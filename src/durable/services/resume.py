"""Resume a held run on demand (`Client.resume`, `POST /runs/{run_id}/resume`, `durable resume`).

    held for a code fix      ─► audit "resume" {held_for, error} ─► held_code cleared, wake_at
    (fix:nondeterminism,         now (re-pinned to the caller's code version), conditional on
     fix:unknown-task)           the hold still being there ─► a wake-up: the next worker
                                 replays it with its code: it goes on, or is held again
    held for a code version  ─► audit "resume" {from_code_version, to_code_version} ─► re-pinned
    (code-version:V)             to the caller's code version, hold cleared, wake_at now ─►
                                 a wake-up: today's code replays it (held if it diverges)
    anything else            ─► RunNotHeldError (409 run_not_held); unknown run: 404

Safe to repeat: a run held for a code fix that was resumed and not yet replayed is not
resumed again (no second audit entry): its wake-up is sent again and it is returned as it
is. A code-version hold is cleared by its resume, so a second one answers run_not_held.

Crash-safe: the audit entry is written first, then the run (one conditional update), then
the wake-up. A crash before the update leaves the run held (resume again: a second audit
entry says so); after it, the run is due (`wake_at` now) and the sweeper wakes it.
"""

from __future__ import annotations

from typing import Any

from durable.clock import Clock
from durable.errors import ConflictError, RunNotFoundError, RunNotHeldError
from durable.queues.base import WakeQueue
from durable.records import (
    HOLD_CODE_VERSION,
    RunRecord,
    RunStatus,
    WakeReason,
    WakeUp,
    hold_reason,
    is_fix_hold,
)
from durable.services.audit import record_action
from durable.storage.base import RunStore

# How much of the hold's error the audit entry keeps.
SHORT_ERROR = 300


def resume_run(
    store: RunStore,
    queue: WakeQueue,
    clock: Clock,
    run_id: str,
    by: str,
    *,
    code_version: str,
) -> RunRecord:
    """Let a held run go on (see the module docstring); returns the run as stored.

    `by` is the caller (recorded in the audit entry), `code_version` the caller's own code
    version: the one the run is pinned to from now on. Raises `RunNotFoundError` and
    `RunNotHeldError`.
    """
    run = store.get_run(run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    held_for = run.waiting_for
    if run.status.is_terminal or hold_reason(held_for) is None:
        raise RunNotHeldError(run_id, doing(run))
    assert held_for is not None
    now = clock.now()
    details: dict[str, Any]
    if is_fix_hold(held_for):
        if run.held_code is None and run.code_version == code_version:
            # Resumed already, not replayed yet: wake it again, record nothing more.
            queue.send(WakeUp(run_id, WakeReason.CONTINUE))
            return run
        message = run.error.message if run.error is not None else ""
        details = {"held_for": held_for, "error": message[:SHORT_ERROR]}
        changes: dict[str, Any] = {"held_code": None, "wake_at": now}
    else:
        details = {"from_code_version": held_for.removeprefix(HOLD_CODE_VERSION)}
        changes = {"waiting_for": None, "error": None, "held_code": None, "wake_at": now}
    if run.code_version != code_version:
        details["to_code_version"] = code_version
        changes["code_version"] = code_version
    record_action(store, clock, run, "resume", by, details)
    try:
        resumed = store.update_run(
            run_id,
            {**changes, "wake_token": None},
            expect_status=[run.status],
            expect_waiting_for=held_for,
        )
    except ConflictError:
        current = store.get_run(run_id)
        if current is None:
            raise RunNotFoundError(run_id) from None
        raise RunNotHeldError(run_id, doing(current)) from None
    # CONTINUE, not SWEEP: a recheck racing this update may have moved wake_at on, and a
    # SWEEP message for a run not yet due is dropped.
    queue.send(WakeUp(run_id, WakeReason.CONTINUE))
    return resumed


def doing(run: RunRecord) -> str:
    """What a run is doing, in words (for `RunNotHeldError`)."""
    if run.status.is_terminal:
        return f"{run.status} (it has ended)"
    if run.status is RunStatus.WAITING and run.waiting_for is not None:
        return f"WAITING for {run.waiting_for!r}"
    return str(run.status)
