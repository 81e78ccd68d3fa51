"""End to end over HTTP and the CLI (`durable dev` on moto, worker processes): retry, rerun
and fork a failed run; each audited in its history with the CLI's declared caller."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.e2e.e2e_tasks import executions

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, WaitFor

pytestmark = pytest.mark.e2e


def _failed_run(api: httpx.Client, wait_for: WaitFor, directory: Path) -> str:
    response = api.post("/tasks/e2e-repairable/runs", json={"payload": {"dir": str(directory)}})
    assert response.status_code == 202, response.text
    run_id = str(response.json()["run_id"])
    assert wait_for(run_id)["status"] == "FAILED"
    return run_id


def test_retry_rerun_and_fork_a_failed_run(
    api: httpx.Client, wait_for: WaitFor, cli: Cli, tmp_path: Path
) -> None:
    run_id = _failed_run(api, wait_for, tmp_path)
    (tmp_path / "fixed").touch()

    retried = cli("retry", run_id)
    assert retried.returncode == 0, retried.stderr
    run = wait_for(run_id)
    assert (run["status"], run["attempts"]) == ("COMPLETED", 2)
    assert run["result"] == {"first": 1, "second": "fixed"}
    assert executions(tmp_path, "first") == 1  # completed before: not run again
    history = api.get(f"/runs/{run_id}/history").json()["history"]
    [action] = [entry for entry in history if entry["kind"] == "run_action"]
    assert action["name"] == "retry"
    assert action["value"]["by"].startswith("unverified:cli ")

    again = cli("retry", run_id)
    assert again.returncode == 2 and "run_completed" in again.stderr

    rerun = api.post(f"/runs/{run_id}/rerun", headers={"X-Durable-Caller": "e2e"})
    assert rerun.status_code == 202, rerun.text
    new = wait_for(rerun.json()["run_id"])
    assert new["origin"] == {"kind": "rerun", "run_id": run_id, "from_step": None}
    assert new["status"] == "COMPLETED" and executions(tmp_path, "first") == 2

    fork = api.post(f"/runs/{run_id}/fork", json={"from_step": "second"})
    assert fork.status_code == 202, fork.text
    forked = wait_for(fork.json()["run_id"])
    assert forked["result"] == {"first": 1, "second": "fixed"}  # "first" copied, not run
    assert executions(tmp_path, "first") == 2
    refused = api.post(f"/runs/{run_id}/fork", json={"from_step": 999})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_fork_point"
    actions = [
        (entry["name"], entry["value"]["by"])
        for entry in api.get(f"/runs/{run_id}/history").json()["history"]
        if entry["kind"] == "run_action"
    ]
    assert [name for name, _ in actions] == ["retry", "rerun", "fork"]
    assert actions[1][1] == "unverified:e2e"
    timeline = api.get(f"/runs/{run_id}/timeline").json()
    assert [band["outcome"] for band in timeline["attempts"]] == ["failed", "completed"]
    assert [marker["name"] for marker in timeline["actions"]] == ["retry", "rerun", "fork"]
