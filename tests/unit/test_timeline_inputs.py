"""Each step attempt's input on the run page's data: `Client.timeline`, `GET
/runs/{id}/timeline` (each attempt its own, the step its latest attempt's) and `GET
/runs/{id}/history` (`input` on the step ends)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from tests.unit.test_api import Api

from durable import Context, RetryPolicy, TaskRegistry, task
from durable.testing import TestEnvironment


class Parcel(BaseModel):
    parcel_id: str
    grams: int


def _registry() -> TaskRegistry:
    registry = TaskRegistry()
    calls: list[int] = []

    def ship(parcel: Parcel, priority: int, *, express: bool) -> str:
        calls.append(priority)
        if len(calls) < 3:
            raise ConnectionError("carrier down")
        return f"shipped {parcel.parcel_id}"

    @task(id="ship", registry=registry)
    def shipping(ctx: Context, payload: dict[str, Any]) -> str:
        parcel = Parcel(parcel_id=payload["parcel"], grams=1200)
        ctx.step("weigh", lambda: 1200)  # no arguments: no input
        policy = RetryPolicy(max_attempts=3, min_delay=timedelta(seconds=1), jitter=0)
        return ctx.step("ship", ship, parcel, 7, express=True, retry=policy)

    return registry


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=_registry()) as environment:
        yield environment


GIVEN = {"args": [{"parcel_id": "p-9", "grams": 1200}, 7], "kwargs": {"express": True}}


def test_every_step_attempt_shows_its_input(env: TestEnvironment) -> None:
    run_id = env.trigger("ship", {"parcel": "p-9"}).run_id
    env.run_until_complete(run_id)

    timeline = env.client.timeline(run_id)

    weigh, ship = (op for op in timeline["operations"] if op["kind"] == "step")
    assert (weigh["name"], weigh["input"], [bar["input"] for bar in weigh["attempts"]]) == (
        "weigh",
        None,
        [None],
    )
    assert [(bar["attempt"], bar["outcome"], bar["input"]) for bar in ship["attempts"]] == [
        (1, "failed", GIVEN),
        (2, "failed", GIVEN),
        (3, "completed", GIVEN),
    ]
    assert (ship["input"], ship["value"]) == (GIVEN, "shipped p-9")


def test_the_api_serves_inputs_in_the_timeline_and_the_history(env: TestEnvironment) -> None:
    api = Api(env.client)
    run_id = env.trigger("ship", {"parcel": "p-9"}).run_id
    env.run_until_idle()  # attempt 1 failed: the step waits to retry

    live = api.get(f"/runs/{run_id}/timeline")
    env.run_until_complete(run_id)
    ended = api.get(f"/runs/{run_id}/timeline")
    history = api.get(f"/runs/{run_id}/history")

    assert live.status == ended.status == history.status == 200
    (retrying,) = [op for op in live.json["operations"] if op["name"] == "ship"]
    assert (retrying["status"], retrying["input"]) == ("retrying", GIVEN)
    assert [bar["input"] for bar in retrying["attempts"]] == [GIVEN]
    (done,) = [op for op in ended.json["operations"] if op["name"] == "ship"]
    assert [bar["input"] for bar in done["attempts"]] == [GIVEN, GIVEN, GIVEN]
    ends = [
        (entry["kind"], entry["name"], entry["input"])
        for entry in history.json["history"]
        if entry["kind"] in ("step_completed", "step_failed")
    ]
    assert ends == [
        ("step_completed", "weigh", None),
        ("step_failed", "ship", GIVEN),
        ("step_failed", "ship", GIVEN),
        ("step_completed", "ship", GIVEN),
    ]


def test_the_openapi_document_describes_input() -> None:
    with TestEnvironment(registry=_registry()) as env:
        schemas = Api(env.client).get("/openapi.json").json["components"]["schemas"]

    assert "input" in schemas["StepAttemptBar"]["properties"]
    assert "input" in schemas["TimelineOperation"]["properties"]
    assert "input" in schemas["HistoryEntryBody"]["properties"]
