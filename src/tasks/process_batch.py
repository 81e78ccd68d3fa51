"""`process-batch` (an `async def` task) fans out one `process-item` child run per item.

    results = await asyncio.gather(*(ctx.invoke("process-item", item) for item in items))

Each `ctx.invoke` takes its position in the log when it is *called*, so all the children
are started in the first invocation, before anything is awaited, and each keeps the same
identity (position, idempotency key) on every replay, whichever child ends first. The
parent then waits without holding a Lambda; each child that ends wakes it, and the replay
collects the results that are in. Children run in parallel, each in its own invocations,
with its own retries: `process-item` prices its line with a step that retries an outage of
the pricing service. A child that fails for good raises `ChildRunFailedError` in the parent;
the parent's task retry then invokes that child again (a new child run), and keeps the
results of the children that completed.

The sum is then recorded with an awaited step, as any `async` task would.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from durable import Context, RetryPolicy, task
from durable.context import AsyncContext
from tasks.fakes import UnknownSku, pricing, reports

QUOTE_RETRY = RetryPolicy(
    max_attempts=4, min_delay=timedelta(seconds=1), non_retryable=(UnknownSku,)
)


class Item(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(ge=1)


class ItemOut(BaseModel):
    sku: str
    quantity: int
    unit_cents: int
    total_cents: int


class BatchIn(BaseModel):
    batch_id: str = Field(min_length=1)
    items: list[Item] = Field(min_length=1, max_length=100)


class BatchOut(BaseModel):
    batch_id: str
    items: list[ItemOut]
    total_cents: int


@task(id="process-item", retry=RetryPolicy(max_attempts=2))
def process_item(ctx: Context, payload: Item) -> ItemOut:
    quote: dict[str, Any] = ctx.step(
        "quote", pricing.quote, payload.sku, payload.quantity, retry=QUOTE_RETRY
    )
    return ItemOut.model_validate(quote)


def store_summary(batch_id: str, total_cents: int, lines: int) -> dict[str, Any]:
    body = json.dumps({"batch_id": batch_id, "total_cents": total_cents, "lines": lines})
    return reports.put(f"batches/{batch_id}.json", body)


@task(id="process-batch", retry=RetryPolicy(max_attempts=2))
async def process_batch(ctx: AsyncContext, payload: BatchIn) -> BatchOut:
    results = await asyncio.gather(*(ctx.invoke("process-item", item) for item in payload.items))
    items = [ItemOut.model_validate(result) for result in results]
    total = sum(item.total_cents for item in items)
    await ctx.step("store-summary", store_summary, payload.batch_id, total, len(items))
    return BatchOut(batch_id=payload.batch_id, items=items, total_cents=total)
