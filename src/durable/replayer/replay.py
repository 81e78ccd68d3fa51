"""Replays one recorded history against today's code, executing nothing (`replay_run`).

As Temporal's replayer does, this answers one question before a deploy: would today's code
ask for the same operations, in the same order, as the recorded runs did? Rules:

- The task runs through the engine's own `execute_attempt`, on an environment that cannot
  write: the operations the log answers replay exactly as in a real invocation, and the
  first operation it cannot answer is the end of the recorded history, not a divergence.
  It stops before it executes: the attempt's deadline is the frozen clock's instant, so a
  fresh operation hands over at once, and a checkpoint write raises `_EndOfHistory`.
  No step function runs, and nothing of the task past the end of its history.
- The clock is frozen at the last recorded instant (or at the retry time of a log that ends
  in a failed attempt; `run.updated_at` for an empty log): sleeps and waits that the log
  shows as done stay done, the others end the replay where the run waits now.
- Each task attempt is replayed on its own log (the history up to its ATTEMPT_FAILED entry,
  or up to the "retry" entry of someone retrying the ended run, as that attempt saw it), so
  what a failed attempt recorded is checked too. Audit entries (RUN_ACTION) are no
  operations: replay never asks for them.
- A recording that *ended* (a failed attempt, a COMPLETED run, a run FAILED by its own code)
  is closed by an end marker one position past its last operation: today's code asking for
  one more operation there is a divergence (recorded: the end), as is today's code ending,
  by returning or raising, while the recording holds more operations (requested: the end).
  An open run's log ends where the run is now: code past it is the run's future.
- The first divergence is reported as a side-by-side of the recorded and the requested
  operation (kind, name) at its position.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from durable.clock import VirtualClock
from durable.context import Context, attempt_of
from durable.engine.outcomes import AnyOutcome, Completed, Failed, Held
from durable.engine.replay import HistoryView, is_retry_boundary
from durable.errors import NonDeterminismError, UnknownTaskError
from durable.executor import execute_attempt
from durable.records import (
    HOLD_NONDETERMINISM,
    BatchItemResult,
    BatchRecord,
    Checkpoint,
    CheckpointKind,
    InboxEvent,
    RunRecord,
    RunStatus,
)
from durable.replayer.report import Operation, ReplayReport, ReplayStatus
from durable.services.audit import action_details
from durable.task import TaskDefinition, TaskRegistry, default_registry
from durable.values import ValueCodec

# The end marker's name: no task can ask for a value by this name.
_END_NAME = "\x00end of the recorded history"
# A FAILED run with one of these errors was stopped by the engine, not by its own code.
_ENGINE_FAILURES = frozenset({"NonDeterminismError", "UnknownTaskError"})


class _EndOfHistory(BaseException):
    """The replay asked to write a checkpoint: the recorded history ends here."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        super().__init__(checkpoint.kind)
        self.checkpoint = checkpoint


class _ReadOnlyEnvironment:
    """An `AttemptEnvironment` that refuses every write.

    No inbox, never cancelled, and a child run the log shows as started has not ended as
    far as the recording knows: each of these ends the replay where the run waits.
    """

    def append(self, checkpoint: Checkpoint) -> None:
        raise _EndOfHistory(checkpoint)

    def cancelled(self) -> bool:
        return False

    def inbox(self) -> list[InboxEvent]:
        return []

    def start_child(
        self, task_id: str, payload: Any, idempotency_key: str, parent_run_id: str
    ) -> str:
        raise _EndOfHistory(_fresh(CheckpointKind.CHILD_STARTED, task_id))

    def get_run(self, run_id: str) -> RunRecord | None:
        return None

    def create_callback(
        self, token: str, run_id: str, name: str, expires_at: datetime | None
    ) -> None:
        raise _EndOfHistory(_fresh(CheckpointKind.CALLBACK_CREATED, name))

    def start_batch(self, batch: BatchRecord) -> None:
        raise _EndOfHistory(_fresh(CheckpointKind.BATCH_STARTED, f"batch:{batch.position}"))

    def get_batch(self, run_id: str, task_attempt: int, position: int) -> BatchRecord | None:
        return None  # as recorded: a started batch is still running

    def batch_results(
        self, run_id: str, task_attempt: int, position: int, start: int, limit: int
    ) -> list[BatchItemResult]:
        # A batch's end holds a reference to its children's results, which a history does
        # not carry: the replay ends where the code first looks at them.
        raise _EndOfHistory(_fresh(CheckpointKind.BATCH_COMPLETED, "batch results"))

    def cancel_runs(self, run_ids: list[str]) -> None:
        raise _EndOfHistory(_fresh(CheckpointKind.BATCH_COMPLETED, "cancel"))

    def extend_lease(self, until: datetime | None) -> None:
        return None


