"""Fixtures for the end-to-end tests: `durable dev` as a subprocess, driven over HTTP and the CLI.

One dev server serves the whole session (`dev_server`); it runs the tasks of
`tests.e2e.e2e_tasks` with a 4-second invocation time limit, so a crashed invocation is
redelivered after 6 seconds. Stopping it at the end checks that no process is left behind.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.devserver import (
    ROOT,
    TERMINAL,
    DevServer,
    alive,
    child_pids,
    clean_env,
    start_dev_server,
)


@pytest.fixture(scope="session")
def dev_server() -> Iterator[DevServer]:
    server = start_dev_server()
    yield server
    workers = child_pids(server.process.pid)
    code = server.stop()
    assert code == 0, server.output[-3000:]
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in workers if alive(pid)] == [], "worker processes outlived durable dev"


@pytest.fixture(scope="session")
def api(dev_server: DevServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dev_server.url, timeout=30) as client:
        yield client


WaitFor = Callable[..., dict[str, Any]]


@pytest.fixture
def wait_for(api: httpx.Client, dev_server: DevServer) -> WaitFor:
    """`wait_for(run_id, {"COMPLETED"}, timeout=30)`: poll the run until it has one of them."""

    def wait(run_id: str, statuses: set[str] | None = None, timeout: float = 30) -> dict[str, Any]:
        wanted = statuses or TERMINAL
        limit = time.monotonic() + timeout
        while True:
            run: dict[str, Any] = api.get(f"/runs/{run_id}").json()
            if run["status"] in wanted:
                return run
            if time.monotonic() > limit:
                pytest.fail(
                    f"run {run_id} is {run['status']}, not {sorted(wanted)}, after {timeout}s:\n"
                    f"{run}\n--- durable dev output ---\n{dev_server.output[-4000:]}"
                )
            time.sleep(0.1)

    return wait


Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(dev_server: DevServer) -> Cli:
    """`cli("runs", "--limit", "5")`: run the `durable` CLI against the dev server."""

    def run(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "durable.cli", *args, "--url", url or dev_server.url],
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run
