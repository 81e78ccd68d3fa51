"""End to end: a run held for a code version is resumed over HTTP and with `durable resume`.

A run recorded by code version "old" is seeded into `durable dev`'s table (as in
test_e2e_versioning); the dev stack (code version "dev") holds it. `POST /runs/{id}/resume`
re-pins it to "dev", records who asked in its history, and the workers complete it.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import Cli, WaitFor
from tests.e2e.devserver import DevServer
from tests.e2e.e2e_tasks import executions
from tests.e2e.test_e2e_versioning import seed_pinned_run

pytestmark = pytest.mark.e2e


def _held(api: httpx.Client, run_id: str, dev_server: DevServer) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        run: dict[str, Any] = api.get(f"/runs/{run_id}").json()
        if run.get("held") is not None:
            return run
        assert time.monotonic() < deadline, f"{run}\n{dev_server.output[-3000:]}"
        time.sleep(0.2)


def test_a_held_run_resumed_over_http_is_repinned_audited_and_completes(
    dev_server: DevServer,
    api: httpx.Client,
    wait_for: WaitFor,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    run_id = f"run_pinned_{uuid.uuid4().hex}"
    seed_pinned_run(dev_server, run_id, tmp_path)
    run = _held(api, run_id, dev_server)
    assert run["held"]["reason"] == "code-version"
    assert run["held"]["error"]["type"] == "VersionMismatch"
    shown = cli("show", run_id)
    assert shown.returncode == 0 and f"durable resume {run_id}" in shown.stderr

    # when
    reply = api.post(f"/runs/{run_id}/resume", headers={"X-Durable-Caller": "e2e tester"})

    # then: re-pinned, its hold gone; the workers run it with this code
    assert reply.status_code == 200, reply.text
    assert reply.json()["version"]["code"] == "dev" and reply.json()["held"] is None
    done = wait_for(run_id, {"COMPLETED"})
    assert done["status"] == "COMPLETED", done
    assert executions(tmp_path, "step-0") == 1
    history = api.get(f"/runs/{run_id}/history").json()["history"]
    (action,) = [entry for entry in history if entry["kind"] == "run_action"]
    assert action["name"] == "resume"
    value = action["value"] if isinstance(action["value"], dict) else json.loads(action["value"])
    assert value["by"] == "unverified:e2e tester"
    assert (value["from_code_version"], value["to_code_version"]) == ("old", "dev")

    # a second resume: not held any more, 409 from the API and exit 2 from the CLI
    again = api.post(f"/runs/{run_id}/resume")
    assert again.status_code == 409 and again.json()["error"]["code"] == "run_not_held"
    resumed = cli("resume", run_id)
    assert resumed.returncode == 2 and "not held" in resumed.stderr
