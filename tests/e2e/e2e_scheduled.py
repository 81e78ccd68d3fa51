"""A cron task for the schedule end-to-end test, loaded only by that test's own `durable dev`.

Its expression comes from `E2E_SCHEDULE_CRON` (read at import), so the test can name the
exact instants it will watch fire, seconds field included. It lives apart from
`tests.e2e.e2e_tasks`: the shared dev server must not fire runs the other tests would see,
and no other process that imports the e2e tasks should gain a schedule.
"""

from __future__ import annotations

import os
from typing import Any

from durable import Context, task

# Without the variable: once a year, which a test session never reaches by accident.
CRON = os.environ.get("E2E_SCHEDULE_CRON", "0 0 1 1 *")


@task(id="e2e-scheduled", cron=CRON, timezone="UTC")
def scheduled(ctx: Context, payload: None) -> dict[str, Any]:
    return {"started_at": ctx.run.started_at.isoformat(), "payload": payload}
