"""What an attempt tells an observer as it goes: the hook telemetry stands on.

The operations know when a durable call is answered from the log and when a step attempt
runs; the worker wants to count the first and trace the second (`durable.telemetry` makes
X-Ray subsegments of them) without this layer importing Powertools. An `AttemptObserver`
is optional: an attempt made without one calls nothing, and a worker tracing nothing
passes only its counters.

Rules for an observer: it is called synchronously from task code's thread (between a
step's end and its checkpoint write), so it must be quick, must not raise, and must not
call back into the attempt. A step attempt is reported once it has ended (returned or
raised), with its span on the run's clock; an attempt whose invocation dies inside the
step is never reported (its invocation reports nothing either).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StepSpan:
    """One fresh attempt of a step, as it ran in this invocation."""

    run_id: str
    task_id: str
    task_attempt: int
    step: str
    position: int
    step_attempt: int
    started_at: datetime
    ended_at: datetime
    error: str | None = None  # the exception's type name, when the attempt raised


class AttemptObserver(Protocol):
    """Told of each replayed operation and each fresh step attempt of an attempt."""

    def operation_replayed(self, position: int) -> None:
        """The operation at `position` was answered from the log (nothing executed)."""

    def step_ran(self, span: StepSpan) -> None:
        """A step attempt ran in this invocation and ended (it returned or raised)."""
