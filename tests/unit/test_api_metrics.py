"""`GET /metrics` through the API's resolver: the contract's shape, figures of real runs."""

from __future__ import annotations

from tests.unit.test_api import Api, make_registry

from durable.testing import TestEnvironment

STATUSES = {"QUEUED", "RUNNING", "WAITING", "RETRYING", "COMPLETED", "FAILED", "CANCELLED"}
STATUSES |= {"TIMED_OUT"}
LAST_HOUR = {
    "started",
    "completed",
    "failed",
    "cancelled",
    "timed_out",
    "step_retries",
    "attempt_retries",
    "held",
    "retry_rate",
    "p50_seconds",
    "p95_seconds",
}


def test_metrics_answers_the_contract_shape_with_the_runs_figures() -> None:
    with TestEnvironment(registry=make_registry()) as env:
        api = Api(env.client)
        # given a run that completes after a task retry, and one waiting for its event
        flaky = env.trigger("flaky")
        env.run_until_complete(flaky.run_id)
        env.trigger("approval")
        env.run_until_idle()

        reply = api.get("/metrics")

    assert reply.status == 200
    body = reply.json
    assert set(body) >= {"generated_at", "queue", "dead_letter", "workers", "tasks", "totals"}
    assert body["generated_at"].endswith("Z")
    assert set(body["queue"]) == {"name", "depth", "in_flight", "delayed"}
    assert set(body["dead_letter"]) == {"name", "depth"}
    assert set(body["workers"]) == {"in_use", "limit"}
    tasks = {task["task_id"]: task for task in body["tasks"]}
    assert set(tasks) == set(make_registry().ids())
    for task in tasks.values():
        assert set(task) == {"task_id", "by_status", "last_hour", "held"}
        assert set(task["by_status"]) == STATUSES
        assert set(task["last_hour"]) == LAST_HOUR
    assert tasks["flaky"]["by_status"]["COMPLETED"] == 1
    assert tasks["flaky"]["last_hour"]["attempt_retries"] == 1
    assert tasks["flaky"]["last_hour"]["retry_rate"] == 1.0
    assert tasks["approval"]["by_status"]["WAITING"] == 1
    assert set(body["totals"]["by_status"]) == STATUSES
    assert body["totals"]["by_status"]["WAITING"] == 1


def test_metrics_is_in_the_openapi_document() -> None:
    with TestEnvironment(registry=make_registry()) as env:
        document = Api(env.client).get("/openapi.json").json
    response = document["paths"]["/metrics"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"]["$ref"].endswith("MetricsResponse")
