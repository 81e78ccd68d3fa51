"""The HTTP API, driven with API Gateway HTTP API (payload 2.0) events over the memory backend.

Every error case also checks that nothing was stored: no run, no wake-up, no inbox event.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from pydantic import BaseModel, field_validator

from durable import Context, NonRetryableError, RetryPolicy, RunStatus, TaskRegistry, task
from durable.api import build_app, handle
from durable.blobs.memory import MemoryBlobStore
from durable.cli.output import format_history
from durable.client import Client
from durable.clock import VirtualClock
from durable.queues.memory import MemoryWakeQueue
from durable.storage.memory import MemoryRunStore
from durable.testing import Faults, TestEnvironment
from durable.values import REQUEST_LIMIT, ValueCodec

# -- the event factory ------------------------------------------------------------------


def http_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw_body: str | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API event (payload format 2.0), as Lambda receives it.

    `body` is sent as JSON; `raw_body` is sent as it is (malformed JSON, say).
    """
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    if text is not None and base64_encoded:
        text = base64.b64encode(text.encode()).decode()
    all_headers = {"content-type": "application/json", "host": "api.example.com"}
    all_headers.update(headers or {})
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": "request-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2030:00:00:00 +0000",
            "timeEpoch": 1893456000000,
        },
        "isBase64Encoded": base64_encoded,
    }
    if query:
        event["queryStringParameters"] = query
    if text is not None:
        event["body"] = text
    return event


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error_code(self) -> str:
        body = self.json
        assert set(body) == {"error"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        code: str = body["error"]["code"]
        return code


class Api:
    """Sends events to the resolver serving one client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def call(self, method: str, path: str, body: Any = None, **options: Any) -> Reply:
        response = handle(http_event(method, path, body, **options), None, self.client)
        return Reply(response["statusCode"], response.get("headers", {}), response["body"])

    def get(self, path: str, **options: Any) -> Reply:
        return self.call("GET", path, **options)

    def post(self, path: str, body: Any = None, **options: Any) -> Reply:
        return self.call("POST", path, body, **options)


# -- test tasks and fixtures ------------------------------------------------------------


class OrderIn(BaseModel):
    order_id: str
    quantity: int = 1


class Picky(BaseModel):
    value: str

    @field_validator("value")
    @classmethod
    def _explode(cls, value: str) -> str:
        if value == "boom":
            raise RuntimeError("a validator that breaks")  # not a ValueError: pydantic re-raises
        return value


def make_registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="echo", registry=registry)
    def echo(ctx: Context, payload: Any) -> Any:
        return ctx.step("echo", lambda: payload)

    @task(id="order", registry=registry)
    def order(ctx: Context, payload: OrderIn) -> dict[str, Any]:
        return {"order_id": payload.order_id, "total": payload.quantity * 10}

    @task(id="approval", registry=registry)
    def approval(ctx: Context, payload: None) -> Any:
        ctx.step("prepare", lambda: "ready")
        return ctx.wait_for_event("needs approval")

    @task(id="flaky", registry=registry, retry=RetryPolicy(max_attempts=2))
    def flaky(ctx: Context, payload: None) -> str:
        ctx.step("prepare", lambda: "ready")
        if ctx.run.attempt == 1:
            raise ValueError("first attempt fails")
        return ctx.step("finish", lambda: "done")

    @task(id="broken", registry=registry, retry=RetryPolicy(max_attempts=1))
    def broken(ctx: Context, payload: None) -> None:
        raise NonRetryableError("it broke")

    @task(id="fan-out", registry=registry)
    def fan_out(ctx: Context, payload: None) -> list[Any]:
        return ctx.map("broken", [None])

    @task(id="picky", registry=registry)
    def picky(ctx: Context, payload: Picky) -> str:
        return payload.value

    return registry


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=make_registry()) as environment:
        yield environment


@pytest.fixture
def api(env: TestEnvironment) -> Api:
    return Api(env.client)


def assert_nothing_stored(env: TestEnvironment) -> None:
    assert env.list().runs == []
    assert len(env.queue) == 0


def trigger(api: Api, task_id: str, payload: Any = None, **fields: Any) -> str:
    reply = api.post(f"/tasks/{task_id}/runs", {"payload": payload, **fields})
    assert reply.status == 202, reply.text
    run_id: str = reply.json["run_id"]
    return run_id


# -- POST /tasks/{task_id}/runs ---------------------------------------------------------


def test_trigger_starts_a_run(api: Api, env: TestEnvironment) -> None:
    reply = api.post("/tasks/order/runs", {"payload": {"order_id": "o-1", "quantity": 3}})

    assert reply.status == 202
    assert reply.json == {"run_id": reply.json["run_id"], "status": "QUEUED", "created": True}
    run_id = reply.json["run_id"]
    assert env.get(run_id).payload == {"order_id": "o-1", "quantity": 3}
    info = env.run_until_complete(run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == {"order_id": "o-1", "total": 30}


def test_the_same_idempotency_key_gives_the_same_run(api: Api, env: TestEnvironment) -> None:
    body = {"payload": {"order_id": "o-1"}, "idempotency_key": "order-o-1"}
    first = api.post("/tasks/order/runs", body)
    again = api.post("/tasks/order/runs", body)
    other = api.post("/tasks/order/runs", {**body, "idempotency_key": "order-o-2"})

    assert (first.status, again.status, other.status) == (202, 202, 202)
    assert first.json["created"] is True
    assert again.json == {**first.json, "created": False}
    assert other.json["run_id"] != first.json["run_id"]
    assert len(env.list().runs) == 2
    assert env.get(first.json["run_id"]).idempotency_key == "order-o-1"


def test_the_same_idempotency_key_with_another_payload_is_409(
    api: Api, env: TestEnvironment
) -> None:
    first = api.post("/tasks/echo/runs", {"payload": 1, "idempotency_key": "k-1"})

    again = api.post("/tasks/echo/runs", {"payload": 2, "idempotency_key": "k-1"})

    assert again.status == 409
    assert again.error_code == "idempotency_conflict"
    assert first.json["run_id"] in again.json["error"]["message"]
    assert [run.run_id for run in env.list().runs] == [first.json["run_id"]]


def test_a_failing_backend_is_503_with_retry_after_in_our_words() -> None:
    faults = Faults(seed=1).throttle("dynamodb", 1.0)
    with TestEnvironment(registry=make_registry(), faults=faults) as env:
        api = Api(env.client)
        replies = [api.post("/tasks/echo/runs", {"payload": 1}), api.get("/runs")]

    for reply in replies:
        assert reply.status == 503, reply.text
        assert reply.error_code == "service_unavailable"
        assert reply.headers["Retry-After"] == "1"
        assert "injected" not in reply.text and "Traceback" not in reply.text


def test_trigger_without_a_body_sends_a_null_payload(api: Api, env: TestEnvironment) -> None:
    reply = api.post("/tasks/echo/runs")

    assert reply.status == 202, reply.text
    info = env.run_until_complete(reply.json["run_id"])
    assert info.status == RunStatus.COMPLETED
    assert info.result is None


def test_delay_seconds_starts_the_run_later(api: Api, env: TestEnvironment) -> None:
    run_id = trigger(api, "echo", "later", delay_seconds=3600)

    env.run_until_idle()
    info = env.get(run_id)
    assert info.status == RunStatus.QUEUED
    assert info.wake_at == env.now() + timedelta(hours=1)
    env.advance(timedelta(hours=1))
    assert env.get(run_id).status == RunStatus.COMPLETED


def test_a_large_payload_within_the_request_limit_is_accepted(
    api: Api, env: TestEnvironment
) -> None:
    big = "x" * (REQUEST_LIMIT - 1024)  # far over a DynamoDB item: stored as a blob

    run_id = trigger(api, "echo", big)

    assert env.run_until_complete(run_id).result == big
    assert api.get(f"/runs/{run_id}").json["payload"] == big


def test_a_base64_encoded_body_is_decoded(api: Api, env: TestEnvironment) -> None:
    reply = api.post("/tasks/echo/runs", {"payload": [1, 2]}, base64_encoded=True)

    assert reply.status == 202, reply.text
    assert env.get(reply.json["run_id"]).payload == [1, 2]


def test_an_unknown_task_is_404(api: Api, env: TestEnvironment) -> None:
    reply = api.post("/tasks/no-such-task/runs", {"payload": {}})

    assert reply.status == 404
    assert reply.error_code == "unknown_task"
    assert "no-such-task" in reply.json["error"]["message"]
    assert_nothing_stored(env)


def test_an_invalid_payload_is_422_with_pydantic_details(api: Api, env: TestEnvironment) -> None:
    reply = api.post("/tasks/order/runs", {"payload": {"quantity": "many"}})

    assert reply.status == 422
    assert reply.error_code == "invalid_payload"
    details = reply.json["error"]["details"]
    assert {(tuple(d["loc"]), d["type"]) for d in details} == {
        (("order_id",), "missing"),
        (("quantity",), "int_parsing"),
    }
    assert all(d["msg"] for d in details)
    assert "order_id" in reply.json["error"]["message"]
    assert_nothing_stored(env)


def test_a_missing_payload_for_a_model_is_422(api: Api, env: TestEnvironment) -> None:
    reply = api.post("/tasks/order/runs", {})

    assert reply.status == 422
    assert reply.error_code == "invalid_payload"
    assert_nothing_stored(env)


@pytest.mark.parametrize(
    "raw", ['{"payload": ', "{'payload': 1}", "payload=1", '{"payload": 1}}', "\x00"]
)
def test_malformed_json_is_400(api: Api, env: TestEnvironment, raw: str) -> None:
    reply = api.post("/tasks/echo/runs", raw_body=raw)

    assert reply.status == 400
    assert reply.error_code == "malformed_json"
    assert_nothing_stored(env)


@pytest.mark.parametrize("body", [[1, 2], "payload", 42, True])
def test_a_body_that_is_not_an_object_is_400(api: Api, env: TestEnvironment, body: Any) -> None:
    reply = api.post("/tasks/echo/runs", body)

    assert reply.status == 400
    assert reply.error_code == "invalid_request"
    assert reply.json["error"]["details"][0]["loc"] == ["body"]
    assert_nothing_stored(env)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"idempotency_key": 7}, "idempotency_key"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 257}, "idempotency_key"),
        ({"delay_seconds": "5"}, "delay_seconds"),
        ({"delay_seconds": 1.5}, "delay_seconds"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"delay_seconds": True}, "delay_seconds"),
        ({"payloads": {}}, "payloads"),
    ],
)
def test_wrong_field_types_and_unknown_fields_are_400(
    api: Api, env: TestEnvironment, fields: dict[str, Any], field: str
) -> None:
    reply = api.post("/tasks/echo/runs", {"payload": 1, **fields})

    assert reply.status == 400
    assert reply.error_code == "invalid_request"
    assert ["body", field] in [d["loc"] for d in reply.json["error"]["details"]]
    assert field in reply.json["error"]["message"]
    assert_nothing_stored(env)


def test_a_body_over_6_mb_is_413_before_it_is_parsed(api: Api, env: TestEnvironment) -> None:
    # Not even JSON: the size is checked before parsing, so this is 413, not 400.
    reply = api.post("/tasks/echo/runs", raw_body="[" * (REQUEST_LIMIT + 1))

    assert reply.status == 413
    assert reply.error_code == "payload_too_large"
    assert_nothing_stored(env)


def test_the_body_limit_counts_bytes_not_characters(api: Api, env: TestEnvironment) -> None:
    text = "é" * (REQUEST_LIMIT // 2)  # 2 bytes each in UTF-8: over the limit in bytes

    reply = api.post("/tasks/echo/runs", raw_body=json.dumps({"payload": text}, ensure_ascii=False))

    assert reply.status == 413
    assert reply.error_code == "payload_too_large"
    assert_nothing_stored(env)


def test_a_value_the_codec_refuses_is_413() -> None:
    registry = make_registry()
    clock = VirtualClock()
    store, queue, blobs = MemoryRunStore(), MemoryWakeQueue(clock), MemoryBlobStore()
    codec = ValueCodec(blobs, inline_limit=64, max_size=1024)
    client = Client(store=store, queue=queue, codec=codec, clock=clock, registry=registry)

    reply = Api(client).post("/tasks/echo/runs", {"payload": "x" * 2000})

    assert reply.status == 413
    assert reply.error_code == "payload_too_large"
    assert store.list_runs().runs == []
    assert len(queue) == 0


def test_a_body_that_is_not_json_by_content_type_is_415(api: Api, env: TestEnvironment) -> None:
    reply = api.post("/tasks/echo/runs", raw_body="payload", headers={"content-type": "text/plain"})

    assert reply.status == 415
    assert reply.error_code == "unsupported_media_type"
    assert_nothing_stored(env)


def test_an_unexpected_failure_is_a_500_in_the_same_shape(api: Api, env: TestEnvironment) -> None:
    reply = api.post("/tasks/picky/runs", {"payload": {"value": "boom"}})

    assert reply.status == 500
    assert reply.error_code == "internal_error"
    assert "boom" not in reply.text and "Traceback" not in reply.text
    assert_nothing_stored(env)


# -- GET /runs --------------------------------------------------------------------------


def test_list_runs_newest_first_with_filters(api: Api, env: TestEnvironment) -> None:
    first = trigger(api, "echo", 1)
    env.run_until_idle()
    env.clock.advance(timedelta(seconds=1))
    second = trigger(api, "order", {"order_id": "o-1"})
    env.clock.advance(timedelta(seconds=1))
    third = trigger(api, "echo", 3)

    everything = api.get("/runs")
    assert everything.status == 200
    assert [run["run_id"] for run in everything.json["runs"]] == [third, second, first]
    assert everything.json["next_cursor"] is None
    echo = api.get("/runs", query={"task_id": "echo"}).json["runs"]
    assert [run["run_id"] for run in echo] == [third, first]
    done = api.get("/runs", query={"status": "COMPLETED"}).json["runs"]
    assert [run["run_id"] for run in done] == [first]
    both = api.get("/runs", query={"task_id": "echo", "status": "QUEUED"}).json["runs"]
    assert [run["run_id"] for run in both] == [third]


def test_list_runs_pages_with_the_cursor(api: Api, env: TestEnvironment) -> None:
    run_ids = []
    for index in range(5):
        run_ids.append(trigger(api, "echo", index))
        env.clock.advance(timedelta(seconds=1))

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.get("/runs", query=query).json
        assert len(page["runs"]) <= 2
        seen += [run["run_id"] for run in page["runs"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(run_ids))
    assert pages == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "DONE"}, "status"),
        ({"status": "completed"}, "status"),
    ],
)
def test_bad_query_parameters_are_400(
    api: Api, env: TestEnvironment, query: dict[str, str], field: str
) -> None:
    trigger(api, "echo", 1)

    reply = api.get("/runs", query=query)

    assert reply.status == 400
    assert reply.error_code == "invalid_request"
    assert reply.json["error"]["details"][0]["loc"] == ["query", field]


def test_limit_bounds_are_inclusive(api: Api, env: TestEnvironment) -> None:
    trigger(api, "echo", 1)

    assert api.get("/runs", query={"limit": "1"}).status == 200
    assert api.get("/runs", query={"limit": "1000"}).status == 200


# -- GET /runs/{run_id} and /history ----------------------------------------------------


def test_get_a_run(api: Api, env: TestEnvironment) -> None:
    run_id = trigger(api, "order", {"order_id": "o-9", "quantity": 2}, idempotency_key="k-9")
    env.run_until_complete(run_id)

    reply = api.get(f"/runs/{run_id}")

    assert reply.status == 200
    run = reply.json
    assert run["run_id"] == run_id
    assert run["task_id"] == "order"
    assert run["status"] == "COMPLETED"
    assert run["payload"] == {"order_id": "o-9", "quantity": 2}
    assert run["result"] == {"order_id": "o-9", "total": 20}
    assert run["error"] is None
    assert run["attempts"] == 1
    assert run["idempotency_key"] == "k-9"
    assert run["version"] == {"task": "1", "code": "test"}
    for field in ("created_at", "updated_at", "started_at", "finished_at"):
        assert run[field].startswith("2030-01-01T00:00:00")


def test_get_an_unknown_run_is_404(api: Api) -> None:
    for path in ("/runs/run_missing", "/runs/run_missing/history"):
        reply = api.get(path)
        assert reply.status == 404
        assert reply.error_code == "run_not_found"


def test_history_lists_the_checkpoints_in_order(api: Api, env: TestEnvironment) -> None:
    run_id = trigger(api, "approval")
    env.run_until_idle()

    reply = api.get(f"/runs/{run_id}/history")

    assert reply.status == 200
    assert reply.json["run_id"] == run_id
    history = reply.json["history"]
    assert [(entry["kind"], entry["name"]) for entry in history] == [
        ("step_completed", "prepare"),
        ("wait_started", "needs approval"),
    ]
    assert [entry["seq"] for entry in history] == [1, 2]
    assert history[0]["value"] == "ready"
    assert (history[0]["task_attempt"], history[0]["attempt"]) == (1, 1)


def test_history_tells_task_attempts_from_step_attempts(api: Api, env: TestEnvironment) -> None:
    run_id = trigger(api, "flaky")
    assert env.run_until_complete(run_id).status == RunStatus.COMPLETED

    history = api.get(f"/runs/{run_id}/history").json["history"]

    assert [(e["kind"], e["name"], e["task_attempt"], e["attempt"]) for e in history] == [
        ("step_completed", "prepare", 1, 1),
        ("attempt_failed", "attempt", 1, 1),
        ("step_completed", "finish", 2, 1),  # a step's first try, in the task's second
    ]


def test_the_cli_history_table_has_a_column_for_each_attempt(
    api: Api, env: TestEnvironment
) -> None:
    run_id = trigger(api, "flaky")
    env.run_until_complete(run_id)
    history = api.get(f"/runs/{run_id}/history").json["history"]

    header, *rows = format_history(history).splitlines()

    assert header.split() == ["SEQ", "KIND", "NAME", "TASK", "ATTEMPT", "STEP", "ATTEMPT", "AT"]
    assert [row.split()[:5] for row in rows] == [
        ["1", "step_completed", "prepare", "1", "1"],
        ["2", "attempt_failed", "attempt", "1", "-"],
        ["3", "step_completed", "finish", "2", "1"],
    ]


def test_no_traceback_reaches_a_caller_but_the_run_pages_timeline(
    api: Api, env: TestEnvironment
) -> None:
    # given a run that failed, and a parent whose batch holds a failed child
    failed = trigger(api, "broken")
    parent = trigger(api, "fan-out")
    env.run_until_complete(failed)
    env.run_until_complete(parent)
    assert env.get(failed).error is not None and env.get(failed).error.traceback  # stored

    # when callers read the runs and their histories
    replies = [
        api.get(f"/runs/{failed}"),
        api.get(f"/runs/{failed}/history"),
        api.get(f"/runs/{parent}"),
        api.get(f"/runs/{parent}/history"),
        api.get("/runs"),
    ]

    # then type, message and non_retryable are there, the traceback nowhere
    assert all(reply.status == 200 for reply in replies)
    assert replies[0].json["error"] == {
        "type": "NonRetryableError",
        "message": "it broke",
        "non_retryable": True,
    }
    # the batch's end refers to its children's results (counts, no copies of them)
    end = replies[3].json["history"][-1]
    assert end["kind"] == "batch_failed" and (end["value"]["total"], end["value"]["failed"]) == (
        1,
        1,
    )
    assert "NonRetryableError: it broke" in replies[2].json["error"]["message"]
    for reply in replies:
        assert "traceback" not in reply.text and "Traceback" not in reply.text
    # the run page is where tracebacks are read: its timeline carries them
    timeline = api.get(f"/runs/{failed}/timeline").json
    attempt_errors = [attempt["error"] for attempt in timeline["attempts"] if attempt["error"]]
    assert attempt_errors and "Traceback" in attempt_errors[-1]["traceback"]


# -- POST /runs/{run_id}/events/{name} --------------------------------------------------


def test_an_event_resumes_a_waiting_run(api: Api, env: TestEnvironment) -> None:
    run_id = trigger(api, "approval")
    env.run_until_idle()
    assert env.get(run_id).waiting_for == "needs approval"

    # The event name travels percent-encoded in the path.
    reply = api.post(f"/runs/{run_id}/events/{quote('needs approval')}", {"data": {"ok": True}})

    assert reply.status == 202
    assert reply.json == {"run_id": run_id, "event": "needs approval", "accepted": True}
    info = env.run_until_complete(run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == {"ok": True}


def test_an_event_sent_twice_with_one_event_id_is_stored_once(
    api: Api, env: TestEnvironment
) -> None:
    run_id = trigger(api, "approval")
    env.run_until_idle()
    body = {"data": {"ok": True}, "event_id": "webhook-delivery-1"}

    replies = [api.post(f"/runs/{run_id}/events/{quote('needs approval')}", body) for _ in "ab"]
    empty = api.post(f"/runs/{run_id}/events/x", {"data": 1, "event_id": ""})

    assert [reply.status for reply in replies] == [202, 202]
    assert [event.data for event in env.store.list_inbox(run_id)] == ['{"ok":true}']
    assert (empty.status, empty.error_code) == (400, "invalid_request")


def test_an_event_without_a_body_carries_null(api: Api, env: TestEnvironment) -> None:
    run_id = trigger(api, "approval")
    env.run_until_idle()

    reply = api.post(f"/runs/{run_id}/events/needs%20approval")

    assert reply.status == 202, reply.text
    info = env.run_until_complete(run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result is None


def test_event_errors(api: Api, env: TestEnvironment) -> None:
    run_id = trigger(api, "approval")
    env.run_until_idle()

    unknown = api.post("/runs/run_missing/events/go", {"data": 1})
    malformed = api.post(f"/runs/{run_id}/events/go", raw_body="{data: 1}")
    wrong_shape = api.post(f"/runs/{run_id}/events/go", {"date": 1})
    too_large = api.post(f"/runs/{run_id}/events/go", raw_body=" " * (REQUEST_LIMIT + 1))

    assert (unknown.status, unknown.error_code) == (404, "run_not_found")
    assert (malformed.status, malformed.error_code) == (400, "malformed_json")
    assert (wrong_shape.status, wrong_shape.error_code) == (400, "invalid_request")
    assert (too_large.status, too_large.error_code) == (413, "payload_too_large")
    assert env.store.list_inbox(run_id) == []
    assert len(env.queue) == 0


def test_an_event_for_a_finished_run_is_409(api: Api, env: TestEnvironment) -> None:
    run_id = trigger(api, "echo", 1)
    env.run_until_complete(run_id)

    reply = api.post(f"/runs/{run_id}/events/late", {"data": 1})

    assert reply.status == 409
    assert reply.error_code == "run_finished"
    assert env.store.list_inbox(run_id) == []


# -- POST /runs/{run_id}/cancel ---------------------------------------------------------


def test_cancel_a_waiting_run(api: Api, env: TestEnvironment) -> None:
    run_id = trigger(api, "approval")
    env.run_until_idle()

    reply = api.post(f"/runs/{run_id}/cancel")

    assert reply.status == 200
    assert reply.json["status"] == "CANCELLED"
    assert reply.json["error"]["type"] == "RunCancelledError"
    assert env.get(run_id).status == RunStatus.CANCELLED
    again = api.post(f"/runs/{run_id}/cancel")
    assert (again.status, again.error_code) == (409, "run_finished")
    event = api.post(f"/runs/{run_id}/events/{quote('needs approval')}", {"data": 1})
    assert (event.status, event.error_code) == (409, "run_finished")


def test_cancel_an_unknown_run_is_404(api: Api) -> None:
    reply = api.post("/runs/run_missing/cancel")

    assert reply.status == 404
    assert reply.error_code == "run_not_found"


# -- POST /callbacks/{token} ------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [{"data": {"ok": True}}, {"error": "it broke"}, {"error": {"message": "no"}}, None]
)
def test_callbacks_are_not_implemented_so_every_token_is_unknown(
    api: Api, env: TestEnvironment, body: Any
) -> None:
    reply = api.post("/callbacks/tok_123", body)

    assert reply.status == 404
    assert reply.error_code == "unknown_callback"
    assert_nothing_stored(env)


def test_a_callback_body_is_still_validated(api: Api) -> None:
    malformed = api.post("/callbacks/tok_123", raw_body="{")
    both = api.post("/callbacks/tok_123", {"data": 1, "error": "x"})

    assert (malformed.status, malformed.error_code) == (400, "malformed_json")
    assert (both.status, both.error_code) == (400, "invalid_request")


# -- routing, OpenAPI and the dashboard -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nowhere"), ("GET", "/runs/"), ("POST", "/runs/r/history/x")]
)
def test_an_unknown_route_is_404_in_the_same_shape(api: Api, method: str, path: str) -> None:
    reply = api.call(method, path)

    assert reply.status == 404
    assert reply.error_code == "not_found"
    assert "Allow" not in reply.headers


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/runs", "GET"),
        ("DELETE", "/runs/run_1", "GET"),
        ("PUT", "/runs/run_1/history", "GET"),
        ("GET", "/tasks/echo/runs", "POST"),
        ("GET", "/runs/run_1/cancel", "POST"),
        ("GET", "/runs/run_1/events/go", "POST"),
        ("PATCH", "/callbacks/tok_1", "POST"),
        ("POST", "/openapi.json", "GET"),
    ],
)
def test_a_wrong_method_is_405_with_allow(
    api: Api, env: TestEnvironment, method: str, path: str, allowed: str
) -> None:
    reply = api.call(method, path, {"payload": 1})

    assert reply.status == 405
    assert reply.error_code == "method_not_allowed"
    assert reply.headers["Allow"] == allowed
    assert allowed in reply.json["error"]["message"]
    assert_nothing_stored(env)


def test_the_openapi_document_describes_every_route(api: Api) -> None:
    reply = api.get("/openapi.json")

    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    document = reply.json
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "durable"
    task_paths = {f"/tasks/{task.id}/runs" for task in make_registry()}  # see test_api_tasks
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if path not in task_paths
    }
    assert operations == {
        ("POST", "/tasks/{task_id}/runs"),
        ("GET", "/tasks"),
        ("GET", "/tasks/{task_id}"),
        ("GET", "/runs"),
        ("GET", "/runs/{run_id}"),
        ("GET", "/runs/{run_id}/history"),
        ("GET", "/runs/{run_id}/timeline"),
        ("GET", "/runs/{run_id}/logs"),
        ("POST", "/runs/{run_id}/events/{name}"),
        ("POST", "/callbacks/{token}"),
        ("POST", "/runs/{run_id}/cancel"),
        ("POST", "/runs/{run_id}/resume"),
        ("POST", "/runs/{run_id}/retry"),
        ("POST", "/runs/{run_id}/rerun"),
        ("POST", "/runs/{run_id}/fork"),
        ("GET", "/metrics"),
        ("POST", "/bulk"),
        ("GET", "/bulk/{job_id}"),
        ("GET", "/queues"),
        ("GET", "/queues/{name}"),
    }
    trigger_responses = document["paths"]["/tasks/{task_id}/runs"]["post"]["responses"]
    assert set(trigger_responses) == {"202", "400", "404", "409", "413", "415", "422"}
    schemas = document["components"]["schemas"]
    assert {"TriggerRequest", "TriggerResponse", "RunBody", "ErrorResponse"} <= set(schemas)
    assert "HTTPValidationError" not in json.dumps(document)
    limit = next(p for p in document["paths"]["/runs"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)


def test_one_resolver_per_client(env: TestEnvironment) -> None:
    from durable.api import app_for

    assert app_for(env.client) is app_for(env.client)
    assert build_app(env.client) is not app_for(env.client)
