"""Hostile input to the HTTP API: every refusal is a 4xx in the one error shape, stores nothing.

Bodies JSON parses but no store could keep (NaN, 1e400, a 5,000-digit integer, lone
surrogates, deep nesting), bodies that are not UTF-8, form and multipart bodies, non-object
bodies, empty or oversized query parameters, event names aimed at the engine's namespaces,
wrong methods. Each case is sent to the trigger, event and callback routes where it applies.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from durable import RunStatus
from durable.api import handle
from durable.testing import TestEnvironment
from tests.unit.test_api import Api, Reply, http_event, make_registry

BODY_ROUTES = ("trigger", "event", "callback")


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=make_registry()) as environment:
        yield environment


@pytest.fixture
def api(env: TestEnvironment) -> Api:
    return Api(env.client)


@pytest.fixture
def waiting_run(api: Api, env: TestEnvironment) -> str:
    """A run waiting for the event `approval`."""
    reply = api.post("/tasks/approval/runs", {"payload": None})
    assert reply.status == 202, reply.text
    env.run_until_idle()
    run_id: str = reply.json["run_id"]
    assert env.get(run_id).status == RunStatus.WAITING
    return run_id


def path_of(route: str, run_id: str) -> str:
    return {
        "trigger": "/tasks/echo/runs",
        "event": f"/runs/{run_id}/events/approval",
        "callback": "/callbacks/tok_123",
    }[route]


def field_of(route: str) -> str:
    return "payload" if route == "trigger" else "data"


def assert_refused(reply: Any, status: int, code: str) -> None:
    assert reply.status == status, reply.text
    assert reply.error_code == code
    assert "Traceback" not in reply.text


def assert_nothing_new(env: TestEnvironment, run_id: str) -> None:
    """Only the waiting run exists, its inbox is empty, and nothing new is queued."""
    assert [run.run_id for run in env.list().runs] == [run_id]
    assert env.store.list_inbox(run_id) == []
    assert env.get(run_id).status == RunStatus.WAITING
    assert len(env.queue) == 0


# -- bodies that parse as Python's JSON but not as JSON any store keeps ------------------


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize(
    "value",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        "[1, NaN]",
        '{"x": {"y": Infinity}}',
        "9" * 5000,
        "-" + "1" * 4301,
        '"\\ud800"',
        '{"\\udfff": 1}',
    ],
    ids=str.__len__,
)
def test_values_json_cannot_hold_are_400(
    api: Api, env: TestEnvironment, waiting_run: str, route: str, value: str
) -> None:
    raw = f'{{"{field_of(route)}": {value}}}'

    reply = api.post(path_of(route, waiting_run), raw_body=raw)

    assert_refused(reply, 400, "malformed_json")
    assert_nothing_new(env, waiting_run)


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize("depth", [129, 1000, 10_000, 100_000])
def test_deep_nesting_is_400(
    api: Api, env: TestEnvironment, waiting_run: str, route: str, depth: int
) -> None:
    # The body object is one level: the field holds depth - 1 more.
    nested = "[" * (depth - 1) + "]" * (depth - 1)

    reply = api.post(path_of(route, waiting_run), raw_body=f'{{"{field_of(route)}": {nested}}}')

    assert_refused(reply, 400, "malformed_json")
    assert "128" in reply.json["error"]["message"]
    assert_nothing_new(env, waiting_run)


def test_the_deepest_accepted_payload_can_be_read_back(api: Api, env: TestEnvironment) -> None:
    # 128 levels in the body: 127 in the payload, wrapped in run and list views on the way out.
    payload: Any = []
    for _ in range(126):
        payload = [payload]

    reply = api.post("/tasks/echo/runs", {"payload": payload})

    assert reply.status == 202, reply.text
    run_id = reply.json["run_id"]
    assert env.run_until_complete(run_id).status == RunStatus.COMPLETED
    for path in (f"/runs/{run_id}", f"/runs/{run_id}/history", "/runs"):
        assert api.get(path).status == 200, path
    assert api.get(f"/runs/{run_id}").json["result"] == payload


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize(
    "encoding",
    ["latin-1", "utf-16", "utf-16-be", "utf-32", "cesu-8", "garbage"],
)
def test_bodies_that_are_not_utf8_are_400(
    api: Api, env: TestEnvironment, waiting_run: str, route: str, encoding: str
) -> None:
    text = f'{{"{field_of(route)}": "é"}}'
    if encoding == "cesu-8":  # a surrogate encoded as if it were a character
        data = text.encode().replace("é".encode(), b"\xed\xa0\x80")
    elif encoding == "garbage":
        data = b"\xff\xfe\xfd"
    else:
        data = text.encode(encoding)

    reply = send_bytes(api, path_of(route, waiting_run), data)

    assert_refused(reply, 400, "malformed_json")
    assert_nothing_new(env, waiting_run)


def send_bytes(api: Api, path: str, data: bytes, content_type: str = "application/json") -> Reply:
    """POST `data` as API Gateway sends a body that is not UTF-8 text: base64-encoded."""
    event = http_event("POST", path, raw_body="", headers={"content-type": content_type})
    event["body"] = base64.b64encode(data).decode("ascii")
    event["isBase64Encoded"] = True
    response = handle(event, None, api.client)
    return Reply(response["statusCode"], response.get("headers", {}), response["body"])


# -- bodies that are not JSON objects ----------------------------------------------------


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/x-www-form-urlencoded", "payload=1&data=1"),
        ("multipart/form-data", "payload=1"),  # no boundary
        (
            "multipart/form-data; boundary=XyZ",
            '--XyZ\r\nContent-Disposition: form-data; name="payload"\r\n\r\n1\r\n--XyZ--\r\n',
        ),
        ("text/plain", '{"payload": 1}'),
        ("application/xml", "<payload>1</payload>"),
        ("application/jsonx", '{"payload": 1}'),
    ],
    ids=["form", "multipart-no-boundary", "multipart", "text", "xml", "jsonx"],
)
def test_bodies_that_are_not_json_by_content_type_are_415(
    api: Api, env: TestEnvironment, waiting_run: str, route: str, content_type: str, raw: str
) -> None:
    raw = raw.replace("payload", field_of(route))

    reply = api.post(
        path_of(route, waiting_run), raw_body=raw, headers={"content-type": content_type}
    )

    assert_refused(reply, 415, "unsupported_media_type")
    assert_nothing_new(env, waiting_run)


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"],
)
def test_json_by_any_spelling_is_read(api: Api, env: TestEnvironment, content_type: str) -> None:
    reply = api.post(
        "/tasks/echo/runs", raw_body='{"payload": 1}', headers={"content-type": content_type}
    )

    assert reply.status == 202, reply.text
    assert env.get(reply.json["run_id"]).payload == 1


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize(
    "raw", ["[1, 2]", "[]", '"data"', "42", "true", "null", "[{}]", '[{"payload": 1}]']
)
def test_a_body_that_is_not_an_object_is_400(
    api: Api, env: TestEnvironment, waiting_run: str, route: str, raw: str
) -> None:
    reply = api.post(path_of(route, waiting_run), raw_body=raw.replace("payload", field_of(route)))

    assert_refused(reply, 400, "invalid_request")
    assert reply.json["error"]["details"][0]["loc"] == ["body"]
    assert_nothing_new(env, waiting_run)


# -- query parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"task_id": ""}, "task_id"),
        ({"task_id": "t" * 513}, "task_id"),
        ({"status": ""}, "status"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "c" * 4097}, "cursor"),
        ({"limit": ""}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"limit": "99999999999999999999999"}, "limit"),
    ],
)
def test_empty_or_oversized_query_parameters_are_400_in_our_words(
    api: Api, waiting_run: str, query: dict[str, str], field: str
) -> None:
    reply = api.get("/runs", query=query)

    assert_refused(reply, 400, "invalid_request")
    assert reply.json["error"]["details"][0]["loc"] == ["query", field]
    assert field in reply.json["error"]["message"]


def test_dynamodb_never_words_an_answer() -> None:
    with TestEnvironment(registry=make_registry(), backend="moto") as env:
        api = Api(env.client)
        for cursor in ("zzz", base64.urlsafe_b64encode(b"[1]").decode(), "%%%"):
            reply = api.get("/runs", query={"cursor": cursor})

            assert_refused(reply, 400, "invalid_cursor")
            assert "DynamoDB" not in reply.text and "cursor" in reply.json["error"]["message"]
        for query in ({"task_id": ""}, {"status": ""}, {"cursor": ""}):
            reply = api.get("/runs", query=query)

            assert_refused(reply, 400, "invalid_request")
            assert "DynamoDB" not in reply.text


# -- path parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/history"), ("POST", "/cancel"), ("POST", "/events/go")],
)
def test_a_run_id_longer_than_any_run_id_is_400(
    api: Api, env: TestEnvironment, method: str, suffix: str
) -> None:
    reply = api.call(method, "/runs/" + "r" * 513 + suffix)

    assert_refused(reply, 400, "invalid_request")
    assert reply.json["error"]["details"][0]["loc"] == ["path", "run_id"]
    assert env.list().runs == []


@pytest.mark.parametrize(
    "name",
    [
        "callback:tok_123",
        "callback%3Atok_123",
        "child:run_1",
        "a:b",
        "x" * 129,
        "%20",
        "%20padded",
        "padded%20",
        "tab%09",
        "nul%00",
        "line%0Abreak",
    ],
)
def test_event_names_outside_the_rule_are_400(
    api: Api, env: TestEnvironment, waiting_run: str, name: str
) -> None:
    reply = api.post(f"/runs/{waiting_run}/events/{name}", {"data": 1})

    assert_refused(reply, 400, "invalid_event_name")
    assert_nothing_new(env, waiting_run)


@pytest.mark.parametrize("path", ["/events/", "/events"])
def test_an_empty_event_name_is_400(
    api: Api, env: TestEnvironment, waiting_run: str, path: str
) -> None:
    reply = api.post(f"/runs/{waiting_run}{path}", {"data": 1})

    assert_refused(reply, 400, "invalid_event_name")
    assert_nothing_new(env, waiting_run)


@pytest.mark.parametrize(
    "name",
    ["a", "A-1", "x" * 128, "order.v2_ok", "9", "needs approval", ".hidden", "café", "a/b"],
)
def test_event_names_inside_the_rule_are_delivered(
    api: Api, env: TestEnvironment, waiting_run: str, name: str
) -> None:
    reply = api.post(f"/runs/{waiting_run}/events/{quote(name, safe='')}", {"data": 1})

    assert reply.status == 202, reply.text
    assert [event.name for event in env.store.list_inbox(waiting_run)] == [name]
