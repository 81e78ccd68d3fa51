"""`daily-report`: runs every day at 09:00 UTC, and names the report after `ctx.run.started_at`.

`cron="0 9 * * *"` makes the sweeper start a run each day at 09:00 (see
`durable.services.schedules`); it can still be triggered by hand, with a title. A scheduled run gets
no payload, so `ReportIn`'s defaults apply.

`ctx.run.started_at` is the scheduled instant for a scheduled run (when the run's first
invocation began, for one triggered by hand), and every replay sees the same instant. A run
started at 23:59:59 whose numbers arrive after midnight (the warehouse was down and the
step retried) still files the report under the day it started. Calling `date.today()` in
the task would give a different answer on the replay.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from durable import Context, RetryPolicy, task
from tasks.fakes import metrics, reports

GATHER_RETRY = RetryPolicy(max_attempts=4, min_delay=timedelta(seconds=30))


class ReportIn(BaseModel):
    title: str = "Daily report"


def render(title: str, day: str, numbers: dict[str, int]) -> str:
    """The report's text: a pure function of its inputs, so it needs no checkpoint."""
    lines = [f"{title} for {day}", ""]
    lines += [f"{name}: {value}" for name, value in sorted(numbers.items())]
    return "\n".join(lines) + "\n"


@task(id="daily-report", cron="0 9 * * *", timezone="UTC")
def daily_report(ctx: Context, payload: ReportIn) -> dict[str, Any]:
    day = ctx.run.started_at.date().isoformat()  # the same on every replay
    numbers: dict[str, int] = ctx.step(
        "gather-numbers", metrics.daily_numbers, day, retry=GATHER_RETRY
    )
    name = f"daily-report/{day}.txt"
    stored: dict[str, Any] = ctx.step(
        "store-report", reports.put, name, render(payload.title, day, numbers)
    )
    return {"day": day, "report": stored["name"], "bytes": stored["bytes"], **numbers}
