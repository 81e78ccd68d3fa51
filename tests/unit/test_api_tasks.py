"""`GET /tasks`, `GET /tasks/{task_id}` and the tasks in the OpenAPI document
(`durable.api.tasks`), over the memory backend: read-only, so every case also checks that
nothing was stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from tests.unit.test_api import Api, assert_nothing_stored

from durable import AsyncContext, Context, RetryPolicy, TaskRegistry, task
from durable.testing import Faults, TestEnvironment

EXAMPLE = {"order_id": "o-1", "items": [{"sku": "A", "quantity": 2}]}


class LineItem(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(ge=1)


class OrderIn(BaseModel):
    """An order to ship."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    order_id: str
    items: list[LineItem] = Field(min_length=1)


class Shipment(BaseModel):
    order_id: str
    shipped_at: datetime


class Report(BaseModel):
    title: str = "Daily"


def make_registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(
        id="ship-order",
        registry=registry,
        version="3",
        retry=RetryPolicy(
            max_attempts=5,
            factor=3.0,
            min_delay=timedelta(seconds=2),
            max_delay=timedelta(minutes=2),
            non_retryable=(ValueError, KeyError),
        ),
        timeout=timedelta(hours=1),
    )
    def ship_order(ctx: Context, payload: OrderIn) -> Shipment:
        """Ship an order: reserve, pack and hand to the carrier.

        Later lines are not the description.
        """
        return Shipment(order_id=payload.order_id, shipped_at=ctx.now())

    @task(id="report", registry=registry, cron="30 9 * * *", timezone="Europe/Paris")
    def report(ctx: Context, payload: Report) -> str:
        return payload.title

    @task(id="anything", registry=registry)
    async def anything(ctx: AsyncContext, payload: Any) -> Any:
        return payload

    @task(id="a task/with odd ch@rs", registry=registry)
    def odd(ctx: Context, payload: int) -> int:
        return payload

    return registry


START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=make_registry(), start=START) as environment:
        yield environment


@pytest.fixture
def api(env: TestEnvironment) -> Api:
    return Api(env.client)


# -- GET /tasks -------------------------------------------------------------------------


def test_every_task_is_listed_by_id(api: Api, env: TestEnvironment) -> None:
    reply = api.get("/tasks")

    assert reply.status == 200, reply.text
    ids = [item["task_id"] for item in reply.json["tasks"]]
    assert ids == ["a task/with odd ch@rs", "anything", "report", "ship-order"]
    assert_nothing_stored(env)


def test_a_task_shows_how_it_runs(api: Api) -> None:
    item = api.get("/tasks/ship-order").json

    assert item["task_id"] == "ship-order"
    assert item["version"] == "3"
    assert item["retry"] == {
        "max_attempts": 5,
        "factor": 3.0,
        "min_delay_seconds": 2.0,
        "max_delay_seconds": 120.0,
        "jitter": 0.2,
        "non_retryable": ["ValueError", "KeyError"],
    }
    assert item["timeout_seconds"] == 3600.0
    assert item["schedule"] is None
    assert item["is_async"] is False
    assert item["description"] == "Ship an order: reserve, pack and hand to the carrier."


def test_a_task_shows_what_it_takes_and_gives(api: Api) -> None:
    item = api.get("/tasks/ship-order").json

    payload = item["payload_schema"]
    assert payload["title"] == "OrderIn"
    assert payload["required"] == ["order_id", "items"]
    assert payload["properties"]["items"]["items"] == {"$ref": "#/$defs/LineItem"}
    assert set(payload["$defs"]) == {"LineItem"}  # self-contained
    assert item["result_schema"]["properties"]["shipped_at"]["format"] == "date-time"
    # the model's declared example, as written, and the task accepts it
    assert item["payload_example"] == {"order_id": "o-1", "items": [{"sku": "A", "quantity": 2}]}
    TypeAdapter(OrderIn).validate_python(item["payload_example"])


def test_a_scheduled_task_shows_its_next_instant(api: Api, env: TestEnvironment) -> None:
    item = api.get("/tasks/report").json

    # 09:30 in Paris is 08:30 UTC in winter; the clock stands at 12:00 UTC on 1 January.
    assert item["schedule"] == {
        "cron": "30 9 * * *",
        "timezone": "Europe/Paris",
        "next_at": "2030-01-02T08:30:00Z",
    }
    assert item["payload_example"] == {"title": "Daily"}

    env.advance(timedelta(days=1))
    assert api.get("/tasks/report").json["schedule"]["next_at"] == "2030-01-03T08:30:00Z"


def test_an_async_task_with_any_payload(api: Api) -> None:
    item = api.get("/tasks/anything").json

    assert item["is_async"] is True
    assert item["payload_schema"] == {} and item["result_schema"] == {}
    assert item["payload_example"] == {}
    assert item["description"] is None


def test_a_percent_encoded_id_names_its_task(api: Api) -> None:
    reply = api.get("/tasks/" + quote("a task/with odd ch@rs", safe=""))

    assert reply.status == 200, reply.text
    assert reply.json["task_id"] == "a task/with odd ch@rs"
    assert reply.json["payload_schema"] == {"type": "integer"}
    assert reply.json["payload_example"] == 0


