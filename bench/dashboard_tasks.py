"""The task bench/dashboard_load.py runs in `durable dev` to draw a long run page.

`bench-many-steps` makes `steps` steps one after another; every `fail_every`-th step fails
its first attempt (a backoff gap on the timeline), every tenth logs a line, and a short
sleep sits halfway: a run page with as many lanes as steps, attempt bars, gaps and log lines.
The first attempts are counted in files under `dir`, so a retry in another worker process
knows it is one.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from durable import Context, RetryPolicy, task

RETRY = RetryPolicy(max_attempts=3, min_delay=timedelta(milliseconds=200), factor=1.0, jitter=0)


class ManySteps(BaseModel):
    dir: str
    steps: int = Field(default=200, ge=1, le=2000)
    fail_every: int = Field(default=20, ge=1)


def _work(directory: str, index: int, fail: bool) -> dict[str, int]:
    marker = Path(directory) / f"step-{index}.tried"
    if fail and not marker.exists():
        marker.touch()
        raise ConnectionError(f"step {index} refused its first attempt")
    return {"index": index, "square": index * index}


@task(id="bench-many-steps")
def many_steps(ctx: Context, payload: ManySteps) -> int:
    total = 0
    for index in range(payload.steps):
        if index == payload.steps // 2:
            ctx.sleep("halfway", timedelta(milliseconds=500))
        fail = index % payload.fail_every == payload.fail_every - 1
        if index % 10 == 0:
            ctx.logger.info("at step", index=index)
        result = ctx.step(f"step-{index}", _work, payload.dir, index, fail, retry=RETRY)
        total += result["square"]
    return total