def _fresh(kind: CheckpointKind, name: str) -> Checkpoint:
    """A stand-in for the checkpoint a fresh operation would have written."""
    return Checkpoint(seq=0, kind=kind, op=-1, name=name, task_attempt=0, at=datetime.min)


@dataclass(frozen=True, slots=True)
class _Recording:
    """One task attempt's log, and how its recording ended (None: it has not ended)."""

    log: list[Checkpoint]
    frozen_at: datetime
    ended: str | None


@dataclass(slots=True)
class _AttemptResult:
    positions: set[int] = field(default_factory=set)
    divergence: ReplayReport | None = None


def replay_history(
    definition: TaskDefinition[Any, Any],
    run: RunRecord,
    history: list[Checkpoint],
    codec: ValueCodec,
) -> ReplayReport:
    """Replay `run`'s recorded `history` against `definition`, executing nothing."""
    positions: set[int] = set()
    for recording in _recordings(run, history):
        result = _replay_attempt(definition, run, recording, codec)
        if result.divergence is not None:
            return replace(result.divergence, positions_replayed=len(positions | result.positions))
        positions |= result.positions
    return ReplayReport(
        run_id=run.run_id,
        task_id=run.task_id,
        status=ReplayStatus.OK,
        positions_replayed=len(positions),
    )


def replay_run(
    run: RunRecord,
    history: list[Checkpoint],
    codec: ValueCodec,
    registry: TaskRegistry | None = None,
) -> ReplayReport:
    """Replay against the task `registry` holds for the run (a report, if it holds none)."""
    try:
        definition = (registry or default_registry).get(run.task_id)
    except UnknownTaskError:
        return ReplayReport(run.run_id, run.task_id, ReplayStatus.UNKNOWN_TASK)
    return replay_history(definition, run, history, codec)


def _recordings(run: RunRecord, history: list[Checkpoint]) -> list[_Recording]:
    """Each task attempt's log as that attempt saw it, the current attempt last."""
    recordings: list[_Recording] = []
    for index, entry in enumerate(history):
        if entry.kind is CheckpointKind.ATTEMPT_FAILED:
            log = history[:index]
            raised = entry.error.type if entry.error is not None else "an error"
            # The attempt's clock stands where it failed (after any earlier retry time).
            recordings.append(_Recording(log, entry.at, f"raised {raised}"))
        elif is_retry_boundary(entry):
            # Someone retried the ended run: the attempt before ended as its entry says.
            log = history[:index]
            recordings.append(_Recording(log, _frozen_at(log, entry.at), _retried_end(entry)))
    ended: str | None = None
    if run.status is RunStatus.COMPLETED:
        ended = "returned"
    elif (
        run.status is RunStatus.FAILED
        and run.error is not None
        and run.error.type not in _ENGINE_FAILURES
    ):
        ended = f"raised {run.error.type}"
    recordings.append(_Recording(list(history), _frozen_at(history, run.updated_at), ended))
    return recordings


def _retried_end(entry: Checkpoint) -> str | None:
    """How the attempt a "retry" entry ended had ended: raised by its own code, or None
    (cancelled, timed out, or stopped by the engine)."""
    previous = action_details(entry).get("previous")
    if not isinstance(previous, dict) or previous.get("status") != str(RunStatus.FAILED):
        return None
    error = previous.get("error")
    raised = error.get("type") if isinstance(error, dict) else None
    if not isinstance(raised, str) or raised in _ENGINE_FAILURES:
        return None
    return f"raised {raised}"


def _frozen_at(log: list[Checkpoint], fallback: datetime) -> datetime:
    """The last recorded instant (`fallback` for an empty log).

    A log that ends in a failed attempt stands at that attempt's retry time, so that the
    next attempt replays what the earlier ones settled instead of waiting for its turn.
    """
    if not log:
        return fallback
    last = log[-1]
    instants = [entry.at for entry in log]
    if last.kind is CheckpointKind.ATTEMPT_FAILED and last.wake_at is not None:
        instants.append(last.wake_at)
    return max(instants)


