"""Tasks of the dashboard's queue test (`tests/e2e/test_dashboard_queues.py`), loaded only by
that test's own `durable dev`: runs of `dash-gate` share a queue of concurrency 1 and hold
their slot while they wait for the event "go" (`release_on_wait=False`); `dash-full` has a
queue of concurrency 1 that takes at most one run waiting (`max_size=1`); `dash-rated`
starts one run an hour per key, `dash-debounced` ten minutes after its key's last trigger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from durable import Context, Queue, RateLimit, task

GATE = Queue("dash-llm", concurrency=1, release_on_wait=False)
FULL = Queue(
    "dash-small",
    concurrency=1,
    release_on_wait=False,
    max_size=1,
    rate_limit=RateLimit(10, timedelta(minutes=1)),
)


@task(id="dash-gate", queue=GATE)
def gate(ctx: Context, payload: Any) -> Any:
    """Hold the queue's only slot until the event "go" comes."""
    return {"go": ctx.wait_for_event("go", timeout=timedelta(minutes=5)), "payload": payload}


@task(id="dash-full", queue=FULL)
def full(ctx: Context, payload: Any) -> Any:
    """Hold the small queue's only slot until the event "go" comes."""
    return ctx.wait_for_event("go", timeout=timedelta(minutes=5))


@task(id="dash-rated", queue=Queue("dash-rate", rate_limit=RateLimit(1, timedelta(hours=1))))
def rated(ctx: Context, payload: Any) -> Any:
    """One start an hour per key: a second run waits for the next hour."""
    return ctx.step("echo", lambda: payload)


@task(id="dash-debounced", queue=Queue("dash-quiet", debounce=timedelta(minutes=10)))
def debounced(ctx: Context, payload: Any) -> Any:
    """Starts ten minutes after the last trigger of its key."""
    return ctx.step("echo", lambda: payload)
