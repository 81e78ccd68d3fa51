"""What one attempt of a run can end in; the worker persists and schedules from these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from durable.errors import InfrastructureError
from durable.records import ErrorInfo, RunStatus


@dataclass(frozen=True, slots=True)
class Completed:
    """The task returned; `result` is the encoded value."""

    result: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The run ended without a result: FAILED, TIMED_OUT or CANCELLED."""

    error: ErrorInfo
    status: RunStatus = RunStatus.FAILED


@dataclass(frozen=True, slots=True)
class Suspended:
    """The run waits: until `wake_at` (sleep, retry, wait timeout) and/or an event.

    `status` is WAITING (sleep, event) or RETRYING (a step or attempt retry is due);
    `attempt` is the task attempt the run is in after this outcome.
    """

    status: RunStatus
    wake_at: datetime | None
    waiting_for: str | None = None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Held:
    """The run cannot go on with this code: its replay diverged from its log (or its task is
    not deployed). It waits, visibly, for a fix (`waiting_for` is `reason`, a
    `records.HOLD_*`), instead of failing: nothing ran, no attempt is spent."""

    error: ErrorInfo
    reason: str


@dataclass(frozen=True, slots=True)
class HandedOver:
    """The invocation ran low on time; a new invocation continues at once."""


Outcome = Completed | Failed | Suspended | Held | HandedOver


@dataclass(frozen=True, slots=True)
class Abandoned:
    """Another invocation wrote this run's next log slot first: stop, persist nothing more."""

    reason: str


AnyOutcome = Outcome | Abandoned


class InfrastructureInterrupt(BaseException):
    """An AWS call failed in the middle of an attempt; never catch it.

    A BaseException, so that a task's `except Exception` cannot mistake it for a failure
    of its own (or swallow it). It unwinds to the worker, which ends the invocation with
    the original `error` so that SQS delivers the wake-up again: the attempt is not spent.
    """

    def __init__(self, error: InfrastructureError) -> None:
        self.error = error
        super().__init__(str(error))
