"""Repairing runs: retry an ended run in place, rerun it, or fork it. Each action is audited
(`durable.services.audit`: a RUN_ACTION entry naming the action and who asked).

**retry** (`retry_run`): a FAILED, TIMED_OUT or CANCELLED run goes on from its failure
point, under the same run id, its log kept. A RUN_ACTION entry named "retry" is a task
attempt boundary (`durable.engine.replay`): completed steps replay, the operation it failed
on runs again with fresh step attempts, the retry policy counts attempts anew and a task
timeout counts from the retry. Compensations its end ran (a saga) are not undone: the
entry lists them (`compensated`). Steps:

    1. the "retry" entry (its details: the new attempt, how the run had ended);
    2. the run: QUEUED, the new attempt, its end cleared, due now; on the status read;
    3. a START wake-up.

A call that dies after 1 leaves the entry trailing a still-ended run: the next call reuses
it, so one retry is one boundary. One that dies after 2 leaves a due run the sweeper starts;
a call made again then finds the run queued behind its retry entry and sends the wake-up.

Refused (`RepairRefusedError`, 409): a run that has not ended (or whose end's follow-ups
are pending), a COMPLETED run, a run past its retention (`expires_at`: being purged), and
a child run (`ctx.invoke`, a batch's) whose parent has not ended: retry the parent once it
has, and its retried attempt calls the child again as a new child run.

**rerun** (`rerun_run`) and **fork** (`fork_run`): a new run of the same task with the same
payload (validated against today's task: a 422 when it no longer fits), on today's code
version, carrying `origin` ("rerun:<id>", "fork:<id>@<N>"). A fork first copies the
original's first N log entries (`durable.services.fork_points` has its rules). Steps:

    1. the new run, QUEUED with `waiting_for` "repair:<action>" and no wake-up, so that
       nothing runs it half-made;
    2. the copied entries (fork), then the action's entry on the new run;
    3. the action's entry on the original, unless an invocation holds it (a RUNNING run);
    4. the new run made due; a START wake-up.

With an `idempotency_key`, a call made again (after an error or a crash) finds the run the
first one created and finishes what it left, so it makes one run; without one, each call
makes a new run (a crash in between leaves a QUEUED run waiting for "repair:<action>":
cancel it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durable.clock import Clock
from durable.engine.replay import COMPENSATION_PREFIX, RETRY_ACTION, HistoryView, is_retry_boundary
from durable.errors import (
    ConflictError,
    IdempotencyConflictError,
    ParentWaitsError,
    RunCompletedError,
    RunExpiringError,
    RunNotEndedError,
    RunNotFoundError,
)
from durable.ids import new_run_id
from durable.queues.base import WakeQueue
from durable.records import Checkpoint, CheckpointKind, RunRecord, RunStatus, WakeReason, WakeUp
from durable.serialization import loads
from durable.services.audit import action_details, record_action
from durable.services.fork_points import cut_of, fork_entries
from durable.services.runs import RunStarter
from durable.services.stats import count_started
from durable.storage.base import RunStore

RERUN_ACTION = "rerun"
FORK_ACTION = "fork"
SETUP_PREFIX = "repair:"  # `waiting_for` of a rerun or fork being set up


def retry_run(store: RunStore, queue: WakeQueue, clock: Clock, run_id: str, by: str) -> RunRecord:
    """Retry an ended run from its failure point (see the module's docstring); the run."""
    run = _require(store, run_id)
    now = clock.now()
    if not run.status.is_terminal:
        if _retry_in_flight(store, run):
            queue.send(WakeUp(run_id, WakeReason.START))  # the wake-up a cut call never sent
            return run
        held = run.waiting_for or ""
        hint = (
            f" (it is held, {held}: resume it instead)"
            if held.startswith(("fix:", "code-version:"))
            else ""
        )
        raise RunNotEndedError(
            run_id,
            f"run {run_id} is {run.status}{hint}: only a FAILED, TIMED_OUT or CANCELLED run "
            "can be retried",
        )
    if run.status is RunStatus.COMPLETED:
        raise RunCompletedError(
            run_id, f"run {run_id} completed: rerun it (a new run) or fork it instead"
        )
    _refuse_expiring(run, clock)
    if run.wake_at is not None:
        raise RunNotEndedError(
            run_id,
            f"run {run_id} ended {run.status} and its end is still being followed up "
            "(its children cancelled, its parent told); try again in a minute",
        )
    _refuse_waited_child(store, run)
    history = store.load_history(run_id)
    boundary = _trailing_retry(history, run)
    if boundary is None:
        view = HistoryView(run_id, history)
        details = _retry_details(run, history, view.attempt)
        boundary = record_action(
            store, clock, run, RETRY_ACTION, by, details, last_seq=view.next_seq - 1
        )
        # Read back what follows the log as read: a retry made at the same moment may have
        # written its boundary too, and the attempt must be the one the log says.
        history = [*history, *store.load_history(run_id, after_seq=view.next_seq - 1)]
    attempt = HistoryView(run_id, history).attempt
    try:
        updated = store.update_run(
            run_id,
            {
                "status": RunStatus.QUEUED,
                "attempt": attempt,
                "result": None,
                "error": None,
                "finished_at": None,
                "expires_at": None,
                "waiting_for": None,
                "cancel_requested": False,
                "crash_streak": 0,
                "wake_at": now,
                "wake_token": None,
                "start_by": None,  # a retried run is started now, whatever its ttl was
                "lease_owner": None,
                "lease_expires": None,
                "checkpoints": history[-1].seq,
                "updated_at": now,
            },
            expect_status=[run.status],
        )
    except ConflictError:
        raise RunNotEndedError(
            run_id, f"run {run_id} changed meanwhile; look at it again"
        ) from None
    queue.send(WakeUp(run_id, WakeReason.START))
    return updated


def rerun_run(
    store: RunStore,
    queue: WakeQueue,
    clock: Clock,
    run_id: str,
    by: str,
    *,
    starter: RunStarter,
    idempotency_key: str | None = None,
) -> RunRecord:
    """A new run of the run's task with its payload (any status); the new run."""
    original = _require(store, run_id)
    _refuse_expiring(original, clock)
    return _new_run(
        _Repair(store, queue, clock, starter, by),
        original,
        RERUN_ACTION,
        f"{RERUN_ACTION}:{run_id}",
        [],
        {},
        idempotency_key,
    )


def fork_run(
    store: RunStore,
    queue: WakeQueue,
    clock: Clock,
    run_id: str,
    by: str,
    from_step: int | str,
    *,
    starter: RunStarter,
    idempotency_key: str | None = None,
) -> RunRecord:
    """A new run that starts with the run's first `from_step` log entries (or those before
    the first of the step so named) and runs the rest on today's code; the new run.
    `InvalidForkPointError` (422) for a cut inside an operation that has not ended."""
    original = _require(store, run_id)
    _refuse_expiring(original, clock)
    history = store.load_history(run_id)
    cut = cut_of(run_id, history, from_step)
    entries = fork_entries(run_id, history, cut)
    return _new_run(
        _Repair(store, queue, clock, starter, by),
        original,
        FORK_ACTION,
        f"{FORK_ACTION}:{run_id}@{cut}",
        entries,
        {"from_step": cut},
        idempotency_key,
    )


class _Repair:
    """The ports and the caller of one rerun or fork."""

    def __init__(
        self, store: RunStore, queue: WakeQueue, clock: Clock, starter: RunStarter, by: str
    ) -> None:
        self.store, self.queue, self.clock, self.starter, self.by = store, queue, clock, starter, by


def _new_run(
    repair: _Repair,
    original: RunRecord,
    action: str,
    origin: str,
    entries: list[Checkpoint],
    details: Mapping[str, Any],
    idempotency_key: str | None,
) -> RunRecord:
    store, clock, starter = repair.store, repair.clock, repair.starter
    definition = starter.registry.get(original.task_id)
    value = definition.validate_payload(starter.codec.decode(original.payload))
    now = clock.now()
    new_id = new_run_id(now)
    setup = SETUP_PREFIX + action
    key = f"{action}:{original.run_id}:{idempotency_key}" if idempotency_key else None
    stored, created = store.create_run(
        RunRecord(
            run_id=new_id,
            task_id=original.task_id,
            status=RunStatus.QUEUED,
            payload=starter.codec.encode(value, f"{new_id}/payload"),
            created_at=now,
            updated_at=now,
            idempotency_key=key,
            task_version=definition.version,
            code_version=starter.code_version,
            waiting_for=setup,
            tags=original.tags,
            metadata=dict(original.metadata),
            origin=origin,
        )
    )
    if not created and stored.origin != origin:
        assert key is not None  # a run id of our own making never exists already
        raise IdempotencyConflictError(original.task_id, key, stored.run_id)
    if created:
        count_started(store, clock, stored)  # best effort: never raises
    if stored.waiting_for == setup:
        _copy_entries(store, stored.run_id, entries)
        _audit_once(repair, stored.run_id, action, {"run_id": original.run_id, **details})
        _audit_once(repair, original.run_id, action, {"run_id": stored.run_id, **details})
        try:
            stored = store.update_run(
                stored.run_id,
                {"waiting_for": None, "wake_at": clock.now(), "updated_at": clock.now()},
                expect_waiting_for=setup,
            )
        except ConflictError:
            stored = _require(store, stored.run_id)  # finished by a call made again meanwhile
    if stored.status is RunStatus.QUEUED and stored.started_at is None:
        repair.queue.send(WakeUp(stored.run_id, WakeReason.START))
    return stored


def _copy_entries(store: RunStore, run_id: str, entries: list[Checkpoint]) -> None:
    """Write the fork's copied entries, those a call cut short did not write."""
    written = {cp.seq for cp in store.load_history(run_id)}
    for entry in entries:
        if entry.seq not in written:
            try:
                store.append_checkpoint(run_id, entry)
            except ConflictError:
                continue  # written by a call made again meanwhile


def _audit_once(repair: _Repair, run_id: str, action: str, details: dict[str, Any]) -> None:
    """Record `action` on `run_id` unless recorded already (a call made again), or unless an
    invocation holds the run (its next checkpoint would lose its slot to the entry)."""
    store, clock = repair.store, repair.clock
    run = store.get_run(run_id)
    if run is None:
        return  # purged meanwhile: nothing to tell
    now = clock.now()
    if run.lease_owner is not None and run.lease_expires is not None and run.lease_expires > now:
        return
    known = max(run.checkpoints - 1, 0)
    tail = store.load_history(run_id, after_seq=known)
    for cp in tail:
        same = cp.kind is CheckpointKind.RUN_ACTION and cp.name == action
        if same and action_details(cp).get("run_id") == details["run_id"]:
            return
    last_seq = tail[-1].seq if tail else known
    record_action(store, clock, run, action, repair.by, details, last_seq=last_seq)


def _require(store: RunStore, run_id: str) -> RunRecord:
    run = store.get_run(run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    return run


def _refuse_expiring(run: RunRecord, clock: Clock) -> None:
    if run.expires_at is not None and run.expires_at <= clock.now():
        raise RunExpiringError(
            run.run_id, f"run {run.run_id} is past its retention and is being purged"
        )


def _refuse_waited_child(store: RunStore, run: RunRecord) -> None:
    """A child whose parent has not ended is the parent's to retry (a triggered one is not:
    its parent never waits for it)."""
    parent_id = run.parent_run_id
    if parent_id is None:
        return
    parent = store.get_run(parent_id)
    if parent is None or parent.status.is_terminal:
        return
    if run.batch_slot is None:
        for cp in store.load_history(parent_id):
            triggered = cp.kind is CheckpointKind.CHILD_TRIGGERED and cp.value is not None
            if triggered and loads(cp.value or "null") == run.run_id:
                return
    raise ParentWaitsError(
        run.run_id,
        parent_id,
        f"run {run.run_id} is a child of run {parent_id}, which has not ended and records "
        f"this child's end: retry the parent run {parent_id} once it has ended (its retried "
        "attempt calls the child again, as a new child run)",
    )


def _trailing_retry(history: list[Checkpoint], run: RunRecord) -> Checkpoint | None:
    """A "retry" entry after the run's last operation that did not take effect (the run has
    not ended since it was written): a retry cut short, to reuse."""
    for cp in reversed(history):
        if cp.kind is not CheckpointKind.RUN_ACTION:
            return None
        if is_retry_boundary(cp) and (run.finished_at is None or run.finished_at <= cp.at):
            return cp
    return None


def _retry_in_flight(store: RunStore, run: RunRecord) -> bool:
    """Whether the run is queued behind a retry no invocation has taken up yet."""
    if run.status is not RunStatus.QUEUED or run.waiting_for is not None:
        return False
    tail = store.load_history(run.run_id, after_seq=max(run.checkpoints - 1, 0))
    return bool(tail) and is_retry_boundary(tail[-1])


def _retry_details(run: RunRecord, history: list[Checkpoint], ended: int) -> dict[str, Any]:
    """What a retry entry keeps: the attempt it starts, how the run had ended (the run's
    end is cleared), and the compensations that end ran (not undone by the retry)."""
    error = run.error
    details: dict[str, Any] = {
        "attempt": ended + 1,
        "previous": {
            "status": str(run.status),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "error": {"type": error.type, "message": error.message} if error else None,
        },
    }
    compensated = [
        cp.name.removeprefix(COMPENSATION_PREFIX)
        for cp in history
        if cp.task_attempt == ended
        and cp.kind is CheckpointKind.STEP_COMPLETED
        and cp.name.startswith(COMPENSATION_PREFIX)
    ]
    if compensated:
        details["compensated"] = compensated
    return details
