"""`durable stats`: the table and `--json`, through the API's own code in this process."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from tests.unit.test_api import make_registry

from durable.cli import console
from durable.cli import stats as stats_cli
from durable.cli.transport import InProcessTransport
from durable.testing import TestEnvironment


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=make_registry()) as environment:
        transport = InProcessTransport.__new__(InProcessTransport)
        transport._client = environment.client  # the test kit's client behind the API
        monkeypatch.setattr(stats_cli, "make_transport", lambda args: transport)
        flaky = environment.trigger("flaky")
        environment.run_until_complete(flaky.run_id)
        environment.trigger("approval")
        environment.run_until_idle()
        yield environment


def test_stats_prints_the_queue_the_workers_and_a_row_per_task(
    env: TestEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert console.main(["stats"]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "queue memory: 0 waiting, 0 in flight, 0 delayed"
    assert lines[2] == "workers: 0 in use of no known limit"
    header = lines[4].split()
    statuses = "QUEUED RUNNING WAITING RETRYING COMPLETED FAILED CANCELLED TIMED_OUT"
    assert header[:9] == ["TASK", *statuses.split()]
    rows = {line.split()[0]: line.split() for line in lines[5:]}
    assert set(rows) == set(make_registry().ids()) | {"(all)"}
    # flaky: completed once, started once in the last hour, one retry per run
    assert rows["flaky"][5] == "1" and rows["flaky"][9] == "1" and rows["flaky"][12] == "1.00"
    assert rows["approval"][3] == "1"  # WAITING
    assert rows["(all)"][3] == "1" and rows["(all)"][5] == "1"


def test_stats_json_is_the_apis_answer(
    env: TestEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert console.main(["stats", "--json"]) == 0

    figures = json.loads(capsys.readouterr().out)
    assert {"queue", "dead_letter", "workers", "tasks", "totals"} <= set(figures)
    [flaky] = [task for task in figures["tasks"] if task["task_id"] == "flaky"]
    assert flaky["by_status"]["COMPLETED"] == 1
    assert flaky["last_hour"]["attempt_retries"] == 1


def test_stats_with_no_server_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert console.main(["stats", "--url", "http://127.0.0.1:9"]) == 2
    assert "cannot reach the durable API" in capsys.readouterr().err
