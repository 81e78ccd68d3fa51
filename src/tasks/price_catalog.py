"""`price-catalog` fans out with `ctx.map`; `fastest-quote` races three carriers with
`ctx.parallel(..., first_success=True)`.

`price-catalog` prices every SKU of a catalog as a `price-sku` child run, at most 100 at a
time. The parent does not wake for each child: the children report to the batch, and the
parent is woken once, when the batch is decided, so a catalog of 10,000 SKUs costs it two
invocations. Results come back in input order. A SKU the pricing service does not know
(`discontinued-...`) fails its child for good (`UnknownSku` is non-retryable); up to five
such children are tolerated, and their places in the results hold a `ChildRunFailedError`,
reported in `failed`. A sixth failure decides the batch: `ctx.map` raises
`BatchFailedError`, the children still running are cancelled, and the run ends FAILED at
once (listed as non-retryable: a retry would not make the catalog any better).

`fastest-quote` asks the three carriers of `tasks.fakes.CARRIERS` for a quote, each as a
`carrier-quote` child run without retries, and takes the first that succeeds (the first in
input order once any has); the other children are cancelled if they are still running. Only
if every carrier fails does the run fail, with `BatchFailedError`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from durable import Context, RetryPolicy, task
from durable.errors import BatchFailedError, ChildRunFailedError
from tasks.fakes import CARRIERS, carriers, pricing
from tasks.process_batch import QUOTE_RETRY


class CatalogIn(BaseModel):
    catalog_id: str = Field(min_length=1)
    skus: list[str] = Field(min_length=1, max_length=10_000)


class CatalogOut(BaseModel):
    catalog_id: str
    total_cents: int  # one unit of each SKU that has a price
    priced: int
    failed: list[str]  # the SKUs without a price, in input order


@task(id="price-sku", retry=RetryPolicy(max_attempts=2))
def price_sku(ctx: Context, payload: str) -> int:
    quote: dict[str, Any] = ctx.step("quote", pricing.quote, payload, 1, retry=QUOTE_RETRY)
    return int(quote["unit_cents"])


@task(id="price-catalog", retry=RetryPolicy(max_attempts=2, non_retryable=(BatchFailedError,)))
def price_catalog(ctx: Context, payload: CatalogIn) -> CatalogOut:
    prices = ctx.map("price-sku", payload.skus, max_concurrency=100, tolerated_failures=5)
    unpriced = [i for i, price in enumerate(prices) if isinstance(price, ChildRunFailedError)]
    return CatalogOut(
        catalog_id=payload.catalog_id,
        total_cents=sum(p for p in prices if not isinstance(p, ChildRunFailedError)),
        priced=len(prices) - len(unpriced),
        failed=[payload.skus[i] for i in unpriced],
    )


Carrier = Literal["swiftship", "parcelpost", "boxline"]


class ShipmentIn(BaseModel):
    destination: str = Field(min_length=1)
    weight_grams: int = Field(ge=1, le=70_000)


class QuoteRequest(ShipmentIn):
    carrier: Carrier


class Quote(BaseModel):
    carrier: Carrier
    price_cents: int
    days: int


@task(id="carrier-quote", retry=RetryPolicy(max_attempts=1))
def carrier_quote(ctx: Context, payload: QuoteRequest) -> Quote:
    quote: dict[str, Any] = ctx.step(
        "quote", carriers.quote, payload.carrier, payload.destination, payload.weight_grams
    )
    return Quote.model_validate(quote)


@task(id="fastest-quote", retry=RetryPolicy(max_attempts=1))
def fastest_quote(ctx: Context, payload: ShipmentIn) -> Quote:
    calls = [("carrier-quote", {**payload.model_dump(), "carrier": c}) for c in CARRIERS]
    quote = ctx.parallel(calls, first_success=True, name="quotes")
    return Quote.model_validate(quote)
