"""`GET /runs/{run_id}/timeline` and the run page's HTML negotiation on `GET /runs/{run_id}`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from tests.unit.test_api import Api

from durable import Context, RetryPolicy, TaskRegistry, task
from durable.testing import TestEnvironment


def _registry() -> TaskRegistry:
    registry = TaskRegistry()
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("try again")
        return "ok"

    @task(id="flaky-then-wait", registry=registry)
    def flaky_then_wait(ctx: Context, payload: None) -> object:
        policy = RetryPolicy(max_attempts=3, min_delay=timedelta(seconds=1), jitter=0)
        ctx.step("call", flaky, retry=policy)
        return ctx.wait_for_event("approval", timeout=timedelta(hours=2))

    return registry


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=_registry()) as environment:
        yield environment


@pytest.fixture
def api(env: TestEnvironment) -> Api:
    return Api(env.client)


def test_the_timeline_of_a_waiting_run(api: Api, env: TestEnvironment) -> None:
    run_id = env.trigger("flaky-then-wait").run_id
    env.run_until_complete(run_id)

    reply = api.get(f"/runs/{run_id}/timeline")

    assert reply.status == 200, reply.text
    body = reply.json
    assert (body["run_id"], body["task_id"], body["status"], body["live"]) == (
        run_id,
        "flaky-then-wait",
        "WAITING",
        True,
    )
    assert body["waiting"]["for"] == "event:approval"  # "for", not the model's for_
    assert body["waiting"]["until"] is not None
    step, wait = body["operations"]
    assert [bar["outcome"] for bar in step["attempts"]] == ["failed", "failed", "completed"]
    assert [gap["label"] for gap in step["gaps"]] == ["backoff 1.0 s", "backoff 2.0 s"]
    assert all("from" in gap and "until" in gap for gap in step["gaps"])
    assert step["attempts"][0]["error"]["traceback"]  # the run page shows it
    assert (wait["kind"], wait["status"], wait["ended_at"]) == ("wait_for_event", "waiting", None)
    assert body["attempts"] == [
        {
            "task_attempt": 1,
            "started_at": body["started_at"],
            "ended_at": None,
            "outcome": "waiting",
            "error": None,
            "retry_at": None,
        }
    ]

    history = api.get(f"/runs/{run_id}/history").json["history"]
    step_ends = [entry for entry in history if entry["kind"] in ("step_failed", "step_completed")]
    assert [entry["started_at"] for entry in step_ends] == [
        bar["started_at"] for bar in step["attempts"]
    ]
    assert all(entry["started_at"] for entry in step_ends)
    assert history[-1]["kind"] == "wait_started" and history[-1]["started_at"] is None

    api.post(f"/runs/{run_id}/events/approval", {"data": "yes"})
    env.run_until_complete(run_id)
    body = api.get(f"/runs/{run_id}/timeline").json
    assert body["live"] is False and body["waiting"] is None
    assert body["operations"][1]["ended_by"] == "event"


def test_the_timeline_of_an_unknown_run_is_404_and_a_malformed_id_400(api: Api) -> None:
    assert api.get("/runs/run_nope/timeline").error_code == "run_not_found"
    reply = api.get("/runs/" + "x" * 600 + "/timeline")
    assert reply.status == 400 and reply.json["error"]["code"]


def test_the_openapi_document_describes_the_timeline(api: Api) -> None:
    document = api.get("/openapi.json").json
    operation = document["paths"]["/runs/{run_id}/timeline"]["get"]
    assert set(operation["responses"]) == {"200", "400", "404"}
    schemas = document["components"]["schemas"]
    assert {"TimelineResponse", "TimelineOperation", "BackoffGap"} <= set(schemas)
    assert "for" in schemas["TimelineWaiting"]["properties"]


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_a_browser_navigating_to_a_run_gets_the_dashboard_page(
    api: Api, env: TestEnvironment
) -> None:
    from durable.api.app import _dashboard_html

    run_id = env.trigger("flaky-then-wait").run_id

    reply = api.get(f"/runs/{run_id}", headers={"accept": BROWSER_ACCEPT})

    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.headers["Vary"] == "Accept"
    assert reply.text == _dashboard_html() == api.get("/", headers={"accept": BROWSER_ACCEPT}).text


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", "application/json, text/html;q=0.5", "text/html;q=0"],
)
def test_any_other_request_for_a_run_gets_json(
    api: Api, env: TestEnvironment, accept: str | None
) -> None:
    run_id = env.trigger("flaky-then-wait").run_id

    reply = api.get(f"/runs/{run_id}", headers={"accept": accept} if accept else {})

    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json["run_id"] == run_id and "payload" in reply.json


def test_a_bad_run_id_is_400_json_even_for_a_browser(api: Api) -> None:
    reply = api.get("/runs/" + "x" * 600, headers={"accept": BROWSER_ACCEPT})
    assert reply.status == 400 and reply.json["error"]["code"]