def test_an_unknown_task_is_404_with_a_json_body(api: Api, env: TestEnvironment) -> None:
    reply = api.get("/tasks/no-such-task")

    assert reply.status == 404
    assert reply.error_code == "unknown_task"
    assert "no-such-task" in reply.json["error"]["message"]
    assert_nothing_stored(env)


@pytest.mark.parametrize("task_id", ["t" * 513, quote("é" * 100_000, safe="")])
def test_an_over_long_id_is_400_not_5xx(api: Api, env: TestEnvironment, task_id: str) -> None:
    reply = api.get(f"/tasks/{task_id}")

    assert reply.status == 400
    assert reply.error_code == "invalid_request"
    assert reply.json["error"]["details"][0]["loc"] == ["path", "task_id"]
    assert_nothing_stored(env)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("POST", "/tasks", "GET"), ("DELETE", "/tasks/ship-order", "GET")],
)
def test_the_task_routes_are_read_only(
    api: Api, env: TestEnvironment, method: str, path: str, allowed: str
) -> None:
    reply = api.call(method, path, {"payload": 1})

    assert reply.status == 405
    assert reply.headers["Allow"] == allowed
    assert_nothing_stored(env)


def test_the_tasks_are_served_with_every_backend_down() -> None:
    # The registry is the process's own: no DynamoDB, SQS or S3 call, so none can fail it.
    faults = Faults(seed=1).throttle("dynamodb", 1.0).server_error("sqs", 1.0)
    with TestEnvironment(registry=make_registry(), faults=faults.server_error("s3", 1.0)) as env:
        api = Api(env.client)
        listing, one = api.get("/tasks"), api.get("/tasks/ship-order")
        refused = api.post("/tasks/ship-order/runs", {"payload": EXAMPLE})

    assert (listing.status, one.status) == (200, 200)
    assert refused.status == 503  # a write does reach the backend


# -- the OpenAPI document ----------------------------------------------------------------


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_the_openapi_document_stays_valid_with_every_ref_resolved(api: Api) -> None:
    document = api.get("/openapi.json").json

    validate(document)  # OpenAPI 3.1, as openapi-spec-validator reads it
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/"), ref
        _resolve(document, ref)


def test_the_openapi_document_has_a_trigger_per_task(api: Api) -> None:
    document = api.get("/openapi.json").json
    paths = document["paths"]

    assert "/tasks/{task_id}/runs" in paths  # the generic route stays
    assert {"/tasks", "/tasks/{task_id}"} <= set(paths)
    for task_id in ["ship-order", "report", "anything", "a task/with odd ch@rs"]:
        operation = paths[f"/tasks/{quote(task_id, safe='')}/runs"]["post"]
        assert operation["responses"] == paths["/tasks/{task_id}/runs"]["post"]["responses"]
        assert "parameters" not in operation
        media = operation["requestBody"]["content"]["application/json"]
        body = _resolve(document, media["schema"]["$ref"])
        assert set(body["properties"]) == {
            "payload",
            "idempotency_key",
            "idempotency_key_ttl",
            "delay_seconds",
            "tags",
            "metadata",
            "concurrency_key",
            "priority",
            "ttl_seconds",
        }
        assert body["properties"]["payload"]["$ref"].endswith(".Payload")


def test_a_task_payload_schema_is_a_component_named_after_the_task(api: Api) -> None:
    document = api.get("/openapi.json").json
    schemas = document["components"]["schemas"]
    operation = document["paths"]["/tasks/ship-order/runs"]["post"]

    payload = schemas["ship-order.Payload"]
    assert payload["title"] == "OrderIn"
    assert payload["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/ship-order.LineItem"
    }
    assert schemas["ship-order.LineItem"]["required"] == ["sku", "quantity"]
    assert "$defs" not in json.dumps(payload)
    assert schemas["ship-order.TriggerRequest"]["required"] == ["payload"]
    assert operation["requestBody"]["required"] is True
    example = operation["requestBody"]["content"]["application/json"]["example"]
    assert example == {"payload": {"order_id": "o-1", "items": [{"sku": "A", "quantity": 2}]}}
    assert operation["summary"] == "Trigger a run of ship-order"
    assert operation["description"] == "Ship an order: reserve, pack and hand to the carrier."
    # a payload left out is null: required unless the task accepts null
    assert schemas["report.TriggerRequest"]["required"] == ["payload"]  # {} would do, not null
    assert "payload" not in schemas["anything.TriggerRequest"].get("required", [])
    assert schemas["a_task_with_odd_ch_rs.Payload"] == {"type": "integer"}


def test_the_example_in_the_document_triggers_a_run(api: Api, env: TestEnvironment) -> None:
    document = api.get("/openapi.json").json

    for path, item in document["paths"].items():
        if "{" in path or not path.startswith("/tasks/"):
            continue
        example = item["post"]["requestBody"]["content"]["application/json"]["example"]
        reply = api.post(path, example)
        assert reply.status == 202, (path, reply.text)
    assert len(env.list().runs) == 4
