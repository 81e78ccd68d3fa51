"""End to end over HTTP: `durable dev` runs tasks on moto, SQS redelivery and worker processes."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
from tests.e2e.e2e_tasks import executions

if TYPE_CHECKING:
    from tests.e2e.conftest import WaitFor
    from tests.e2e.devserver import DevServer

pytestmark = pytest.mark.e2e


def trigger(api: httpx.Client, task_id: str, payload: object, **extra: object) -> str:
    response = api.post(f"/tasks/{task_id}/runs", json={"payload": payload, **extra})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "QUEUED"
    return str(body["run_id"])


def test_a_triggered_run_completes(api: httpx.Client, wait_for: WaitFor) -> None:
    run_id = trigger(api, "e2e-hello", {"name": "Ada"})

    run = wait_for(run_id)

    assert run["status"] == "COMPLETED"
    assert run["result"] == {"greeting": "hello, Ada"}
    assert run["payload"] == {"name": "Ada"}
    history = api.get(f"/runs/{run_id}/history").json()["history"]
    assert [(entry["kind"], entry["name"]) for entry in history] == [("step_completed", "greet")]
    listed = api.get("/runs", params={"task_id": "e2e-hello"}).json()["runs"]
    assert run_id in [item["run_id"] for item in listed]


def test_the_same_idempotency_key_gives_the_same_run(api: httpx.Client) -> None:
    body = {"payload": {"name": "Bo"}, "idempotency_key": f"key-{time.monotonic_ns()}"}
    first = api.post("/tasks/e2e-hello/runs", json=body).json()
    second = api.post("/tasks/e2e-hello/runs", json=body).json()

    assert second["run_id"] == first["run_id"]
    assert (first["created"], second["created"]) == (True, False)


def test_a_crashed_invocation_resumes_without_rerunning_completed_steps(
    api: httpx.Client, wait_for: WaitFor, dev_server: DevServer, tmp_path: Path
) -> None:
    # given a task whose process dies (os._exit) right after its first step completed
    run_id = trigger(api, "e2e-crash-once", {"dir": str(tmp_path)})

    # when SQS redelivers the message after the visibility timeout
    run = wait_for(run_id, timeout=40)

    # then the run completes, and the step before the crash ran once only
    assert run["status"] == "COMPLETED", run
    assert run["result"] == {"first": 1, "crash": "survived", "after": 1}
    assert executions(tmp_path, "first") == 1
    assert executions(tmp_path, "crash") == 2
    assert executions(tmp_path, "after") == 1
    assert dev_server.saw(f"{run_id} (start) crashed")


def test_an_invocation_over_the_time_limit_is_killed_and_retried(
    api: httpx.Client, wait_for: WaitFor, dev_server: DevServer, tmp_path: Path
) -> None:
    run_id = trigger(api, "e2e-hang-once", {"dir": str(tmp_path)})

    run = wait_for(run_id, timeout=40)

    assert run["status"] == "COMPLETED", run
    assert run["result"] == {"first": 1, "hang": "finished"}
    assert executions(tmp_path, "first") == 1
    assert executions(tmp_path, "hang") == 2
    assert dev_server.saw(f"{run_id} (start) timed out")


def test_a_long_run_hands_over_before_the_time_limit(
    api: httpx.Client, wait_for: WaitFor, dev_server: DevServer, tmp_path: Path
) -> None:
    # ten half-second steps do not fit one 4-second invocation; each fits the 1 s margin
    payload = {"dir": str(tmp_path), "steps": 10, "seconds": 0.5}
    run_id = trigger(api, "e2e-slow-steps", payload)

    run = wait_for(run_id, timeout=40)

    assert run["status"] == "COMPLETED", run
    assert run["result"] == [1] * 10  # every step ran exactly once: none was killed
    assert dev_server.saw(f"{run_id} (continue) ok")
    assert f"{run_id} (start) timed out" not in dev_server.output


def test_a_sleeping_run_wakes_up_after_its_duration(api: httpx.Client, wait_for: WaitFor) -> None:
    started = time.monotonic()
    run_id = trigger(api, "e2e-sleep", {"seconds": 2})

    waiting = wait_for(run_id, {"WAITING", "COMPLETED"})
    assert waiting["status"] == "WAITING"
    assert waiting["wake_at"] is not None
    run = wait_for(run_id, timeout=30)

    assert run["status"] == "COMPLETED"
    assert run["result"]["slept"] >= 2
    assert time.monotonic() - started >= 2


def test_an_event_resumes_a_waiting_run(api: httpx.Client, wait_for: WaitFor) -> None:
    run_id = trigger(api, "e2e-wait-event", {})
    waiting = wait_for(run_id, {"WAITING"})
    assert waiting["waiting_for"] == "approval"

    sent = api.post(f"/runs/{run_id}/events/approval", json={"data": {"approved": True}})
    assert sent.status_code == 202, sent.text

    run = wait_for(run_id)
    assert run["status"] == "COMPLETED"
    assert run["result"] == {"received": {"approved": True}}
    kinds = [entry["kind"] for entry in api.get(f"/runs/{run_id}/history").json()["history"]]
    assert kinds == ["wait_started", "event_received"]


def test_a_cancelled_run_stays_cancelled(api: httpx.Client, wait_for: WaitFor) -> None:
    run_id = trigger(api, "e2e-wait-event", {})
    wait_for(run_id, {"WAITING"})

    cancelled = api.post(f"/runs/{run_id}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    late = api.post(f"/runs/{run_id}/events/approval", json={"data": 1})
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "run_finished"
    again = api.post(f"/runs/{run_id}/cancel")
    assert again.status_code == 409
    time.sleep(1)  # a wake-up already in flight must not revive it
    assert api.get(f"/runs/{run_id}").json()["status"] == "CANCELLED"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/tasks/no-such-task/runs", {"payload": {}}, 404, "unknown_task"),
        ("POST", "/tasks/e2e-hello/runs", {"payload": {"name": ""}}, 422, "invalid_payload"),
        ("POST", "/tasks/e2e-hello/runs", {"payload": {}}, 422, "invalid_payload"),
        ("POST", "/tasks/e2e-hello/runs", b'{"payload": ', 400, "malformed_json"),
        ("GET", "/runs/run_nope", None, 404, "run_not_found"),
        ("GET", "/runs/run_nope/history", None, 404, "run_not_found"),
        ("POST", "/runs/run_nope/cancel", None, 404, "run_not_found"),
        ("POST", "/runs/run_nope/events/approval", {"data": 1}, 404, "run_not_found"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(
    api: httpx.Client,
    method: str,
    path: str,
    body: object,
    status: int,
    code: str,
) -> None:
    before = len(api.get("/runs", params={"limit": 1000}).json()["runs"])
    if isinstance(body, bytes):
        response = api.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
    else:
        response = api.request(method, path, json=body)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert len(api.get("/runs", params={"limit": 1000}).json()["runs"]) == before


def test_a_body_over_6_mb_is_refused_before_it_is_read(dev_server: DevServer) -> None:
    # given a request that announces 7 MB and sends none of it
    address = urlsplit(dev_server.url)
    connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=10)
    connection.putrequest("POST", "/tasks/e2e-hello/runs")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(7 * 1024 * 1024))
    connection.endheaders()

    # then the answer comes at once
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "payload_too_large"
    connection.close()


def test_a_large_payload_under_the_limit_is_accepted(api: httpx.Client, wait_for: WaitFor) -> None:
    name = "x" * (1024 * 1024)  # over a DynamoDB item: stored in S3
    run_id = trigger(api, "e2e-hello", {"name": name})

    run = wait_for(run_id)

    assert run["status"] == "COMPLETED"
    assert run["result"] == {"greeting": f"hello, {name}"}


def test_the_dashboard_and_openapi_are_served(api: httpx.Client) -> None:
    assert api.get("/").status_code == 200
    document = api.get("/openapi.json").json()
    assert "/tasks/{task_id}/runs" in document["paths"]
