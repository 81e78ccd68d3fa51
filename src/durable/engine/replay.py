"""The replay view of a run's log: which recorded entries answer which operation.

Rules (the same for every backend and every invocation):

- Operations are numbered by the order the task's code asks for them (`op` = position).
- The current task attempt is 1 + the number of ATTEMPT_FAILED entries.
- A task retry re-executes from the failure point: positions before the *horizon* keep what
  earlier attempts recorded (the latest attempt that reached each one); from the horizon on,
  only entries written by the current attempt count. The horizon is the furthest position
  the failed attempt reached, or one past it when what it recorded there is settled (a
  completed step, a started sleep or wait, a received event, a recorded value): a step the
  task caught and went past is not run again, the one it failed on is.
- At each position the code must ask for the operation the log holds there (same kind and
  name); otherwise `NonDeterminismError`, raised before anything executes. When the task
  returns, positions the view still holds but the code never asked for are a divergence too.
"""

from __future__ import annotations

from collections import defaultdict

from durable.errors import NonDeterminismError
from durable.records import Checkpoint, CheckpointKind

SETTLED_KINDS = frozenset(
    {
        CheckpointKind.STEP_COMPLETED,
        CheckpointKind.SLEEP_STARTED,
        CheckpointKind.WAIT_STARTED,
        CheckpointKind.EVENT_RECEIVED,
        CheckpointKind.WAIT_TIMED_OUT,
        CheckpointKind.VALUE_RECORDED,
        CheckpointKind.PATCH_MARKER,
        CheckpointKind.CHILD_TRIGGERED,
        CheckpointKind.CHILD_COMPLETED,
        CheckpointKind.CALLBACK_CREATED,
        CheckpointKind.CALLBACK_COMPLETED,
        CheckpointKind.CALLBACK_TIMED_OUT,
        CheckpointKind.BATCH_COMPLETED,
    }
)


class HistoryView:
    """Indexes a loaded log for one attempt's replay."""

    __slots__ = (
        "_by_position",
        "attempt",
        "attempt_failures",
        "consumed_inbox_ids",
        "furthest",
        "horizon",
        "next_seq",
        "run_id",
    )

    def __init__(self, run_id: str, history: list[Checkpoint]) -> None:
        self.run_id = run_id
        self.attempt_failures = [cp for cp in history if cp.kind is CheckpointKind.ATTEMPT_FAILED]
        self.attempt = 1 + len(self.attempt_failures)
        self.next_seq = (history[-1].seq + 1) if history else 1
        # Every inbox event any entry consumed, whatever attempt wrote it (durable.inbox).
        self.consumed_inbox_ids = frozenset(
            cp.inbox_id for cp in history if cp.inbox_id is not None
        )
        by_position: defaultdict[int, list[Checkpoint]] = defaultdict(list)
        for cp in history:
            if cp.op >= 0:
                by_position[cp.op].append(cp)
        # One past the furthest operation any attempt asked for: the code before it has run.
        self.furthest = max(by_position, default=-1) + 1
        self.horizon = self._horizon(by_position)
        attempt = self.attempt
        self._by_position: dict[int, list[Checkpoint]] = {}
        for position, entries in by_position.items():
            if position < self.horizon:
                # Passed through by an earlier attempt: its latest attempt's entries answer.
                latest = max(cp.task_attempt for cp in entries if cp.task_attempt < attempt)
                visible = [cp for cp in entries if cp.task_attempt == latest]
            else:
                visible = [cp for cp in entries if cp.task_attempt == attempt]
            if visible:
                self._by_position[position] = visible

    def _horizon(self, by_position: dict[int, list[Checkpoint]]) -> int:
        """Where the current attempt starts executing again: the last attempt's failure point.

        Every position before the furthest one the failed attempt reached was passed
        through (its step completed, or failed and the task caught it): it replays. The
        furthest one re-executes, unless what it recorded there is settled (a completed step
        the task then failed after, a started sleep, a received event...).
        """
        attempt = self.attempt
        reached = [
            position
            for position, entries in by_position.items()
            if any(cp.task_attempt < attempt for cp in entries)
        ]
        if not reached:
            return 0
        furthest = max(reached)
        earlier = [cp for cp in by_position[furthest] if cp.task_attempt < attempt]
        latest = max(cp.task_attempt for cp in earlier)
        settled = any(cp.kind in SETTLED_KINDS for cp in earlier if cp.task_attempt == latest)
        return furthest + 1 if settled else furthest

    def entries(self, position: int) -> list[Checkpoint]:
        """The entries that answer the operation at `position` (empty: not yet executed)."""
        return self._by_position.get(position, [])

    def check(self, position: int, kind: str, name: str) -> list[Checkpoint]:
        """The entries at `position`, after checking they belong to (kind, name)."""
        entries = self._by_position.get(position)
        if not entries:
            return []
        first = entries[0]
        if first.operation_kind != kind or first.name != name:
            raise NonDeterminismError(
                self.run_id,
                position,
                recorded=f"{first.operation_kind} {first.name!r}",
                requested=f"{kind} {name!r}",
            )
        return entries

    @property
    def length(self) -> int:
        """One past the last position the view holds."""
        return max(self._by_position, default=-1) + 1

    def check_finished(self, requested: int) -> None:
        """Raise if the view holds positions the code never asked for."""
        if self.length > requested:
            first = (
                self._by_position.get(requested)
                or self._by_position[min(p for p in self._by_position if p >= requested)]
            )
            entry = first[0]
            raise NonDeterminismError(
                self.run_id,
                entry.op,
                recorded=f"{entry.operation_kind} {entry.name!r}",
                requested=None,
            )
