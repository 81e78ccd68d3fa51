"""`durable bulk ...`: the CLI starts a bulk job through the API (in process here), follows it
with `--wait`, shows it, and refuses bad input with exit code 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from durable import Context, RunStatus, TaskRegistry, task
from durable.api import handle
from durable.cli import main
from durable.local.gateway import build_event
from durable.testing import TestEnvironment


class EnvTransport:
    """The CLI's transport, answering from the test environment's API in this process; the
    workers run between requests (as they would in the background)."""

    def __init__(self, env: TestEnvironment) -> None:
        self.env = env
        self.requests: list[tuple[str, str, Any]] = []

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        raw = json.dumps(body).encode() if body is not None else b""
        headers = [("content-type", "application/json")]
        event = build_event(method=method, target=path, headers=headers, body=raw)
        response = handle(event, None, self.env.client)
        self.env.run_until_idle()
        return int(response["statusCode"]), json.loads(response["body"])


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    registry = TaskRegistry()

    @task(id="order", registry=registry)
    def order(ctx: Context, payload: int) -> Any:
        return ctx.wait_for_event("approve")

    with TestEnvironment(registry=registry) as environment:
        yield environment


@pytest.fixture
def transport(env: TestEnvironment, monkeypatch: pytest.MonkeyPatch) -> EnvTransport:
    answering = EnvTransport(env)
    monkeypatch.setattr("durable.cli.bulk.make_transport", lambda args: answering)
    return answering


def test_bulk_cancel_wait_follows_the_job_to_its_end(
    env: TestEnvironment, transport: EnvTransport, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [env.trigger("order", n).run_id for n in range(4)]
    env.run_until_idle()
    since = env.now().replace(year=2000).isoformat()

    code = main(
        ["bulk", "cancel", "--task", "order", "--status", "waiting", "--since", since, "--wait"]
    )

    out = capsys.readouterr().out
    assert code == 0, out
    assert "cancel completed: 4 matched, 4 acted, 0 skipped, 0 errors" in out
    assert all(env.get(run_id).status is RunStatus.CANCELLED for run_id in runs)
    method, path, body = transport.requests[0]
    assert (method, path) == ("POST", "/bulk")
    assert body == {
        "action": "cancel",
        "filter": {"task_id": "order", "status": "WAITING", "created_after": since},
    }
    job_id = out.split()[0]

    assert main(["bulk", "show", job_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["job_id"], shown["state"], shown["acted"]) == (job_id, "completed", 4)


def test_bulk_without_wait_prints_the_started_job(
    env: TestEnvironment, transport: EnvTransport, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bulk", "cancel", "--all", "--json"]) == 0
    job = json.loads(capsys.readouterr().out)
    assert job["state"] == "running" and job["job_id"].startswith("bulk_")
    assert transport.requests[0][2] == {"action": "cancel", "filter": {"all": True}}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bulk", "cancel"], "no filter"),
        (["bulk", "retry"], "no filter"),
        (["bulk", "cancel", "--since", "yesterday"], "created_after"),
        (["bulk", "show", "bulk_" + "0" * 32], "no bulk job"),
    ],
)
def test_bad_input_exits_2(
    transport: EnvTransport, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_status_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bulk", "cancel", "--status", "SLEEPY"])
    assert exit_.value.code == 2
