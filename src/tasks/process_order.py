"""`process-order`: fetch the order, charge it, record the payment (the seed's first example).

Each `ctx.step` is a checkpoint. If the invocation dies after the charge step has been
recorded but before the order is updated, the next invocation replays: `fetch-order` and
`charge` return their logged results without running, and only `update-order` runs. The
charge also carries an idempotency key made from the order id, so a crash *inside* the
charge step (after the provider moved the money, before the checkpoint) is safe too: the
retried call gets the same charge back from the provider instead of a second one.

`cool_off_seconds` (default 0: no wait) holds a paid order that long before it is released
for shipping, as a window in which the customer can still cancel. `ctx.sleep` costs nothing
while it waits: no Lambda is held, however long it is.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from durable import Context, RetryPolicy, task
from tasks.fakes import orders, payments


class OrderIn(BaseModel):
    """The payload: which order to process, and an optional cool-off before release."""

    order_id: str = Field(min_length=1)
    cool_off_seconds: int = Field(default=0, ge=0, le=24 * 3600)


class OrderOut(BaseModel):
    """The result: the order, the payment that paid for it and where the order now stands."""

    order_id: str
    payment_id: str
    amount_cents: int
    status: str


@task(
    id="process-order",
    retry=RetryPolicy(
        max_attempts=5,
        factor=2.0,
        min_delay=timedelta(seconds=1),
        max_delay=timedelta(seconds=60),
    ),
    timeout=timedelta(days=2),
)
def process_order(ctx: Context, payload: OrderIn) -> OrderOut:
    order: dict[str, Any] = ctx.step("fetch-order", orders.get, payload.order_id)
    charge: dict[str, Any] = ctx.step(
        "charge",
        payments.charge,
        amount_cents=order["amount_cents"],
        currency=order["currency"],
        source=order["card_token"],
        idempotency_key=f"process-order:{order['id']}",
        retry=RetryPolicy(max_attempts=3),
    )
    # A crash here replays the two steps above from the log: the card is not charged again.
    updated: dict[str, Any] = ctx.step("update-order", orders.mark_paid, order["id"], charge["id"])
    if payload.cool_off_seconds:
        ctx.sleep("cool-off", timedelta(seconds=payload.cool_off_seconds))
        updated = ctx.step("release-order", orders.release, order["id"])
    ctx.logger.info("order processed", order_id=order["id"], payment_id=charge["id"])
    return OrderOut(
        order_id=order["id"],
        payment_id=charge["id"],
        amount_cents=order["amount_cents"],
        status=updated["status"],
    )
