"""End to end over HTTP and the CLI: `durable dev`'s API lists the tasks its workers run
(`GET /tasks`, `durable tasks`), with their schemas and an example that starts a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, WaitFor

pytestmark = pytest.mark.e2e

EXAMPLE_TASKS = {
    "approval-gate",
    "book-trip",
    "daily-report",
    "extract-document",
    "process-order",
    "process-batch",
    "scrape-with-retries",
}
E2E_TASKS = {"e2e-hello", "e2e-chain", "e2e-wait-event", "e2e-map-naps"}


def test_get_tasks_lists_the_example_tasks_with_schemas(
    api: httpx.Client, wait_for: WaitFor
) -> None:
    response = api.get("/tasks")

    assert response.status_code == 200, response.text
    tasks = {item["task_id"]: item for item in response.json()["tasks"]}
    assert set(tasks) >= EXAMPLE_TASKS | E2E_TASKS
    order = tasks["process-order"]
    assert order["payload_schema"]["title"] == "OrderIn"
    assert order["payload_schema"]["required"] == ["order_id"]
    assert order["result_schema"]["title"] == "OrderOut"
    assert (order["retry"]["max_attempts"], order["timeout_seconds"]) == (5, 2 * 86400.0)
    assert order["payload_example"]["order_id"]
    assert tasks["daily-report"]["schedule"]["cron"] == "0 9 * * *"
    assert tasks["daily-report"]["schedule"]["next_at"].endswith("09:00:00Z")
    assert tasks["process-batch"]["is_async"] is True
    for task_id, item in tasks.items():
        assert isinstance(item["payload_schema"], dict), task_id
        assert isinstance(item["result_schema"], dict), task_id

    # the listed example starts a run that a worker process completes: it knows the task too
    hello = api.get("/tasks/e2e-hello").json()
    assert hello["payload_example"] == {"name": "string"}
    started = api.post("/tasks/e2e-hello/runs", json={"payload": hello["payload_example"]})
    assert started.status_code == 202, started.text
    run = wait_for(started.json()["run_id"])
    assert (run["status"], run["result"]) == ("COMPLETED", {"greeting": "hello, string"})

    # and the OpenAPI document has its own trigger
    document = api.get("/openapi.json").json()
    assert "/tasks/e2e-hello/runs" in document["paths"]
    assert document["components"]["schemas"]["e2e-hello.Payload"]["required"] == ["name"]


def test_durable_tasks_prints_the_table_and_refuses_an_unknown_task(cli: Cli) -> None:
    listed = cli("tasks")

    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert set(rows) >= EXAMPLE_TASKS
    assert "5 tries 1s..1m ×2" in rows["process-order"]
    assert "order_id, cool_off_seconds?" in rows["process-order"]

    unknown = cli("tasks", "no-such-task")
    assert unknown.returncode == 2
    assert "no task registered with id 'no-such-task'" in unknown.stderr
