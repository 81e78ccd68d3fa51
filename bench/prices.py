"""Every AWS price the benchmarks use, in one table, each with its region, date and source.

`bench/overhead.py` (cost per million steps) and `bench/capacity.py` (cost per million runs,
and at a target load) both read their prices from here, so a price change is one edit.
All are list prices in us-east-1, on-demand, without the free tier.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class Price:
    """One list price: `usd` per `unit`."""

    usd: float
    unit: str
    as_of: str  # the date this list price is known to be in effect
    source: str
    note: str = ""
    quoted_per_million: bool = True  # as AWS quotes it: per million units, or per one

    def label(self) -> str:
        """`$0.625 per million write request units (...)`, or per one when that reads better."""
        if self.quoted_per_million:
            return f"{per_million(self)[:-2]} per million, {self.unit}"
        return f"${self.usd:.10f}".rstrip("0") + f" per {self.unit}"


MILLION = 1_000_000

DYNAMODB_WRITE_REQUEST_UNIT = Price(
    usd=0.625 / MILLION,
    unit="write request unit (1 KB, on-demand)",
    as_of="2024-11-01",
    source="https://aws.amazon.com/dynamodb/pricing/on-demand/",
    note="halved from $1.25 per million on 1 November 2024",
)
DYNAMODB_READ_REQUEST_UNIT = Price(
    usd=0.125 / MILLION,
    unit="read request unit (4 KB strongly consistent, 8 KB eventually)",
    as_of="2024-11-01",
    source="https://aws.amazon.com/dynamodb/pricing/on-demand/",
    note="halved from $0.25 per million on 1 November 2024",
)
SQS_STANDARD_REQUEST = Price(
    usd=0.40 / MILLION,
    unit="request (standard queue; each 64 KB chunk of a payload is one request)",
    as_of="2024-11-01",
    source="https://aws.amazon.com/sqs/pricing/",
    note="after the first million requests a month (free tier)",
)
LAMBDA_REQUEST = Price(
    usd=0.20 / MILLION,
    unit="invocation",
    as_of="2024-11-01",
    source="https://aws.amazon.com/lambda/pricing/",
)
LAMBDA_GB_SECOND = Price(
    usd=0.0000166667,
    unit="GB-second (x86_64; the first 6 billion GB-s a month)",
    as_of="2024-11-01",
    source="https://aws.amazon.com/lambda/pricing/",
    note="arm64 is $0.0000133334; the template deploys x86_64",
    quoted_per_million=False,
)
S3_PUT_REQUEST = Price(
    usd=0.005 / 1000,
    unit="PUT, COPY, POST or LIST request (S3 Standard)",
    as_of="2024-11-01",
    source="https://aws.amazon.com/s3/pricing/",
)
S3_GET_REQUEST = Price(
    usd=0.0004 / 1000,
    unit="GET or other request (S3 Standard)",
    as_of="2024-11-01",
    source="https://aws.amazon.com/s3/pricing/",
)

ALL_PRICES: dict[str, Price] = {
    "DynamoDB write request unit": DYNAMODB_WRITE_REQUEST_UNIT,
    "DynamoDB read request unit": DYNAMODB_READ_REQUEST_UNIT,
    "SQS standard request": SQS_STANDARD_REQUEST,
    "Lambda request": LAMBDA_REQUEST,
    "Lambda GB-second": LAMBDA_GB_SECOND,
    "S3 PUT request": S3_PUT_REQUEST,
    "S3 GET request": S3_GET_REQUEST,
}


def per_million(price: Price) -> str:
    """`$0.625/M`: a per-request price as the README writes it."""
    text = f"{price.usd * MILLION:,.3f}"
    return f"${text[:-1] if text.endswith('0') else text}/M"


def price_lines() -> list[str]:
    """One line per price, with its date and source (printed by the benchmarks)."""
    return [
        f"{name}: {price.label()} ({REGION}, as of {price.as_of}, {price.source})"
        + (f"; {price.note}" if price.note else "")
        for name, price in ALL_PRICES.items()
    ]
