"""`durable logs RUN_ID [--follow]` against the API's own code on the test kit's runtime."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from durable import Context, TaskRegistry, task
from durable.api import handle
from durable.cli import logs as cli_logs
from durable.cli import main
from durable.local.gateway import build_event
from durable.testing import TestEnvironment

task_log = logging.getLogger("tests.cli_logs.task")


class KitTransport:
    """The CLI's transport to the API code serving the test kit's client (as `--aws` runs
    it in process); `before` is called before each request with its path."""

    def __init__(self, env: TestEnvironment, before: Callable[[str], None] | None = None) -> None:
        self.env = env
        self.before = before or (lambda path: None)
        self.paths: list[str] = []

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        self.paths.append(path)
        self.before(path)
        target = path + (f"?{urlencode(query)}" if query else "")
        event = build_event(method=method, target=target, headers=[], body=b"")
        response = handle(event, None, self.env.client)
        return int(response["statusCode"]), json.loads(response["body"])


@pytest.fixture
def gate(registry: TaskRegistry) -> None:
    @task(id="gate", registry=registry)
    def gate_task(ctx: Context, payload: None) -> None:
        ctx.logger.info("waiting for go", step_hint="none")
        ctx.wait_for_event("go")
        task_log.warning("went")


def use(monkeypatch: pytest.MonkeyPatch, transport: KitTransport) -> None:
    monkeypatch.setattr(cli_logs, "make_transport", lambda args: transport)


def test_logs_prints_what_the_run_logged_so_far_and_exits(
    gate: None, env: TestEnvironment, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    run = env.trigger("gate")
    env.run_until_idle()
    use(monkeypatch, KitTransport(env))
    capsys.readouterr()  # what the worker printed

    assert main(["logs", run.run_id]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].endswith('INFO  durable: waiting for go step_hint="none"')

    assert main(["logs", run.run_id, "--json"]) == 0
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert line["message"] == "waiting for go" and line["logger"] == "durable"


def test_follow_prints_new_lines_and_ends_once_the_run_has_ended(
    gate: None, env: TestEnvironment, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    run = env.trigger("gate")
    env.run_until_idle()
    logs_requests = 0

    def before(path: str) -> None:
        nonlocal logs_requests
        if path.endswith("/logs"):
            logs_requests += 1
            if logs_requests == 3:  # the follower has polled twice with nothing new
                env.send_event(run.run_id, "go")
                env.run_until_idle()

    transport = KitTransport(env, before)
    use(monkeypatch, transport)

    code = main(["logs", run.run_id, "--follow", "--interval", "0.01", "--settle", "0"])

    assert code == 0
    # the CLI's lines (the worker, in this process, prints its JSON records too)
    out = [text for text in capsys.readouterr().out.splitlines() if not text.startswith("{")]
    assert [text.split(" ", 1)[1] for text in out] == [
        'INFO  durable: waiting for go step_hint="none"',
        "WARNING tests.cli_logs.task: went",
    ]
    # it saw the run end, then asked once more for lines and got none: it stopped there
    assert logs_requests == 4
    assert env.get(run.run_id).status == "COMPLETED"


def test_follow_stops_quietly_on_ctrl_c(
    gate: None, env: TestEnvironment, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    run = env.trigger("gate")
    env.run_until_idle()
    polls = 0

    def before(path: str) -> None:
        nonlocal polls
        polls += 1
        if polls == 5:
            raise KeyboardInterrupt

    use(monkeypatch, KitTransport(env, before))
    capsys.readouterr()
    assert main(["logs", run.run_id, "--follow", "--interval", "0.01"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # the line, once


def test_an_unknown_run_is_exit_code_2_with_the_apis_message(
    env: TestEnvironment, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    use(monkeypatch, KitTransport(env))
    assert main(["logs", "run_nope"]) == 2
    assert "no run with id 'run_nope' (404 run_not_found)" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--interval", "0"], ["--settle", "-1"]])
def test_bad_options_are_exit_code_2(
    env: TestEnvironment, monkeypatch: pytest.MonkeyPatch, option: list[str]
) -> None:
    use(monkeypatch, KitTransport(env))
    assert main(["logs", "run_x", "--follow", *option]) == 2
