"""Tasks for the admission end-to-end test, loaded only by that test's own `durable dev`:
a rate-limited queue (2 starts per 5 s) and a debounced one (3 s)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from durable import Context, Queue, RateLimit, task

RATE = RateLimit(2, timedelta(seconds=5))
DEBOUNCE = timedelta(seconds=3)


@task(id="e2e-limited", queue=Queue("e2e-api", rate_limit=RATE))
def limited(ctx: Context, payload: Any) -> Any:
    return ctx.step("echo", lambda: payload)


@task(id="e2e-debounced", queue=Queue("e2e-index", debounce=DEBOUNCE))
def debounced(ctx: Context, payload: Any) -> Any:
    return ctx.step("echo", lambda: payload)
