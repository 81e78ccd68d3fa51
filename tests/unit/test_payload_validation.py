"""Payload validation: every annotation is validated, and annotations that cannot be resolved
fail when the task is declared instead of silently turning validation off."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from durable import Context, PayloadValidationError, RunStatus, TaskRegistry, task
from durable.api import handle
from durable.errors import AnnotationError, UnresolvedAnnotationError
from durable.testing import TestEnvironment


class Order(BaseModel):
    order_id: str


class Socket:
    """Not a type pydantic can validate."""


def post(env: TestEnvironment, path: str, body: Any) -> tuple[int, Any]:
    """POST `body` to the HTTP API as API Gateway would deliver it; (status, JSON reply)."""
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": "POST",
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
        "isBase64Encoded": False,
        "body": json.dumps(body),
    }
    response = handle(event, None, env.client)
    return response["statusCode"], json.loads(response["body"])


# -- plain annotations are validated ------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "payload"),
    [
        (int, "notanint"),
        (int, 5.5),
        (int, None),
        (str, 5),
        (bool, "maybe"),
        (dict, [1, 2]),
        (list[str], ["a", 1]),
        (list[str], "abc"),
        (str | None, 3),
        (dict[str, int], {"a": "x"}),
        (datetime, "yesterday"),
        (Annotated[int, Field(ge=0)], -1),
        (None, 1),
    ],
)
def test_a_payload_that_does_not_fit_a_plain_annotation_is_refused(
    registry: TaskRegistry, env: TestEnvironment, annotation: Any, payload: Any
) -> None:
    def body(ctx: Context, payload: Any) -> None:
        raise AssertionError("never runs")

    body.__annotations__ = {"ctx": Context, "payload": annotation}
    task(id="plain", registry=registry)(body)

    with pytest.raises(PayloadValidationError) as refused:
        env.trigger("plain", payload)

    assert refused.value.task_id == "plain"
    assert refused.value.details
    assert env.list().runs == []  # nothing stored


@pytest.mark.parametrize(
    ("annotation", "payload", "stored"),
    [
        (int, 5, 5),
        (int, "5", 5),  # lax, as pydantic's default: unambiguous JSON spellings convert
        (int, 5.0, 5),
        (float, 2, 2.0),
        (str, "x", "x"),
        (dict, {"a": [1]}, {"a": [1]}),
        (list[str], ["a", "b"], ["a", "b"]),
        (str | None, None, None),
        (tuple[int, int], [1, 2], [1, 2]),
        (datetime, "2024-05-17T09:30:00Z", "2024-05-17T09:30:00Z"),
        (None, None, None),
    ],
)
def test_a_payload_that_fits_is_stored_as_validated(
    registry: TaskRegistry,
    env: TestEnvironment,
    annotation: Any,
    payload: Any,
    stored: Any,
) -> None:
    seen: list[Any] = []

    def body(ctx: Context, payload: Any) -> None:
        seen.append(payload)

    body.__annotations__ = {"ctx": Context, "payload": annotation}
    task(id="plain", registry=registry)(body)

    run = env.trigger("plain", payload)
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED, info.error
    assert env.get(run.run_id).payload == stored


def test_the_task_sees_the_annotated_type(registry: TaskRegistry, env: TestEnvironment) -> None:
    seen: list[Any] = []

    @task(id="typed", registry=registry)
    def typed(ctx: Context, payload: tuple[int, datetime]) -> None:
        seen.append(payload)

    run = env.trigger("typed", [1, "2024-05-17T09:30:00Z"])
    env.run_until_complete(run.run_id)

    assert seen == [(1, datetime(2024, 5, 17, 9, 30, tzinfo=UTC))]


@pytest.mark.parametrize("payload", [None, 1, "x", [1, "a"], {"any": {"thing": True}}])
def test_unannotated_any_and_object_payloads_are_not_validated(
    registry: TaskRegistry, env: TestEnvironment, payload: Any
) -> None:
    @task(id="bare", registry=registry)
    def bare(ctx, payload):  # type: ignore[no-untyped-def]
        return payload

    @task(id="any", registry=registry)
    def anything(ctx: Context, payload: Any) -> Any:
        return payload

    @task(id="object", registry=registry)
    def obj(ctx: Context, payload: object) -> Any:
        return payload

    for task_id in ("bare", "any", "object"):
        run = env.trigger(task_id, payload)
        assert env.run_until_complete(run.run_id).result == payload


def test_an_invalid_plain_payload_is_422_at_the_api(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="count", registry=registry)
    def count(ctx: Context, payload: int) -> int:
        return payload

    status, reply = post(env, "/tasks/count/runs", {"payload": "notanint"})

    assert status == 422
    assert reply["error"]["code"] == "invalid_payload"
    assert env.list().runs == []
    status, reply = post(env, "/tasks/count/runs", {"payload": 7})
    assert status == 202


# -- annotations that cannot be resolved fail at declaration ------------------------------


def test_an_undefined_payload_annotation_fails_at_declaration(registry: TaskRegistry) -> None:
    with pytest.raises(UnresolvedAnnotationError) as failed:

        @task(id="forward", registry=registry)
        def forward(ctx: Context, payload: NotYetDefined) -> None:  # type: ignore[name-defined]  # noqa: F821
            return None

    error = failed.value
    assert error.name == "NotYetDefined"
    assert error.owner.startswith("task 'forward'")
    assert "'forward'" in str(error)
    assert "'NotYetDefined'" in str(error)
    assert "payload" in str(error)
    assert isinstance(error, NameError)  # what get_type_hints would have raised
    assert "forward" not in registry


def test_an_undefined_result_annotation_fails_at_declaration(registry: TaskRegistry) -> None:
    with pytest.raises(UnresolvedAnnotationError, match="'Missing'") as failed:

        @task(id="result", registry=registry)
        def result(ctx: Context, payload: None) -> list[Missing]:  # type: ignore[name-defined]  # noqa: F821
            return []

    assert "return annotation" in str(failed.value)
    assert failed.value.owner.startswith("task 'result'")


def test_a_payload_type_pydantic_cannot_validate_fails_at_declaration(
    registry: TaskRegistry,
) -> None:
    with pytest.raises(AnnotationError, match=r"task 'sockets'.*pydantic"):

        @task(id="sockets", registry=registry)
        def sockets(ctx: Context, payload: Socket) -> None:
            return None


def test_a_context_annotation_imported_only_for_type_checking_is_no_obstacle(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    # given `ctx: Context` where Context is imported under TYPE_CHECKING: it is not needed
    @task(id="lean", registry=registry)
    def lean(ctx: TypeCheckingOnlyContext, payload: int) -> int:  # type: ignore[name-defined]  # noqa: F821
        return int(payload) * 2

    assert registry.get("lean").payload_annotation is int
    with pytest.raises(PayloadValidationError):
        env.trigger("lean", "notanint")
    run = env.trigger("lean", 21)
    assert env.run_until_complete(run.run_id).result == 42


def test_a_model_local_to_a_function_resolves(registry: TaskRegistry, env: TestEnvironment) -> None:
    # given a model defined inside a function, with postponed annotations (this module's)
    class LocalIn(BaseModel):
        n: int

    @task(id="local", registry=registry)
    def local(ctx: Context, payload: LocalIn) -> int:
        return payload.n

    assert registry.get("local").payload_annotation is LocalIn
    with pytest.raises(PayloadValidationError):
        env.trigger("local", {"n": "many"})
    run = env.trigger("local", {"n": 3})
    assert env.run_until_complete(run.run_id).result == 3


def test_a_model_annotation_still_validates_models(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="order", registry=registry)
    def order(ctx: Context, payload: Order) -> str:
        return payload.order_id

    with pytest.raises(PayloadValidationError):
        env.trigger("order", {"id": "o-1"})
    run = env.trigger("order", {"order_id": "o-1"})
    assert env.run_until_complete(run.run_id).result == "o-1"


def test_a_cron_task_whose_payload_cannot_be_null_is_refused(registry: TaskRegistry) -> None:
    # an `int` payload used to be waved through, and scheduled runs then got None
    with pytest.raises(ValueError, match="must accept null"):

        @task(id="hourly", cron="@hourly", registry=registry)
        def hourly(ctx: Context, payload: int) -> None:
            return None
