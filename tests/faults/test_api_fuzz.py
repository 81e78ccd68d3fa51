"""The HTTP API under a schema-driven fuzzer: every operation of its own /openapi.json.

Schemathesis reads the OpenAPI document the API serves and generates requests for each
operation, fitting the schema and breaking it (positive and negative modes). Each request
travels in process: a WSGI shim turns it into the API Gateway HTTP API (v2) event that
`durable dev` builds (`build_event`) and hands it to `durable.api.handle`, on the memory
backend. Checked for every answer:

- never a 5xx, and every 4xx in the one error shape `{"error": {"code", "message"}}`;
- schemathesis' conformance checks: the status is documented for the operation, the body
  fits the documented schema, the content type is the documented one, a request that
  breaks the schema is refused, a wrong method gets 405.

Bounded for CI: a fixed number of examples per operation, derandomized, so every run sends
the same requests (about 20 s on two cores: each registered task's own trigger operation,
`POST /tasks/<task_id>/runs`, is one of them).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import ValidationError
from schemathesis import checks
from schemathesis.checks import CheckContext
from schemathesis.core.parameters import ParameterLocation

from durable.api import handle
from durable.api.models import TriggerRequest
from durable.errors import PayloadValidationError
from durable.local.gateway import build_event
from durable.testing import TestEnvironment
from tests.unit.test_api import make_registry

EXAMPLES_PER_OPERATION = 30

# The API's in-memory world for the whole module (the memory backend holds nothing
# outside this object), and the schema it serves, loaded through the API itself.
REGISTRY = make_registry()
ENV = TestEnvironment(registry=REGISTRY).__enter__()


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A WSGI request → the API Gateway v2 event `durable dev` would build → the API."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = [
        (key[5:].replace("_", "-").lower(), value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    if environ.get("CONTENT_TYPE"):
        headers.append(("content-type", environ["CONTENT_TYPE"]))
    # The path still percent-encoded, as API Gateway passes it on.
    target = urlsplit(environ["RAW_URI"]).path
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    event = build_event(method=environ["REQUEST_METHOD"], target=target, headers=headers, body=body)
    response = handle(event, None, ENV.client)
    status = int(response["statusCode"])
    start_response(f"{status} -", list(response.get("headers", {}).items()))
    return [str(response.get("body") or "").encode("utf-8")]


# Every operation, the trigger of each registered task included (`durable.api.tasks`), but
# "picky"'s: its validator breaks on purpose, a 500 that `test_api.py` expects.
schema = schemathesis.openapi.from_wsgi("/openapi.json", wsgi_app).exclude(path="/tasks/picky/runs")


def negative_data_rejection(
    ctx: CheckContext, response: schemathesis.Response, case: Any
) -> bool | None:
    """Schemathesis' check that schema-breaking requests are refused, query aside.

    On the wire every query value is a string: a query parameter "of the wrong type" (an
    object, printed as text) is often a valid string value, and rightly accepted. The
    query's own rules are tested by hand in `test_api_inputs.py`.
    """
    meta = case.meta
    if meta is None:
        return None
    broken = {location for location, info in meta.components.items() if info.mode.is_negative}
    if broken <= {ParameterLocation.QUERY}:
        return None
    if response.status_code < 300 and accepted_by_the_task(case):
        return None
    result: bool | None = checks.negative_data_rejection(ctx, response, case)
    return result


def accepted_by_the_task(case: Any) -> bool:
    """Whether an accepted trigger of one task's own operation (`POST /tasks/<id>/runs`) is
    one its payload type accepts, and its envelope one `TriggerRequest` accepts.

    A task's payload schema documents the values its type holds; pydantic validates in lax
    mode (`false` or `"5"` for an int, see `TaskDefinition.validate_payload`), so a payload
    that breaks the schema may still be converted without loss and accepted. Such a request
    is within the contract; any other accepted one is not.
    """
    path = case.operation.path
    if not path.startswith("/tasks/") or "{" in path or not isinstance(case.body, dict):
        return False
    task_id = unquote(path.split("/")[2])
    envelope = {key: value for key, value in case.body.items() if key != "payload"}
    try:
        TriggerRequest.model_validate(envelope)
        REGISTRY.get(task_id).validate_payload(case.body.get("payload"))
    except (ValidationError, PayloadValidationError):
        return False
    return True


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    negative_data_rejection,
    checks.unsupported_method,
]


# Registered in `make_registry` ("picky" aside: its validator breaks on purpose, a 500 that
# `test_api.py` expects).
TASKS = ["echo", "order", "approval", "flaky", "broken", "fan-out"]


def point_at(case: Any, parameter: str, existing: list[str]) -> None:
    meta = case.meta
    if meta is not None and any(
        location == ParameterLocation.PATH and info.mode.is_negative
        for location, info in meta.components.items()
    ):
        return  # a path broken on purpose stays broken: it must be refused
    value = (case.path_parameters or {}).get(parameter)
    if isinstance(value, str):
        pick = zlib.crc32(value.encode()) % (len(existing) + 1)
        if pick < len(existing):
            case.path_parameters[parameter] = existing[pick]


@pytest.fixture(scope="module")
def run_ids() -> Iterator[list[str]]:
    """Runs that exist, so that generated requests reach them: waiting, done and failed."""
    client = ENV.client
    ids = [
        client.trigger("approval", None).run_id,
        client.trigger("echo", {"anything": [1, 2.5, "x"]}).run_id,
        client.trigger("broken", None).run_id,
        client.trigger("fan-out", None).run_id,
    ]
    ENV.run_until_idle()
    yield ids
    ENV.__exit__(None, None, None)


def error_shape(ctx: CheckContext, response: schemathesis.Response, case: Any) -> bool:
    """Every 4xx and 5xx body is `{"error": {"code", "message", "details"?}}`."""
    if response.status_code < 400:
        return True
    body = json.loads(response.text)
    assert set(body) == {"error"}, body
    assert set(body["error"]) <= {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert "Traceback" not in response.text
    return True


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_answers_within_its_contract(case: Any, run_ids: list[str]) -> None:
    # Point most generated ids at runs and tasks that exist, so that requests get past the
    # lookup (which one: a function of the generated id, so a failing example replays).
    point_at(case, "run_id", run_ids)
    point_at(case, "task_id", TASKS)

    response = case.call()

    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    case.validate_response(response, checks=CHECKS, additional_checks=[error_shape])
