"""`durable runs --since/--until`: the CLI passes the range to `GET /runs` (in process here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from durable import Context, TaskRegistry, task
from durable.api import handle
from durable.cli import main
from durable.local.gateway import build_event
from durable.testing import TestEnvironment


class EnvTransport:
    """The CLI's transport, answering from the test environment's API in this process."""

    def __init__(self, env: TestEnvironment) -> None:
        self.env = env

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        from urllib.parse import urlencode

        target = path + (f"?{urlencode(query)}" if query else "")
        event = build_event(method=method, target=target, headers=[], body=b"")
        response = handle(event, None, self.env.client)
        return int(response["statusCode"]), json.loads(response["body"])


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestEnvironment]:
    registry = TaskRegistry()

    @task(id="echo", registry=registry)
    def echo(ctx: Context, payload: Any) -> Any:
        return payload

    with TestEnvironment(registry=registry) as environment:
        monkeypatch.setattr(
            "durable.cli.runs.make_transport", lambda args: EnvTransport(environment)
        )
        yield environment


def test_runs_since_and_until(env: TestEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    start = env.now()
    made = []
    for _ in range(4):
        made.append(env.trigger("echo", "x" * 1000).run_id)
        env.clock.advance(timedelta(hours=1))
    since = (start + timedelta(minutes=30)).isoformat()
    until = (start + timedelta(minutes=150)).isoformat()

    assert main(["runs", "--since", since, "--until", until, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [run["run_id"] for run in listed["runs"]] == [made[2], made[1]]
    assert "x" * 1000 not in json.dumps(listed)  # summaries

    assert main(["runs", "--since", since]) == 0
    table = capsys.readouterr().out
    assert made[3] in table and made[0] not in table


def test_a_bad_instant_is_exit_2(env: TestEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--since", "last tuesday"]) == 2
    assert "created_after" in capsys.readouterr().err
