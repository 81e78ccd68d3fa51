"""Tasks of the queue end-to-end test (`durable dev --tasks tests.e2e.e2e_queue_tasks`):
runs of `hold-slot` share a queue of concurrency 5 and hold their slot for a second."""

from __future__ import annotations

import time
from typing import Any

from durable import Context, Queue, task

POOL = Queue("e2e-pool", concurrency=5)


def _work(seconds: float) -> float:
    time.sleep(seconds)  # the slot's second of work: a real wait inside the step
    return seconds


@task(id="hold-slot", queue=POOL)
def hold_slot(ctx: Context, payload: Any) -> Any:
    """Hold one of the pool's five slots for a second."""
    return ctx.step("work", _work, float(payload.get("seconds", 1.0)))
