"""Rate limits and debounce in `durable dev`, with real worker processes and the wall clock.

Its own dev server runs `tests.e2e.e2e_admission`: 6 runs of a task limited to 2 starts
per 5 seconds start at most 2 in any 5-second window, over three windows (read from their
`started_at`, which the worker's lease writes); 3 triggers of a debounced task a second
apart make one run, which runs with the last payload, a debounce period after the last one.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.e2e.devserver import TERMINAL, start_dev_server

PERIOD = timedelta(seconds=5)


def _run(api: httpx.Client, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = api.get(f"/runs/{run_id}").raise_for_status().json()
    return run


def _wait(api: httpx.Client, run_ids: list[str], output: Any, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while not all(_run(api, run_id)["status"] in TERMINAL for run_id in run_ids):
        if time.monotonic() > deadline:
            pytest.fail(f"runs not finished\n--- durable dev ---\n{output()[-4000:]}")
        time.sleep(0.2)


def _window(started_at: str) -> int:
    return int(datetime.fromisoformat(started_at).timestamp() // PERIOD.total_seconds())


@pytest.mark.e2e
def test_durable_dev_spreads_a_rate_limit_and_debounces() -> None:
    server = start_dev_server("--tasks", "tests.e2e.e2e_admission")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as api:
            limited = [
                api.post("/tasks/e2e-limited/runs", json={"payload": n}).raise_for_status().json()
                for n in range(6)
            ]
            debounced = []
            for n in range(3):
                answer = api.post("/tasks/e2e-debounced/runs", json={"payload": {"v": n}})
                debounced.append(answer.raise_for_status().json())
                last_trigger = time.time()
                time.sleep(1)
            ids = [answer["run_id"] for answer in limited]
            _wait(api, [*ids, debounced[0]["run_id"]], lambda: server.output)
            runs = [_run(api, run_id) for run_id in ids]
            assert [run["status"] for run in runs] == ["COMPLETED"] * 6
            assert sorted(run["result"] for run in runs) == list(range(6))
            per_window = Counter(_window(run["started_at"]) for run in runs)
            # Never more than 2 starts in a window: 3 windows, or more if workers were late
            # (a run that comes after its window takes a place in a later one).
            assert max(per_window.values()) == 2 and len(per_window) >= 3, per_window
            # Debounce: one run, the last payload, started a period after the last trigger.
            assert [answer["created"] for answer in debounced] == [True, False, False]
            assert len({answer["run_id"] for answer in debounced}) == 1
            run = _run(api, debounced[0]["run_id"])
            assert (run["status"], run["result"]) == ("COMPLETED", {"v": 2})
            started = datetime.fromisoformat(run["started_at"]).timestamp()
            assert started >= last_trigger + 3 - 0.5  # the server stamps its own clock
            listed = api.get("/runs", params={"task_id": "e2e-debounced"}).json()["runs"]
            assert len(listed) == 1
    finally:
        assert server.stop() == 0, server.output[-3000:]
