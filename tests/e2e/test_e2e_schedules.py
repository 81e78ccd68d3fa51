"""`durable dev` fires cron tasks by itself: its sweeper loop starts each scheduled run on time.

The test runs its own dev server with only `tests.e2e.e2e_scheduled`, whose expression it
sets to two instants a few seconds ahead (a six-field expression: seconds first), then
watches the runs appear over HTTP without triggering anything.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.e2e.devserver import start_dev_server

LEAD = timedelta(seconds=8)  # `durable dev` is up in about 5 s
GAP = timedelta(seconds=3)
SWEEP_INTERVAL = timedelta(seconds=2)  # DevOptions.sweep_interval
SLACK = timedelta(seconds=3)  # a sweep's own time, and a busy machine's


def _instants() -> tuple[datetime, datetime]:
    """Two whole-second instants, `GAP` apart in the same minute, at least `LEAD` from now."""
    first = (datetime.now(UTC) + LEAD).replace(microsecond=0)
    if first.second + GAP.seconds > 59:
        first = first.replace(second=0) + timedelta(minutes=1)
    return first, first + GAP


def _scheduled_runs(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/runs", params={"task_id": "e2e-scheduled", "limit": 100})
    response.raise_for_status()
    # The list carries summaries: each run is read whole, for its result.
    runs: list[dict[str, Any]] = [
        api.get(f"/runs/{summary['run_id']}").raise_for_status().json()
        for summary in response.json()["runs"]
    ]
    return sorted(runs, key=lambda run: run["started_at"])


def test_durable_dev_fires_each_scheduled_instant_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: a task due at two instants a few seconds from now (seconds, minute, hour, day...)
    first, second = _instants()
    cron = f"{first.second},{second.second} {first.minute} {first.hour} {first.day} {first.month} *"
    monkeypatch.setenv("E2E_SCHEDULE_CRON", cron)
    server = start_dev_server("--tasks", "tests.e2e.e2e_scheduled")
    ready = datetime.now(UTC)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as api:
            # when: nobody triggers anything, and the instants pass
            deadline = time.monotonic() + (second - ready).total_seconds() + 20
            runs = _scheduled_runs(api)
            while not (len(runs) == 2 and all(r["status"] == "COMPLETED" for r in runs)):
                if time.monotonic() > deadline:
                    pytest.fail(f"runs: {runs}\n--- durable dev ---\n{server.output[-4000:]}")
                time.sleep(0.2)
                runs = _scheduled_runs(api)
            # a few more sweeps go by, their lookback still covering both instants
            time.sleep((SWEEP_INTERVAL * 2 + timedelta(seconds=0.5)).total_seconds())
            again = _scheduled_runs(api)
    finally:
        code = server.stop()
    assert code == 0, server.output[-3000:]

    # then: one run per instant, started_at the instant, fired within a sweep of it
    assert [run["run_id"] for run in again] == [run["run_id"] for run in runs]
    instants = [first, second]
    assert [datetime.fromisoformat(run["started_at"]) for run in runs] == instants
    assert [run["idempotency_key"] for run in runs] == [
        f"cron:e2e-scheduled:{instant.isoformat()}" for instant in instants
    ]
    assert [run["result"] for run in runs] == [
        {"started_at": instant.isoformat(), "payload": None} for instant in instants
    ]
    for run, instant in zip(runs, instants, strict=True):
        late = datetime.fromisoformat(run["created_at"]) - instant
        # an instant that passed while the server was starting fires at its first sweep
        allowed = max(ready - instant, timedelta(0)) + SWEEP_INTERVAL + SLACK
        assert timedelta(0) <= late <= allowed, (run, ready)
