"""`durable dev` keeps its state: kill -9 the whole stack at any moment, start it again.

The bar (issue 8): every run whose trigger was acknowledged is there and completes, no step
whose checkpoint write was acknowledged runs again, sleeping runs wake (late, never lost),
and events still reach waiting runs.

Each run is an `e2e-chain`: a step, a sleep, a step, a wait for "go", a step. Every step
writes its start time to disk before it does anything; the checkpoint of a step is written
after it ended, with the time it was recorded. So a step ran again after its checkpoint was
acknowledged exactly when one of its starts is later than its checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.devserver import (
    ROOT,
    DevServer,
    alive,
    clean_env,
    free_port,
    start_dev_server,
)

STEPS = ("first", "second", "third")


def start(state: Path, port: int) -> DevServer:
    return start_dev_server(
        "--state-dir", str(state), "--concurrency", "3", port=port, own_group=True
    )


def kill_everything(server: DevServer) -> None:
    """SIGKILL to the stack, its moto and every worker process at once."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(server.process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail("processes of the killed stack are still alive")


class Burst:
    """Clients triggering chains as fast as they can; keeps the ids of acknowledged runs."""

    def __init__(self, url: str, directory: Path, clients: int = 4) -> None:
        self.url = url
        self.directory = directory
        self.acknowledged: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._trigger, args=(client,), daemon=True)
            for client in range(clients)
        ]

    def __enter__(self) -> Burst:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _trigger(self, client: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as api:
            for index in range(10_000):
                if self._stop.is_set():
                    return
                payload = {
                    "dir": str(self.directory),
                    "name": f"c{client}-{index}",
                    "nap_seconds": 1.0,
                    "step_seconds": 0.1,
                }
                try:
                    response = api.post("/tasks/e2e-chain/runs", json={"payload": payload})
                except httpx.HTTPError:
                    return  # the stack is gone: this trigger was never acknowledged
                if response.status_code == 202:
                    with self._lock:
                        self.acknowledged.append(response.json()["run_id"])


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def statuses(api: httpx.Client, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    found = {}
    for run_id in run_ids:
        response = api.get(f"/runs/{run_id}")
        assert response.status_code == 200, f"run {run_id} was acknowledged and is gone"
        found[run_id] = response.json()
    return found


def finish(api: httpx.Client, run_ids: list[str], timeout: float = 120) -> None:
    """Send "go" to every run as it comes to wait for it, until all have completed."""
    deadline = time.monotonic() + timeout
    went: set[str] = set()
    while True:
        runs = statuses(api, run_ids)
        for run_id, run in runs.items():
            if run_id not in went and run.get("waiting_for") == "go":
                response = api.post(f"/runs/{run_id}/events/go", json={"data": "yes"})
                assert response.status_code == 202, response.text
                went.add(run_id)
        failed = {run_id: run for run_id, run in runs.items() if run["status"] == "FAILED"}
        assert not failed, f"runs failed: {failed}"
        if all(run["status"] == "COMPLETED" for run in runs.values()):
            return
        if time.monotonic() >= deadline:
            stuck = {k: (v["status"], v.get("waiting_for")) for k, v in runs.items()}
            stuck = {k: v for k, v in stuck.items() if v[0] != "COMPLETED"}
            pytest.fail(f"runs did not complete: {stuck}")
        time.sleep(0.3)


def assert_no_step_ran_after_its_checkpoint(
    api: httpx.Client, run_ids: list[str], directory: Path
) -> None:
    for run_id in run_ids:
        run = api.get(f"/runs/{run_id}").json()
        name = run["payload"]["name"]
        history = api.get(f"/runs/{run_id}/history").json()["history"]
        checkpoints = {
            entry["name"]: datetime.fromisoformat(entry["at"]).timestamp()
            for entry in history
            if entry["kind"] == "step_completed"
        }
        assert set(checkpoints) == set(STEPS), history
        for step in STEPS:
            starts = [
                float(line) for line in (directory / f"{name}.{step}.times").read_text().split()
            ]
            assert starts, f"{run_id} {step} never ran"
            late = [started for started in starts if started > checkpoints[step]]
            assert late == [], f"{run_id} ran {step} again after its checkpoint was written"


@pytest.mark.parametrize("moment", ["during-triggers", "mid-steps", "while-waiting"])
def test_kill_9_loses_no_acknowledged_run_and_reruns_no_checkpointed_step(
    tmp_path: Path, moment: str
) -> None:
    state, work = tmp_path / "state", tmp_path / "work"
    work.mkdir()
    port = free_port()
    server = start(state, port)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as api:
            # given runs being triggered, executed and waiting, when everything is killed
            with Burst(server.url, work) as burst:
                wait_until(lambda: len(burst.acknowledged) >= 12, 60, "a dozen triggers")
                if moment == "during-triggers":
                    kill_everything(server)
            acknowledged = list(burst.acknowledged)
            if moment == "mid-steps":
                time.sleep(0.6)  # some first steps running, some naps started
                kill_everything(server)
            elif moment == "while-waiting":
                wait_until(
                    lambda: all(
                        run.get("waiting_for") == "go"
                        for run in statuses(api, acknowledged).values()
                    ),
                    90,
                    "every run to wait for its event",
                )
                kill_everything(server)
    finally:
        if alive(server.process.pid):
            kill_everything(server)

    # then, started again on the same state, every acknowledged run is there and completes
    again = start(state, port)
    try:
        with httpx.Client(base_url=again.url, timeout=10) as api:
            assert len(statuses(api, acknowledged)) == len(acknowledged)
            finish(api, acknowledged)
            assert_no_step_ran_after_its_checkpoint(api, acknowledged, work)
    finally:
        again.stop()


def test_state_survives_a_clean_restart_and_ephemeral_keeps_none(tmp_path: Path) -> None:
    # given a run waiting for its event and one for its callback, in a stack that keeps state
    state, work = tmp_path / "state", tmp_path / "work"
    work.mkdir()
    port = free_port()
    server = start(state, port)
    assert f"state            {state}" in server.output  # the banner says where it lives
    payload = {"dir": str(work), "name": "one", "nap_seconds": 0.1, "step_seconds": 0}
    with httpx.Client(base_url=server.url, timeout=10) as api:
        run_id = api.post("/tasks/e2e-chain/runs", json={"payload": payload}).json()["run_id"]
        called_id = api.post(
            "/tasks/e2e-callback/runs", json={"payload": {"dir": str(work)}}
        ).json()["run_id"]
        wait_until(
            lambda: (
                api.get(f"/runs/{run_id}").json().get("waiting_for") == "go"
                and api.get(f"/runs/{called_id}").json()["status"] == "WAITING"
            ),
            60,
            "the runs to wait",
        )
    assert server.stop() == 0

    # when the stack starts again: the runs are there, and take their event and callback
    again = start(state, port)
    try:
        with httpx.Client(base_url=again.url, timeout=10) as api:
            token = (work / "callback.token").read_text()
            assert api.post(f"/callbacks/{token}", json={"data": 42}).status_code == 202
            finish(api, [run_id, called_id])
            assert api.get(f"/runs/{called_id}").json()["result"] == {"received": 42}
    finally:
        again.stop()

    # and an ephemeral stack starts empty
    ephemeral = start_dev_server(port=port)
    assert "--ephemeral: the state is gone when this server stops" in ephemeral.output
    try:
        with httpx.Client(base_url=ephemeral.url, timeout=10) as api:
            assert api.get(f"/runs/{run_id}").status_code == 404
    finally:
        ephemeral.stop()


def test_a_second_stack_on_the_same_state_directory_exits_2(tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = start(state, free_port())
    try:
        command = [
            sys.executable,
            "-m",
            "durable.cli",
            "dev",
            "--port",
            str(free_port()),
            "--state-dir",
            str(state),
        ]
        done = subprocess.run(
            command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60
        )
    finally:
        server.stop()

    assert done.returncode == 2, done.stdout + done.stderr
    assert "is in use by durable dev" in done.stderr
