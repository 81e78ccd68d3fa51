"""The repair routes over HTTP events in process (`durable.api.repair`) and the CLI verbs
(`durable.cli.repair`) through the CLI's own transports, which declare their caller."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from durable import Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.api import handle
from durable.cli import main
from durable.cli.transport import HttpTransport, InProcessTransport, cli_caller
from durable.local.gateway import build_event
from durable.records import CheckpointKind
from durable.services.audit import action_details
from durable.testing import TestEnvironment

BROKEN = {"yes": True}


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    registry = TaskRegistry()

    def effect(name: str) -> str:
        if name == "s2" and BROKEN["yes"]:
            raise RuntimeError("s2 is broken")
        return name

    @task(id="three", registry=registry, retry=RetryPolicy(max_attempts=1))
    def three(ctx: Context, payload: Any) -> list[str]:
        return [
            ctx.step(name, effect, name, retry=RetryPolicy(max_attempts=1))
            for name in ("s1", "s2", "s3")
        ]

    BROKEN["yes"] = True
    with TestEnvironment(registry=registry) as environment:
        yield environment


def _call(
    env: TestEnvironment, method: str, path: str, body: Any = None, caller: str | None = None
) -> tuple[int, Any]:
    headers = [("content-type", "application/json")]
    if caller is not None:
        headers.append(("x-durable-caller", caller))
    data = json.dumps(body).encode() if body is not None else b""
    event = build_event(method=method, target=path, headers=headers, body=data)
    answer = handle(event, None, env.client)
    return int(answer["statusCode"]), json.loads(answer["body"])


def _failed_run(env: TestEnvironment) -> str:
    run = env.trigger("three", {"x": 1})
    assert env.run_until_complete(run.run_id).status == RunStatus.FAILED
    return run.run_id


def _actions(env: TestEnvironment, run_id: str) -> list[tuple[str, dict[str, object]]]:
    return [
        (cp.name, action_details(cp))
        for cp in env.store.load_history(run_id)
        if cp.kind is CheckpointKind.RUN_ACTION
    ]


def test_retry_over_http_records_the_caller(env: TestEnvironment) -> None:
    run_id = _failed_run(env)
    BROKEN["yes"] = False
    status, body = _call(env, "POST", f"/runs/{run_id}/retry", caller="cli ada@box")
    assert status == 200
    assert (body["status"], body["attempts"], body["error"]) == ("QUEUED", 2, None)
    assert _actions(env, run_id)[0][1]["by"] == "unverified:cli ada@box"
    assert env.run_until_complete(run_id).status == RunStatus.COMPLETED

    status, body = _call(env, "POST", f"/runs/{run_id}/retry")
    assert (status, body["error"]["code"]) == (409, "run_completed")
    status, body = _call(env, "POST", "/runs/run_nope/retry")
    assert (status, body["error"]["code"]) == (404, "run_not_found")
    status, timeline = _call(env, "GET", f"/runs/{run_id}/timeline")
    assert status == 200
    assert [(a["name"], a["by"]) for a in timeline["actions"]] == [
        ("retry", "unverified:cli ada@box")
    ]
    status, history = _call(env, "GET", f"/runs/{run_id}/history")
    [action] = [e for e in history["history"] if e["kind"] == "run_action"]
    assert action["value"]["by"] == "unverified:cli ada@box"
    assert action["value"]["previous"]["status"] == "FAILED"


def test_rerun_and_fork_over_http(env: TestEnvironment) -> None:
    run_id = _failed_run(env)
    status, body = _call(env, "POST", f"/runs/{run_id}/rerun", {"idempotency_key": "r"})
    assert status == 202
    assert body["origin"] == {"kind": "rerun", "run_id": run_id, "from_step": None}
    assert body["payload"] == {"x": 1}
    status, again = _call(env, "POST", f"/runs/{run_id}/rerun", {"idempotency_key": "r"})
    assert (status, again["run_id"]) == (202, body["run_id"])
    status, shown = _call(env, "GET", f"/runs/{body['run_id']}")
    assert shown["origin"]["run_id"] == run_id

    status, fork = _call(env, "POST", f"/runs/{run_id}/fork", {"from_step": 1}, caller="me")
    assert status == 202
    assert fork["origin"] == {"kind": "fork", "run_id": run_id, "from_step": 1}
    assert ("fork", {"by": "unverified:me", "run_id": fork["run_id"], "from_step": 1}) in (
        _actions(env, run_id)
    )
    status, fork = _call(env, "POST", f"/runs/{run_id}/fork", {"from_step": "s2"})
    assert (status, fork["origin"]["from_step"]) == (202, 1)


def test_bad_repair_requests_are_4xx_and_store_nothing(env: TestEnvironment) -> None:
    run_id = _failed_run(env)
    before = len(env.list().runs)
    status, body = _call(env, "POST", f"/runs/{run_id}/fork", {"from_step": 99})
    assert (status, body["error"]["code"]) == (422, "invalid_fork_point")
    assert body["error"]["details"][0]["valid_from_steps"] == [0, 1, 2]
    status, body = _call(env, "POST", f"/runs/{run_id}/fork", {})
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    status, body = _call(env, "POST", f"/runs/{run_id}/fork", {"from_step": 1, "x": 2})
    assert status == 400
    status, body = _call(env, "POST", f"/runs/{run_id}/rerun", {"idempotency_key": ""})
    assert status == 400
    assert len(env.list().runs) == before


def test_the_openapi_document_has_the_repair_routes(env: TestEnvironment) -> None:
    _, document = _call(env, "GET", "/openapi.json")
    paths = document["paths"]
    assert set(paths["/runs/{run_id}/fork"]["post"]["responses"]) == {
        "202",
        "400",
        "404",
        "409",
        "422",
    }
    assert "200" in paths["/runs/{run_id}/retry"]["post"]["responses"]
    assert "OriginBody" in document["components"]["schemas"]
    assert "actions" in document["components"]["schemas"]["TimelineResponse"]["properties"]


def _in_process(env: TestEnvironment) -> InProcessTransport:
    transport = InProcessTransport.__new__(InProcessTransport)
    transport._client = env.client  # the transport's own code, on the test's client
    return transport


def test_the_cli_verbs(
    env: TestEnvironment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("durable.cli.repair.make_transport", lambda args: _in_process(env))
    run_id = _failed_run(env)
    BROKEN["yes"] = False

    assert main(["fork", run_id, "--from-step", "s2", "--idempotency-key", "k"]) == 0
    fork = json.loads(capsys.readouterr().out)
    assert fork["origin"] == {"kind": "fork", "run_id": run_id, "from_step": 1}
    assert main(["rerun", run_id]) == 0
    rerun = json.loads(capsys.readouterr().out)
    assert rerun["origin"]["kind"] == "rerun"
    assert main(["retry", run_id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "QUEUED"
    env.run_until_idle()
    assert {name: details["by"] for name, details in _actions(env, run_id)} == {
        "fork": f"unverified:{cli_caller()}",
        "rerun": f"unverified:{cli_caller()}",
        "retry": f"unverified:{cli_caller()}",
    }

    assert main(["retry", run_id]) == 2
    assert "(409 run_completed)" in capsys.readouterr().err
    assert main(["fork", run_id, "--from-step", "99"]) == 2
    err = capsys.readouterr().err
    assert "invalid_fork_point" in err and "outside run" in err
    assert main(["retry", "run_nope"]) == 2


def test_the_http_transport_declares_the_caller() -> None:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers.get("X-Durable-Caller"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        transport = HttpTransport(f"http://127.0.0.1:{server.server_port}")
        assert transport.request("POST", "/runs/x/retry") == (200, {})
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [cli_caller()]
    assert cli_caller().startswith("cli ") and "@" in cli_caller()