def _replay_attempt(
    definition: TaskDefinition[Any, Any], run: RunRecord, recording: _Recording, codec: ValueCodec
) -> _AttemptResult:
    log = recording.log
    recorded_view = HistoryView(run.run_id, log)
    length = recorded_view.length
    if recording.ended is not None:
        marker = Checkpoint(
            seq=recorded_view.next_seq,
            kind=CheckpointKind.VALUE_RECORDED,
            op=length,
            name=_END_NAME,
            task_attempt=recorded_view.attempt,
            at=recording.frozen_at,
            value="null",
        )
        log = [*log, marker]
    view = HistoryView(run.run_id, log)
    contexts: list[Context] = []

    def entry_point(ctx: Context, payload: Any) -> Any:
        contexts.append(ctx)
        return definition.fn(ctx, payload)

    # Timeouts are the clock's business, not the code's: a replay never times out.
    replaying = replace(definition, fn=entry_point, timeout=None)
    clock = VirtualClock(recording.frozen_at)
    outcome: AnyOutcome | None
    stopped: Checkpoint | None = None
    try:
        outcome = execute_attempt(
            replaying,
            run,
            log,
            environment=_ReadOnlyEnvironment(),
            clock=clock,
            codec=codec,
            deadline=recording.frozen_at,
        )
    except _EndOfHistory as end:
        outcome, stopped = None, end.checkpoint
    except NonDeterminismError as exc:
        # A compensation (run after the task failed for good) diverged: the engine lets
        # that escape the attempt; the context has recorded it as its divergence.
        outcome, stopped = None, None
        if not contexts:
            raise
        first = attempt_of(contexts[0])
        first.divergence = first.divergence or exc
    attempt = attempt_of(contexts[0]) if contexts else None
    requested = attempt.requested_positions if attempt is not None else 0
    error = attempt.divergence if attempt is not None else None
    ended = _how_the_task_ended(outcome, stopped) if error is None else None
    if ended is not None:
        try:
            view.check_finished(requested)
        except NonDeterminismError as exc:
            error = exc
    result = _AttemptResult()
    last = requested if error is None else min(requested, error.position)
    result.positions = {p for p in range(min(last, length)) if view.entries(p)}
    if error is None:
        return result
    recorded = _recorded_operation(view, error, length if recording.ended else None)
    wanted = _parse_operation(error.requested)
    if recorded is None and wanted is None:
        return result  # today's code ends where the recording ended
    result.divergence = ReplayReport(
        run_id=run.run_id,
        task_id=run.task_id,
        status=ReplayStatus.DIVERGED,
        position=error.position,
        attempt=view.attempt,
        recorded=recorded,
        requested=wanted,
        recorded_end=recording.ended if recorded is None else None,
        requested_end=ended if wanted is None else None,
    )
    return result


def _how_the_task_ended(outcome: AnyOutcome | None, stopped: Checkpoint | None) -> str | None:
    """ "returned" / "raised <type>" when the task function ended; None when it was stopped."""
    if stopped is not None:
        if stopped.kind is CheckpointKind.ATTEMPT_FAILED:
            return f"raised {stopped.error.type if stopped.error else 'an error'}"
        return None  # a fresh operation: the end of the recorded history
    if isinstance(outcome, Completed):
        return "returned"
    if isinstance(outcome, Held) and outcome.reason == HOLD_NONDETERMINISM:
        return "returned"  # the engine's own end-of-task check held it
    if isinstance(outcome, Failed) and outcome.status is RunStatus.FAILED:
        if outcome.error.type == NonDeterminismError.__name__:
            return "returned"  # the engine's own end-of-task check
        return f"raised {outcome.error.type}"
    return None  # suspended at a recorded wait, or handed over before a fresh operation


def _recorded_operation(
    view: HistoryView, error: NonDeterminismError, marker_position: int | None
) -> Operation | None:
    if error.position == marker_position:
        return None
    entries = view.entries(error.position)
    if entries:
        return Operation(entries[0].operation_kind, entries[0].name)
    return _parse_operation(error.recorded)


def _parse_operation(text: str | None) -> Operation | None:
    """`step 'charge'` (as NonDeterminismError words it) → Operation("step", "charge")."""
    if text is None:
        return None
    kind, _, rest = text.partition(" ")
    try:
        name = ast.literal_eval(rest)
    except (ValueError, SyntaxError):
        name = rest
    return Operation(kind, str(name))
