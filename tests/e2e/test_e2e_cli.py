"""End to end through the `durable` CLI, against the running `durable dev`; and its shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
from tests.e2e.devserver import ROOT, alive, child_pids, clean_env, free_port, start_dev_server

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, WaitFor
    from tests.e2e.devserver import DevServer

pytestmark = pytest.mark.e2e


def test_trigger_wait_prints_the_completed_run(cli: Cli) -> None:
    done = cli("trigger", "e2e-hello", "--payload", '{"name": "Cy"}', "--wait")

    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "COMPLETED"
    assert run["result"] == {"greeting": "hello, Cy"}


def test_trigger_wait_exits_1_when_the_run_fails(cli: Cli) -> None:
    done = cli("trigger", "e2e-fail", "--wait", "--timeout", "30")

    assert done.returncode == 1, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "FAILED"
    assert "refused on purpose" in run["error"]["message"]


def test_trigger_then_runs_and_show(cli: Cli, wait_for: WaitFor) -> None:
    started = cli("trigger", "e2e-hello", "--payload", '{"name": "Di"}', "--idempotency-key", "di")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    wait_for(run_id)

    listed = cli("runs", "--task", "e2e-hello", "--status", "completed", "--limit", "50")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    columns = header.split()
    assert columns[:7] == ["RUN", "ID", "TASK", "STATUS", "ATTEMPTS", "CREATED", "FINISHED"]
    assert columns[7:] in ([], ["TAGS"])  # TAGS once another test's e2e-hello run has tags
    assert any(row.startswith(run_id) and "COMPLETED" in row for row in rows)

    shown = cli("show", run_id, "--history")
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert run["run_id"] == run_id
    assert [entry["name"] for entry in run["history"]] == ["greet"]


def test_send_event_and_cancel(cli: Cli, wait_for: WaitFor) -> None:
    first = json.loads(cli("trigger", "e2e-wait-event", "--payload", "{}").stdout)["run_id"]
    second = json.loads(cli("trigger", "e2e-wait-event", "--payload", "{}").stdout)["run_id"]
    wait_for(first, {"WAITING"})
    wait_for(second, {"WAITING"})

    sent = cli("send-event", first, "approval", "--data", '{"by": "cli"}')
    cancelled = cli("cancel", second)

    assert sent.returncode == 0, sent.stderr
    assert wait_for(first)["result"] == {"received": {"by": "cli"}}
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["status"] == "CANCELLED"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("trigger", "e2e-hello", "--payload", "{name: 1}"), "--payload is not valid JSON"),
        (("trigger", "no-such-task", "--payload", "{}"), "no task registered"),
        (("trigger", "e2e-hello", "--payload", '{"name": 5}'), "does not fit task"),
        (("show", "run_nope"), "no run with id"),
        (("cancel", "run_nope"), "no run with id"),
        (("send-event", "run_nope", "approval", "--data", "[1,"), "--data is not valid JSON"),
    ],
)
def test_bad_input_exits_2_with_a_message(cli: Cli, args: tuple[str, ...], message: str) -> None:
    done = cli(*args)

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert done.stdout == ""


def test_an_unreachable_server_exits_2_with_a_hint(cli: Cli) -> None:
    done = cli("runs", url=f"http://127.0.0.1:{free_port()}")

    assert done.returncode == 2
    assert "make dev" in done.stderr


def test_with_the_aws_environment_set_the_cli_talks_to_aws_directly(
    dev_server: DevServer, wait_for: WaitFor
) -> None:
    # given the usual AWS environment, pointed at the dev server's moto
    env = clean_env() | {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": dev_server.moto_url,
        "DURABLE_TABLE_NAME": "durable-runs",
        "DURABLE_TASK_MODULES": "tests.e2e.e2e_tasks",
    }

    def durable(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "durable.cli", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)

    # when the CLI triggers a run (no --url: it writes to DynamoDB and SQS itself)
    done = durable("trigger", "e2e-hello", "--payload", '{"name": "Ed"}', "--wait")

    # then the dev server's worker runs it, and the CLI reads the result from DynamoDB
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["result"] == {"greeting": "hello, Ed"}
    assert wait_for(run["run_id"])["status"] == "COMPLETED"
    missing = durable("show", "run_nope")
    assert missing.returncode == 2
    assert "no run with id" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tasks", "no_such_module_here"), "cannot import the task modules"),
        (("--concurrency", "0"), "--concurrency must be at least 1"),
    ],
)
def test_dev_refuses_bad_options_with_exit_2(args: tuple[str, ...], message: str) -> None:
    command = [
        sys.executable,
        "-m",
        "durable.cli",
        "dev",
        "--ephemeral",
        "--port",
        str(free_port()),
        *args,
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr


def test_dev_on_a_port_in_use_exits_2(dev_server: DevServer) -> None:
    port = str(urlsplit(dev_server.url).port)
    command = [sys.executable, "-m", "durable.cli", "dev", "--ephemeral", "--port", port]
    done = subprocess.run(
        command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    assert "cannot listen" in done.stderr


def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    # given a second dev server with an invocation in the middle of a step
    server = start_dev_server("--concurrency", "2")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as api:
            response = api.post(
                "/tasks/e2e-hang-once/runs", json={"payload": {"dir": str(tmp_path)}}
            )
            assert response.status_code == 202
            deadline = time.monotonic() + 20
            while not (tmp_path / "hang.count").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        workers = child_pids(server.process.pid)
        assert len(workers) >= 2

        # when it gets Ctrl-C
        code = server.stop(signal.SIGINT, timeout=15)
    finally:
        server.stop(signal.SIGKILL)

    # then it stops cleanly and leaves no process behind
    assert code == 0, server.output[-3000:]
    assert "stopped" in server.output
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in workers if alive(pid)] == []
