"""`ctx.compensate`: undo what completed steps did, newest first (the saga pattern).

A step given `compensate=undo` adds `(name, undo, result)` to the attempt when it completes
(or replays). Each compensation runs as a step of its own, `compensate:<name>`, with a
short retry policy; one that fails for good is reported and the others still run. The
executor calls this when a run fails for good; task code may call it itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable.engine.replay import COMPENSATION_PREFIX
from durable.engine.retry import RetryPolicy
from durable.errors import StepFailedError
from durable.operations.attempt import Attempt
from durable.operations.steps import StepPlan, plan_step, run_step, run_step_async
from durable.records import ErrorInfo

COMPENSATION_RETRY = RetryPolicy(max_attempts=3)

Outcomes = list[tuple[str, ErrorInfo | None]]


def compensate(attempt: Attempt) -> Outcomes:
    """Run every pending compensation, newest first; (step name, final error or None)."""
    outcomes: Outcomes = []
    while attempt.compensations:
        name, undo, result = attempt.compensations.pop()
        try:
            plan = _plan(attempt, name, undo)
            run_step(attempt, plan, undo, (result,), {})
        except StepFailedError as exc:
            outcomes.append((name, ErrorInfo(type=exc.error_type, message=exc.message)))
        else:
            outcomes.append((name, None))
    return outcomes


async def compensate_async(attempt: Attempt) -> Outcomes:
    """`compensate` for an async task: each compensation is awaited in its event loop."""
    outcomes: Outcomes = []
    while attempt.compensations:
        name, undo, result = attempt.compensations.pop()
        try:
            plan = _plan(attempt, name, undo)
            await run_step_async(attempt, plan, undo, (result,), {})
        except StepFailedError as exc:
            outcomes.append((name, ErrorInfo(type=exc.error_type, message=exc.message)))
        else:
            outcomes.append((name, None))
    return outcomes


def _plan(attempt: Attempt, name: str, undo: Callable[[Any], Any]) -> StepPlan:
    return plan_step(
        attempt,
        f"{COMPENSATION_PREFIX}{name}",
        undo,
        COMPENSATION_RETRY,
        "at_least_once",
        None,
        None,
        None,
    )
