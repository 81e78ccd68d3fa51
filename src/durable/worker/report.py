"""What one invocation did to its run, in figures: what telemetry turns into metrics.

    Worker.process(message) ─► InvocationReport: handled, the run and task, started?,
                               ended how?, attempts exhausted?, held (non-determinism?),
                               checkpoints written, operations replayed, retries

`InvocationFigures` is filled as the invocation goes (the run as leased, the log as
loaded, the attempt's outcome, the checkpoints the invocation appended) and is the
attempt's observer (`durable.operations.observer`): it counts the operations answered
from the log and hands each step attempt on to an inner observer, if any (a tracer).
Nothing here emits anything: the handler layer does (`durable.telemetry`).

The figures, and when each counts:
- `started`: the run's first invocation that executes it (its record had no `started_at`).
- `ended`: the status the run ended in, when this invocation ended it (persisted: an
  invocation that lost its run to a cancel meanwhile ends nothing).
- `attempts_exhausted`: the run FAILED on its last task attempt, having had retries
  (`max_attempts` > 1); a non-determinism error or a crash loop is not an exhausted retry.
- `held`: this invocation held the run for a code fix (`durable.worker.holds`): its
  code diverged from its log (`non_determinism` then too), or its task is not here.
- `non_determinism`: the run was held because its code diverged from its log.
- `step_retries`, `task_retries`: failed step attempts and task attempts recorded with a
  retry time by this invocation; `checkpoints_written`: every log entry it appended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from durable.engine.outcomes import AnyOutcome, Completed, Failed, Held
from durable.errors import NonDeterminismError
from durable.operations.observer import AttemptObserver, StepSpan
from durable.records import HOLD_NONDETERMINISM, Checkpoint, CheckpointKind, RunRecord, RunStatus

if TYPE_CHECKING:
    from durable.worker.config import Handled

# Failures that are not a task's retries running out.
_NOT_EXHAUSTED = frozenset(
    {NonDeterminismError.__name__, "InvocationCrashLoop", "UnknownTaskError"}
)


@dataclass(frozen=True, slots=True)
class InvocationReport:
    """One wake-up's invocation in figures (see the module docstring)."""

    handled: Handled
    run_id: str | None = None
    task_id: str | None = None
    task_attempt: int | None = None
    started: bool = False
    ended: RunStatus | None = None
    attempts_exhausted: bool = False
    non_determinism: bool = False
    held: bool = False
    checkpoints_written: int = 0
    operations_replayed: int = 0
    step_retries: int = 0
    task_retries: int = 0


class InvocationFigures:
    """Collects an invocation's figures as it goes; the attempt's observer."""

    def __init__(self, inner: AttemptObserver | None = None) -> None:
        self.inner = inner
        self.run: RunRecord | None = None
        self.first_start = False
        self.task_attempt = 1
        self.max_attempts = 1
        self.outcome: AnyOutcome | None = None
        self.checkpoints_written = 0
        self.retries_recorded: Mapping[CheckpointKind, int] = {}
        self.replayed = 0

    # -- the attempt's observer ------------------------------------------------------------

    def operation_replayed(self, position: int) -> None:
        self.replayed += 1

    def step_ran(self, span: StepSpan) -> None:
        if self.inner is not None:
            self.inner.step_ran(span)

    # -- filled by the worker ----------------------------------------------------------------

    def loaded(self, run: RunRecord, first_start: bool, history: Sequence[Checkpoint]) -> None:
        """The run as leased, whether it had never started, and its log as loaded."""
        self.run = run
        self.first_start = first_start
        failures = sum(1 for entry in history if entry.kind is CheckpointKind.ATTEMPT_FAILED)
        self.task_attempt = 1 + failures

    def finished(
        self, outcome: AnyOutcome, written: int, retries: Mapping[CheckpointKind, int]
    ) -> None:
        """What the attempt ended in, the entries it wrote and the retries among them."""
        self.outcome = outcome
        self.checkpoints_written = written
        self.retries_recorded = retries

    def report(self, handled: Handled, persisted: bool) -> InvocationReport:
        """The figures, once the invocation is over; `persisted`: its outcome was written."""
        if self.run is None:
            return InvocationReport(handled=handled)
        outcome = self.outcome if persisted else None
        ended: RunStatus | None = None
        error_type = None
        if isinstance(outcome, Completed):
            ended = RunStatus.COMPLETED
        elif isinstance(outcome, Failed):
            ended, error_type = outcome.status, outcome.error.type
        exhausted = (
            ended is RunStatus.FAILED
            and error_type not in _NOT_EXHAUSTED
            and self.max_attempts > 1
            and self.task_attempt >= self.max_attempts
        )
        return InvocationReport(
            handled=handled,
            run_id=self.run.run_id,
            task_id=self.run.task_id,
            task_attempt=self.task_attempt,
            started=self.first_start,
            ended=ended,
            attempts_exhausted=exhausted,
            non_determinism=isinstance(outcome, Held) and outcome.reason == HOLD_NONDETERMINISM,
            held=isinstance(outcome, Held),
            checkpoints_written=self.checkpoints_written,
            operations_replayed=self.replayed,
            step_retries=self.retries_recorded.get(CheckpointKind.STEP_FAILED, 0),
            task_retries=self.retries_recorded.get(CheckpointKind.ATTEMPT_FAILED, 0),
        )
