"""End to end on `durable dev` (DynamoDB on the moto server): tags and metadata given at
trigger, runs found by tag and by finish time, and an idempotency key that expires."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, WaitFor

pytestmark = pytest.mark.e2e


def test_tags_find_runs_and_metadata_is_shown(
    api: httpx.Client, cli: Cli, wait_for: WaitFor
) -> None:
    tag = f"user:{uuid.uuid4().hex[:10]}"
    before = datetime.now(UTC) - timedelta(seconds=1)
    started = cli("trigger", "e2e-fail", "--tag", tag, "--tag", "e2e", "--meta", "source=cli")
    assert started.returncode == 0, started.stderr
    first = json.loads(started.stdout)["run_id"]
    reply = api.post(
        "/tasks/e2e-fail/runs", json={"payload": None, "tags": [tag], "metadata": {"a": "b"}}
    )
    assert reply.status_code == 202, reply.text
    second = reply.json()["run_id"]
    api.post("/tasks/e2e-fail/runs", json={"payload": None})  # untagged
    wait_for(first)
    wait_for(second)

    run = api.get(f"/runs/{first}").json()
    assert (run["tags"], run["metadata"]) == ([tag, "e2e"], {"source": "cli"})
    listed = api.get("/runs", params={"tag": tag}).json()
    assert [summary["run_id"] for summary in listed["runs"]] == [second, first]
    failed = api.get("/runs", params={"tag": tag, "status": "FAILED", "limit": 1}).json()
    assert [summary["run_id"] for summary in failed["runs"]] == [second]
    assert failed["next_cursor"]
    finished = api.get(
        "/runs", params={"tag": tag, "finished_after": before.isoformat(), "limit": 10}
    ).json()
    assert {summary["run_id"] for summary in finished["runs"]} == {first, second}

    shown = cli("runs", "--tag", tag)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].split()[-1] == "TAGS"
    assert first in shown.stdout and second in shown.stdout

    bad = api.post("/tasks/e2e-fail/runs", json={"payload": None, "tags": ["no spaces"]})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"


def test_an_idempotency_key_expires_after_its_ttl(api: httpx.Client) -> None:
    body = {"payload": None, "idempotency_key": uuid.uuid4().hex, "idempotency_key_ttl": 2}
    first = api.post("/tasks/e2e-fail/runs", json=body).json()
    again = api.post("/tasks/e2e-fail/runs", json=body).json()
    assert (again["run_id"], again["created"]) == (first["run_id"], False)
    conflict = api.post("/tasks/e2e-fail/runs", json={**body, "payload": 1})
    assert conflict.status_code == 409
    time.sleep(2.2)
    later = api.post("/tasks/e2e-fail/runs", json={**body, "payload": 1})
    assert later.status_code == 202 and later.json()["created"] is True
    assert later.json()["run_id"] != first["run_id"]
