"""Inside a running step: `ctx.step_id`, `ctx.heartbeat`, `ctx.heartbeat_details`.

A heartbeat renews the step's heartbeat timeout (the run's lease) and records
`step_heartbeat` entries with its details, at most every few seconds unless the details
change; the next attempt of a step whose invocation died reads the last details back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from durable.operations.attempt import Attempt
from durable.operations.steps import StepInfo, current_step
from durable.records import CheckpointKind

HEARTBEAT_RECORD_INTERVAL = timedelta(seconds=5)


def running_step(what: str) -> StepInfo:
    """The step running now; RuntimeError naming `ctx.<what>` outside a step."""
    step = current_step.get()
    if step is None:
        raise RuntimeError(f"ctx.{what} is only available inside a running step")
    return step


def heartbeat(attempt: Attempt, details: Any) -> None:
    """Renew the running step's heartbeat timeout; record `details` for a later attempt."""
    step = running_step("heartbeat")
    now = attempt.clock.now()
    if step.heartbeat_timeout is not None:
        attempt.environment.extend_lease(now + step.heartbeat_timeout)
    if (
        attempt.last_heartbeat is not None
        and now - attempt.last_heartbeat < HEARTBEAT_RECORD_INTERVAL
        and details == step.heartbeat_details
    ):
        return
    attempt.last_heartbeat = now
    step.heartbeat_details = details
    attempt.record(
        CheckpointKind.STEP_HEARTBEAT,
        step.position,
        step.name,
        step_attempt=step.attempt,
        value=attempt.codec.encode(details, attempt.blob_key()),
    )
