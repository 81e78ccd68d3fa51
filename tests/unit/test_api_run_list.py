"""`GET /runs`: summaries (no payload, no result) and the creation-time filters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.test_api import Api

from durable import Context, TaskRegistry, task
from durable.testing import TestEnvironment

SUMMARY_FIELDS = {
    "run_id",
    "task_id",
    "status",
    "attempts",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "waiting_for",
    "wake_at",
    "parent_run_id",
    "idempotency_key",  # bounded (256 characters), and how a caller finds its run
    "error",
    "tags",  # bounded (10 of 64 characters); the metadata is the run's alone
}


def _registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="echo", registry=registry)
    def echo(ctx: Context, payload: Any) -> Any:
        return payload

    @task(id="other", registry=registry)
    def other(ctx: Context, payload: Any) -> Any:
        return None

    return registry


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=_registry()) as environment:
        yield environment


@pytest.fixture
def api(env: TestEnvironment) -> Api:
    return Api(env.client)


def test_the_list_carries_summaries_while_the_run_keeps_its_values(
    api: Api, env: TestEnvironment
) -> None:
    big = "x" * (5 * 1024 * 1024)
    run_id = env.trigger("echo", big).run_id
    env.run_until_complete(run_id)

    listing = api.get("/runs")

    assert listing.status == 200
    (summary,) = listing.json["runs"]
    assert set(summary) == SUMMARY_FIELDS
    assert summary["status"] == "COMPLETED" and summary["error"] is None
    assert len(listing.text) < 2_000  # was over 10 MB: the payload and the result, each 5 MB
    run = api.get(f"/runs/{run_id}").json
    assert run["payload"] == big and run["result"] == big


def test_runs_between_two_instants_with_task_status_and_paging(
    api: Api, env: TestEnvironment
) -> None:
    start = env.now()
    made: list[str] = []
    for minute in range(10):
        made.append(env.trigger("echo" if minute % 2 == 0 else "other", minute).run_id)
        env.clock.advance(timedelta(minutes=1))
    window = {
        "created_after": (start + timedelta(minutes=2)).isoformat(),
        "created_before": (start + timedelta(minutes=7)).isoformat(),
    }

    def listed(**query: str) -> list[str]:
        ids: list[str] = []
        cursor = None
        while True:
            reply = api.get("/runs", query={**query, **({"cursor": cursor} if cursor else {})})
            assert reply.status == 200, reply.text
            ids += [run["run_id"] for run in reply.json["runs"]]
            cursor = reply.json["next_cursor"]
            if cursor is None:
                return ids

    assert listed(**window) == made[6:1:-1]
    assert listed(**window, limit="2") == made[6:1:-1]
    assert listed(**window, task_id="echo") == [made[6], made[4], made[2]]
    assert listed(**window, task_id="echo", status="QUEUED", limit="1") == [
        made[6],
        made[4],
        made[2],
    ]
    # A naive instant is UTC; one bound alone is a half-open range.
    naive = (start + timedelta(minutes=8)).replace(tzinfo=None).isoformat()
    assert listed(created_after=naive) == [made[9], made[8]]
    assert listed(created_before=(start + timedelta(minutes=1)).isoformat()) == [made[0]]


def test_extreme_and_empty_ranges_answer_on_dynamodb() -> None:
    with TestEnvironment(registry=_registry(), backend="moto") as env:
        api = Api(env.client)
        run_id = env.trigger("echo", 1).run_id
        cases = [
            ({"created_after": "0001-01-01T00:00:00+14:00"}, [run_id]),
            ({"created_before": "0001-01-01T00:00:00+14:00"}, []),
            ({"created_after": "9999-12-31T23:59:59-14:00"}, []),
            ({"created_before": "9999-12-31T23:59:59-14:00"}, [run_id]),
            ({"created_after": "2031-01-01", "created_before": "2029-01-01"}, []),
        ]
        for query, expected in cases:
            reply = api.get("/runs", query={**query, "status": "QUEUED"})
            assert reply.status == 200, reply.text
            assert [run["run_id"] for run in reply.json["runs"]] == expected


@pytest.mark.parametrize("field", ["created_after", "created_before"])
@pytest.mark.parametrize(
    "value", ["yesterday", "2030-13-01T00:00:00Z", "", "1e400", "nan", "-99999999999999"]
)
def test_a_bad_instant_is_400_with_a_json_body(api: Api, field: str, value: str) -> None:
    reply = api.get("/runs", query={field: value})

    assert reply.status == 400
    assert reply.error_code == "invalid_request"
    assert reply.json["error"]["details"][0]["loc"] == ["query", field]


def test_the_openapi_document_describes_the_summaries_and_filters(api: Api) -> None:
    document = api.get("/openapi.json").json
    parameters = {p["name"] for p in document["paths"]["/runs"]["get"]["parameters"]}
    assert {"created_after", "created_before", "task_id", "status"} <= parameters
    summary = document["components"]["schemas"]["RunSummary"]["properties"]
    assert "payload" not in summary and "result" not in summary
