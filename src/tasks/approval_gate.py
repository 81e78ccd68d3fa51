"""`approval-gate`: a human decides, within 24 hours, whether a request goes ahead.

The run opens the request, then waits for an `approval` event (sent with
`durable send-event RUN_ID approval --data '{"approved": true, "approver": "ana"}'` or
`POST /runs/{id}/events/approval`). While it waits, no Lambda runs.

- approved: the request is marked approved and the run completes.
- rejected: the rejection is recorded and the run fails with `NonRetryableError` (retrying
  cannot change a human's answer).
- no answer in 24 hours: `wait_for_event` raises `durable.WaitTimeoutError`; the task catches it,
  marks the request expired and completes with status "expired".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from durable import Context, NonRetryableError, WaitTimeoutError, task
from tasks.fakes import approvals

APPROVAL_TIMEOUT = timedelta(hours=24)


class ApprovalIn(BaseModel):
    request_id: str = Field(min_length=1)
    description: str = ""
    amount_cents: int = Field(default=0, ge=0)


class Decision(BaseModel):
    """The data of the `approval` event."""

    approved: bool
    approver: str = "unknown"
    comment: str = ""


class ApprovalOut(BaseModel):
    request_id: str
    status: str
    approver: str | None = None


@task(id="approval-gate")
def approval_gate(ctx: Context, payload: ApprovalIn) -> ApprovalOut:
    request_id = payload.request_id
    ctx.step("open-request", approvals.open, request_id, payload.description, payload.amount_cents)
    try:
        data: Any = ctx.wait_for_event("approval", timeout=APPROVAL_TIMEOUT)
    except WaitTimeoutError:
        ctx.step("expire-request", approvals.expire, request_id)
        ctx.logger.warning("approval request expired", request_id=request_id)
        return ApprovalOut(request_id=request_id, status="expired")

    try:
        decision = Decision.model_validate(data)
    except ValidationError as exc:
        raise NonRetryableError(f"the approval event is malformed: {exc}") from None
    if not decision.approved:
        ctx.step(
            "record-rejection", approvals.reject, request_id, decision.approver, decision.comment
        )
        raise NonRetryableError(
            f"request {request_id} was rejected by {decision.approver}: {decision.comment}"
        )
    ctx.step("apply-approval", approvals.approve, request_id, decision.approver)
    return ApprovalOut(request_id=request_id, status="approved", approver=decision.approver)
