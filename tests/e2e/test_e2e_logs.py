"""Logs per run on `durable dev`: the worker processes' lines reach moto's CloudWatch Logs,
and a run's lines come back from `GET /runs/{id}/logs` and `durable logs RUN_ID [--follow]`."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from tests.e2e.conftest import Cli, WaitFor
from tests.e2e.devserver import ROOT, DevServer, clean_env

pytestmark = pytest.mark.e2e

EXPECTED = [
    ("before the nap", "durable", None),
    ("stdlib before the nap", "tests.e2e.e2e_tasks", None),
    ("stdlib in a step", "tests.e2e.e2e_tasks", "log"),
    ("ctx.logger in a step", "durable", "log"),
    ("stdlib after the nap", "tests.e2e.e2e_tasks", None),
]


def test_a_runs_lines_come_back_from_the_api_and_the_cli(
    api: httpx.Client, wait_for: WaitFor, cli: Cli
) -> None:
    run_id = api.post("/tasks/e2e-logs/runs", json={"payload": {"seconds": 0.5}}).json()["run_id"]
    wait_for(run_id, {"COMPLETED"})

    lines: list[dict[str, object]] = []
    deadline = time.monotonic() + 10  # shipped in batches: a moment after the run ends
    while len(lines) < len(EXPECTED) and time.monotonic() < deadline:
        body = api.get(f"/runs/{run_id}/logs").json()
        lines = body["logs"]
        time.sleep(0.2)

    assert [(line["message"], line["logger"], line["step"]) for line in lines] == EXPECTED
    assert all(line["attempt"] == 1 for line in lines)
    assert lines[0]["data"] == {"seconds": 0.5}
    assert lines[3]["data"] == {"detail": "x"}
    # nothing new after the last page's cursor
    after = api.get(f"/runs/{run_id}/logs", params={"cursor": body["next_cursor"]}).json()
    assert after["logs"] == [] and after["next_cursor"]

    done = cli("logs", run_id)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert len(printed) == len(EXPECTED)
    for text, (message, logger, step) in zip(printed, EXPECTED, strict=True):
        assert f"{logger}: {message}" in text
        assert (f"[{step}]" in text) == (step is not None)

    unknown = cli("logs", "run_0000")
    assert unknown.returncode == 2
    assert "run_not_found" in unknown.stderr


def test_follow_prints_the_lines_as_they_come_and_ends_with_the_run(
    api: httpx.Client, dev_server: DevServer
) -> None:
    run_id = api.post("/tasks/e2e-logs/runs", json={"payload": {"seconds": 3}}).json()["run_id"]
    started = time.monotonic()
    follower = subprocess.run(
        [
            sys.executable,
            "-m",
            "durable.cli",
            "logs",
            run_id,
            "--follow",
            "--json",
            "--interval",
            "0.3",
            "--url",
            dev_server.url,
        ],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started

    assert follower.returncode == 0, follower.stderr
    lines = [json.loads(text) for text in follower.stdout.splitlines()]
    assert [(line["message"], line["logger"], line["step"]) for line in lines] == EXPECTED
    assert api.get(f"/runs/{run_id}").json()["status"] == "COMPLETED"
    # it followed the run through its 3-second nap, and stopped on its own once it ended
    assert took >= 3
