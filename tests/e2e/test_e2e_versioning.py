"""End to end: a run pinned to another code version is held, visibly, by `durable dev`.

`durable dev` runs code version "dev". A run recorded by code version "old" (seeded straight
into the dev stack's table, as an earlier deployment would have left it, due now) is woken by
the sweeper; the worker does not replay it with this code. It holds the run: `waiting_for`
names the version the run needs, its error names both versions, and no step of its task runs.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.devserver import DevServer
from tests.e2e.e2e_tasks import executions

from durable.records import RunRecord, RunStatus
from durable.storage.dynamodb import DynamoDBRunStore

pytestmark = pytest.mark.e2e


def seed_pinned_run(dev_server: DevServer, run_id: str, directory: Path) -> None:
    """A queued `e2e-slow-steps` run of code version "old", due now, in the dev table."""
    info = httpx.get(f"{dev_server.url}/.well-known/durable-dev", timeout=10).json()
    store = DynamoDBRunStore(
        info["table_name"], region=info["region"], endpoint_url=info["moto_url"]
    )
    now = datetime.now(UTC)
    store.create_run(
        RunRecord(
            run_id=run_id,
            task_id="e2e-slow-steps",
            status=RunStatus.QUEUED,
            payload=json.dumps({"dir": str(directory), "steps": 1, "seconds": 0}),
            created_at=now,
            updated_at=now,
            code_version="old",
            wake_at=now,
        )
    )


def test_a_run_of_another_code_version_is_held_visibly(
    dev_server: DevServer,
    api: httpx.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    run_id = f"run_pinned_{uuid.uuid4().hex}"
    seed_pinned_run(dev_server, run_id, tmp_path)

    # when: the sweeper finds the run overdue and a worker of code version "dev" gets it
    deadline = time.monotonic() + 20
    while True:
        run: dict[str, Any] = api.get(f"/runs/{run_id}").json()
        if run["waiting_for"] is not None:
            break
        assert time.monotonic() < deadline, f"{run}\n{dev_server.output[-3000:]}"
        time.sleep(0.2)

    # then: held, and it says why; nothing of the task ran with this code
    assert run["waiting_for"] == "code-version:old"
    assert run["status"] == "QUEUED"
    assert run["version"] == {"task": "1", "code": "old"}
    assert run["error"]["type"] == "VersionMismatch"
    assert "'old'" in run["error"]["message"] and "'dev'" in run["error"]["message"]
    assert executions(tmp_path, "step-0") == 0
    assert api.get(f"/runs/{run_id}/history").json()["history"] == []

    # a held run can still be cancelled
    cancelled = api.post(f"/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
