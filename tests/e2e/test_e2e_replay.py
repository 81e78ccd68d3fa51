"""End to end: `durable replay` against the running `durable dev` (and against history files)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.e2e.devserver import ROOT, TASKS, DevServer, clean_env, start_dev_server

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, WaitFor

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dev_server() -> Iterator[DevServer]:
    """A stack of this module's own: `replay --open` replays every open run, and the
    session's stack holds runs other tests leave held on purpose (their code diverges)."""
    server = start_dev_server()
    yield server
    assert server.stop() == 0, server.output[-3000:]


@pytest.fixture(scope="module")
def api(dev_server: DevServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dev_server.url, timeout=30) as client:
        yield client


def waiting_run(cli: Cli, wait_for: WaitFor) -> str:
    started = cli("trigger", "e2e-wait-event", "--payload", '{"timeout_seconds": 600}')
    assert started.returncode == 0, started.stderr
    run_id: str = json.loads(started.stdout)["run_id"]
    wait_for(run_id, {"WAITING"})
    return run_id


def test_a_waiting_run_replays_cleanly(cli: Cli, wait_for: WaitFor) -> None:
    run_id = waiting_run(cli, wait_for)

    done = cli("replay", run_id, "--tasks", TASKS)

    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout == f"OK {run_id} (e2e-wait-event, 1 operation replayed)\n"


def test_every_open_run_replays_cleanly(cli: Cli, wait_for: WaitFor) -> None:
    run_id = waiting_run(cli, wait_for)

    done = cli("replay", "--open", "--tasks", TASKS)

    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    assert f"OK {run_id} (e2e-wait-event, 1 operation replayed)" in lines
    assert all(line.startswith("OK run") for line in lines[:-1])
    replayed = len(lines) - 1
    runs = "run" if replayed == 1 else "runs"
    assert lines[-1] == (
        f"{replayed} open {runs} replayed: {replayed} OK, 0 diverged, 0 of unknown tasks"
    )


def test_an_edited_history_file_diverges_with_a_side_by_side(
    cli: Cli, wait_for: WaitFor, tmp_path: Path
) -> None:
    started = cli("trigger", "e2e-hello", "--payload", '{"name": "Rae"}', "--wait")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    saved = tmp_path / "hello.json"

    done = cli("replay", run_id, "--tasks", TASKS, "--save", str(saved))

    assert done.returncode == 0, (done.stdout, done.stderr)
    data = json.loads(saved.read_text())
    assert data["run"]["run_id"] == run_id
    assert [(e["kind"], e["name"], e["value"]) for e in data["history"]] == [
        ("step_completed", "greet", "hello, Rae")
    ]
    # given: the recorded run used an older name for the step
    data["history"][0]["name"] = "greet-v0"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))

    diverged = cli("replay", "--history", str(edited), "--tasks", TASKS)

    assert diverged.returncode == 1, (diverged.stdout, diverged.stderr)
    lines = diverged.stdout.splitlines()
    assert lines[:3] == [
        f"DIVERGED {run_id} (e2e-hello, task attempt 1)",
        "position  recorded         requested",
        "0         step 'greet-v0'  step 'greet'",
    ]
    assert "today's code would hold these runs" in diverged.stdout  # held, never failed


def test_a_history_file_of_a_task_not_in_todays_code_exits_1(
    cli: Cli, wait_for: WaitFor, tmp_path: Path
) -> None:
    run_id = waiting_run(cli, wait_for)
    saved = tmp_path / "run.json"
    assert cli("replay", run_id, "--tasks", TASKS, "--save", str(saved)).returncode == 0
    data = json.loads(saved.read_text())
    data["run"]["task_id"] = "e2e-retired"
    saved.write_text(json.dumps(data))

    done = cli("replay", "--history", str(saved), "--tasks", TASKS)

    assert done.returncode == 1
    assert done.stdout.startswith(f"UNKNOWN TASK {run_id} (e2e-retired)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("replay", "run_nope", "--tasks", TASKS), "no run with id"),
        (("replay", "--history", "/nonexistent/run.json", "--tasks", TASKS), "cannot read"),
        (("replay", "--open", "--tasks", "no_such_task_module"), "no_such_task_module"),
    ],
)
def test_bad_input_exits_2(cli: Cli, args: tuple[str, ...], message: str) -> None:
    done = cli(*args)

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr


def test_replay_talks_to_aws_directly_with_the_aws_environment(
    dev_server: DevServer, cli: Cli, wait_for: WaitFor
) -> None:
    run_id = waiting_run(cli, wait_for)
    env = clean_env() | {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": dev_server.moto_url,
        "DURABLE_TABLE_NAME": "durable-runs",
        "DURABLE_TASK_MODULES": TASKS,
    }

    done = subprocess.run(
        [sys.executable, "-m", "durable.cli", "replay", run_id, "--aws"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout == f"OK {run_id} (e2e-wait-event, 1 operation replayed)\n"
