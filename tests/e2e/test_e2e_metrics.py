"""GET /metrics and `durable stats` against `durable dev`: SQS's figures from the moto
server, the worker limit from the container pool, and per-task figures of real runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, WaitFor

pytestmark = pytest.mark.e2e


def _task(figures: dict[str, Any], task_id: str) -> dict[str, Any]:
    [found] = [task for task in figures["tasks"] if task["task_id"] == task_id]
    return found


def test_metrics_count_the_runs_of_the_dev_stack(
    api: httpx.Client, wait_for: WaitFor, cli: Cli
) -> None:
    before = api.get("/metrics").json()
    hello_before = _task(before, "e2e-hello")
    # given a run that completes and one that waits for its event
    done = api.post("/tasks/e2e-hello/runs", json={"payload": {"name": "Ida"}}).json()
    wait_for(done["run_id"], {"COMPLETED"})
    waiting = api.post("/tasks/e2e-wait-event/runs", json={"payload": {}}).json()
    wait_for(waiting["run_id"], {"WAITING"})

    reply = api.get("/metrics")

    assert reply.status_code == 200
    figures = reply.json()
    assert figures["queue"]["name"] == "durable-wakeups"
    assert figures["dead_letter"] == {"name": "durable-wakeups-dlq", "depth": 0}
    assert figures["workers"]["limit"] == 4  # `durable dev`'s pool (--concurrency)
    assert 0 <= figures["workers"]["in_use"] <= 4
    hello = _task(figures, "e2e-hello")
    assert hello["by_status"]["COMPLETED"] == hello_before["by_status"]["COMPLETED"] + 1
    started = hello_before["last_hour"]["started"] + 1
    assert hello["last_hour"]["started"] == started
    assert hello["last_hour"]["p50_seconds"] is not None
    assert _task(figures, "e2e-wait-event")["by_status"]["WAITING"] >= 1

    # and the CLI shows the same, as a table and as JSON
    table = cli("stats")
    assert table.returncode == 0, table.stderr
    assert "queue durable-wakeups:" in table.stdout
    assert "workers:" in table.stdout and "of 4" in table.stdout
    [row] = [line for line in table.stdout.splitlines() if line.startswith("e2e-hello ")]
    assert row.split()[5] == str(hello["by_status"]["COMPLETED"])
    as_json = cli("stats", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert _task(json.loads(as_json.stdout), "e2e-hello")["by_status"] == hello["by_status"]

    api.post(f"/runs/{waiting['run_id']}/cancel")
