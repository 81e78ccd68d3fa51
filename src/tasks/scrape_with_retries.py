"""`scrape-with-retries`: a flaky fetch retried by the task's exponential backoff policy.

The policy is the seed's: at most 5 attempts, delays of 1 s, 2 s, 4 s, 8 s (factor 2, capped
at 60 s), each shortened by up to 20 % of jitter. Every retry is a new invocation woken
through the queue; nothing sleeps in between. A URL with `?fail=N` makes the fake website
fail its first N fetches, so `{"url": "https://example.com/pricing?fail=2"}` succeeds on the
third attempt and `?fail=5` exhausts the budget.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from durable import Context, RetryPolicy, task
from tasks.fakes import website

SCRAPE_RETRY = RetryPolicy(
    max_attempts=5,
    factor=2.0,
    min_delay=timedelta(seconds=1),
    max_delay=timedelta(seconds=60),
)


class ScrapeIn(BaseModel):
    url: str = Field(min_length=1)


@task(id="scrape-with-retries", retry=SCRAPE_RETRY)
def scrape_with_retries(ctx: Context, payload: ScrapeIn) -> dict[str, Any]:
    # Fails the attempt when the site does; the task's policy decides when to try again.
    page: dict[str, Any] = ctx.step("fetch-page", website.fetch, payload.url)
    return {
        "url": page["url"],
        "title": page["title"],
        "length": len(page["html"]),
        "attempt": ctx.run.attempt,
    }
