"""End to end over HTTP: a queue's concurrency limit on `durable dev` with 8 worker
processes. 50 runs share a queue of concurrency 5, each holding its slot for a second:
from the checkpoints' timestamps (each step attempt's start and end), never more than 5
execute at once, all complete, and the total time is printed (close to 10 s: 50 runs / 5
slots x 1 s; not asserted). A second key gets its own 5 slots alongside."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from tests.e2e.devserver import DevServer, start_dev_server

pytestmark = pytest.mark.e2e

RUNS = 50
LIMIT = 5


@pytest.fixture(scope="module")
def pool_server() -> Iterator[DevServer]:
    server = start_dev_server("--concurrency", "8", tasks="tests.e2e.e2e_queue_tasks")
    yield server
    assert server.stop() == 0, server.output[-3000:]


def trigger(api: httpx.Client, key: str | None = None, seconds: float = 1.0) -> str:
    body: dict[str, object] = {"payload": {"seconds": seconds}}
    if key is not None:
        body["concurrency_key"] = key
    response = api.post("/tasks/hold-slot/runs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


def step_window(api: httpx.Client, run_id: str) -> tuple[datetime, datetime]:
    """When the run's step attempt began and ended, from its checkpoint."""
    history = api.get(f"/runs/{run_id}/history").json()["history"]
    (done,) = [entry for entry in history if entry["kind"] == "step_completed"]
    return datetime.fromisoformat(done["started_at"]), datetime.fromisoformat(done["at"])


def most_at_once(windows: list[tuple[datetime, datetime]]) -> int:
    """The most windows open at one instant (an end before a start at the same instant)."""
    edges = sorted([(start, 1) for start, _ in windows] + [(end, -1) for _, end in windows])
    inside = most = 0
    for _, step in edges:
        inside += step
        most = max(most, inside)
    return most


def wait_all(
    api: httpx.Client, run_ids: list[str], timeout: float, seen: set[object] | None = None
) -> list[dict[str, object]]:
    """Poll the runs until all have ended; `seen` collects the (waiting_for,
    queue_position) pairs met on the way."""
    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    runs: dict[str, dict[str, object]] = {}
    while pending and time.monotonic() < deadline:
        for run_id in sorted(pending):
            run = api.get(f"/runs/{run_id}").json()
            if seen is not None:
                seen.add((run["waiting_for"], run["queue_position"]))
            if run["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
                runs[run_id] = run
                pending.discard(run_id)
        time.sleep(0.2)
    assert not pending, f"{len(pending)} runs not finished after {timeout}s"
    return [runs[run_id] for run_id in run_ids]


def test_fifty_runs_never_more_than_five_at_once(pool_server: DevServer) -> None:
    with httpx.Client(base_url=pool_server.url, timeout=30) as api:
        began = time.monotonic()
        run_ids = [trigger(api) for _ in range(RUNS)]
        seen: set[object] = set()
        runs = wait_all(api, run_ids, timeout=120, seen=seen)
        took = time.monotonic() - began
        # Runs beyond the limit waited, visibly, in their queue, with their place in it.
        assert any(
            isinstance(place, tuple) and place[0] == "queue:e2e-pool" and place[1] for place in seen
        ), seen
        assert [run["status"] for run in runs] == ["COMPLETED"] * RUNS
        windows = [step_window(api, run_id) for run_id in run_ids]
        first, last = min(s for s, _ in windows), max(e for _, e in windows)
        print(
            f"\n{RUNS} runs at concurrency {LIMIT}: at most {most_at_once(windows)} at once, "
            f"steps from first start to last end {(last - first).total_seconds():.1f} s, "
            f"all done {took:.1f} s after the first trigger"
        )
        assert most_at_once(windows) <= LIMIT
        queue = api.get("/queues/e2e-pool").json()
        assert (queue["running"], queue["waiting"]) == (0, 0)


def test_two_keys_each_get_their_own_five(pool_server: DevServer) -> None:
    with httpx.Client(base_url=pool_server.url, timeout=30) as api:
        # The keys' triggers alternate and each run holds its slot 2 s, so both keys have
        # runs ready from the start however slowly a loaded machine answers the triggers
        # (one key's 10 triggered first could finish before the other's began).
        by_key: dict[str, list[str]] = {"tenant-a": [], "tenant-b": []}
        for _ in range(10):
            for key, ids in by_key.items():
                ids.append(trigger(api, key, seconds=2.0))
        runs = wait_all(api, [run for ids in by_key.values() for run in ids], timeout=120)
        assert {run["status"] for run in runs} == {"COMPLETED"}
        windows = {key: [step_window(api, run) for run in ids] for key, ids in by_key.items()}
        most = {key: most_at_once(found) for key, found in windows.items()}
        both = most_at_once([window for found in windows.values() for window in found])
        print(f"\ntwo keys of 10 runs: at most {most} at once per key, {both} in all")
        assert all(count <= LIMIT for count in most.values())
        assert both > LIMIT  # the keys ran alongside: neither took the other's slots
