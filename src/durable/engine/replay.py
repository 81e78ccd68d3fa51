"""The replay view of a run's log: which recorded entries answer which operation.

Rules (the same for every backend and every invocation):

- Operations are numbered by the order the task's code asks for them (`op` = position).
- The current task attempt is 1 + the number of attempt boundaries: ATTEMPT_FAILED entries
  (a task retry) and RUN_ACTION entries named "retry" (someone retried the ended run,
  `durable.services.repair`). The retry policy's budget and the task timeout count from the
  last "retry" boundary (`budget_attempt`, `retried_at`): a retried run gets them afresh.
- A task retry re-executes from the failure point: positions before the *horizon* keep what
  earlier attempts recorded (the latest attempt that reached each one); from the horizon on,
  only entries written by the current attempt count. The horizon is the furthest position
  the failed attempt reached, or one past it when what it recorded there is settled (a
  completed step, a started sleep or wait, a received event, a recorded value): a step the
  task caught and went past is not run again, the one it failed on is. After a "retry"
  boundary, the compensations the run's end ran (trailing `compensate:*` steps, past its
  failure point) are not where it failed: they are left out, so the failure point re-executes.
- At each position the code must ask for the operation the log holds there (same kind and
  name); otherwise `NonDeterminismError`, raised before anything executes. When the task
  returns, positions the view still holds but the code never asked for are a divergence too.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

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


RETRY_ACTION = "retry"  # the RUN_ACTION name of a retry boundary (`durable.services.repair`)
# The start of a compensation's step name (`durable.operations.compensation`).
COMPENSATION_PREFIX = "compensate:"


def is_retry_boundary(cp: Checkpoint) -> bool:
    """Whether `cp` is a "retry" action: someone retried the ended run, a new task attempt."""
    return cp.kind is CheckpointKind.RUN_ACTION and cp.name == RETRY_ACTION


class HistoryView:
    """Indexes a loaded log for one attempt's replay."""

    __slots__ = (
        "_by_position",
        "attempt",
        "boundaries",
        "budget_attempt",
        "consumed_inbox_ids",
        "furthest",
        "horizon",
        "next_seq",
        "retried_at",
        "run_id",
    )

    def __init__(self, run_id: str, history: list[Checkpoint]) -> None:
        self.run_id = run_id
        # Every entry that starts a new task attempt, in log order.
        self.boundaries = [
            cp
            for cp in history
            if cp.kind is CheckpointKind.ATTEMPT_FAILED or is_retry_boundary(cp)
        ]
        self.attempt = 1 + len(self.boundaries)
        retries = [index for index, cp in enumerate(self.boundaries) if is_retry_boundary(cp)]
        # The attempt as the retry policy counts it: 1 for the first since the last retry.
        self.budget_attempt = self.attempt - (retries[-1] + 1 if retries else 0)
        # When the last retry began (a task timeout counts from it); None: never retried.
        self.retried_at = self.boundaries[retries[-1]].at if retries else None
        self.next_seq = (history[-1].seq + 1) if history else 1
        # Every inbox event any entry consumed, whatever attempt wrote it (durable.inbox).
        self.consumed_inbox_ids = frozenset(
            cp.inbox_id for cp in history if cp.inbox_id is not None
        )
        by_position: defaultdict[int, list[Checkpoint]] = defaultdict(list)
        for cp in history:
            if cp.op >= 0:
                by_position[cp.op].append(cp)
        for index in retries:  # attempt index + 1 ended, and was retried
            _drop_final_compensations(by_position, index + 1)
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

    @property
    def pending_retry_at(self) -> datetime | None:
        """When the current attempt may start, if its boundary is a task retry's backoff."""
        if self.boundaries and self.boundaries[-1].kind is CheckpointKind.ATTEMPT_FAILED:
            return self.boundaries[-1].wake_at
        return None

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


def _drop_final_compensations(by_position: dict[int, list[Checkpoint]], ended: int) -> None:
    """Leave out the compensations that the end of attempt `ended` ran (it was retried).

    They are that attempt's trailing positions holding nothing but `compensate:*` steps:
    the run failed just before them, and that is where the retried attempt starts again.
    What they undid stays undone: a retry does not redo it.
    """
    for position in sorted(by_position, reverse=True):
        entries = by_position[position]
        own = [cp for cp in entries if cp.task_attempt == ended]
        if not own:
            continue
        if not all(cp.name.startswith(COMPENSATION_PREFIX) for cp in own):
            return
        kept = [cp for cp in entries if cp.task_attempt != ended]
        if kept:
            by_position[position] = kept
        else:
            del by_position[position]
