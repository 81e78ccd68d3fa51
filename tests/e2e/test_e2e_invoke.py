"""`durable invoke`: every sample event in events/ runs through its handler, as with
`sam local invoke`, against the running `durable dev`, and gets the expected answer.

The sample events name one fixed run id; the test seeds that run (a task waiting for two
approvals) straight into the dev stack's table, as a user's earlier trigger would have.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.devserver import ROOT, DevServer, clean_env, start_dev_server

from durable.records import RunRecord, RunStatus
from durable.storage.dynamodb import DynamoDBRunStore

pytestmark = pytest.mark.e2e

EVENTS = ROOT / "events"
SEEDED_RUN = "run_0000000000000example000000000000"

# (event file, handler, expected HTTP status), in the order they run
API_EVENTS = [
    ("api-get-run.json", 200),
    ("api-get-run-history.json", 200),
    ("api-send-event-approval.json", 202),
    ("api-cancel-run.json", 200),
    ("api-trigger-process-order.json", 202),
    ("api-trigger-with-idempotency-key.json", 202),
    ("api-trigger-delayed.json", 202),
    ("api-trigger-unknown-task.json", 404),
    ("api-trigger-invalid-payload.json", 422),
    ("api-trigger-malformed-json.json", 400),
    ("api-list-runs.json", 200),
    ("api-list-runs-waiting-approvals.json", 200),
    ("api-get-run-unknown.json", 404),
    ("api-complete-callback.json", 404),  # callbacks are not built yet
    ("api-openapi.json", 200),
]


def invoke(
    dev_server: DevServer, handler: str, *args: str, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "durable.cli",
            "invoke",
            handler,
            *args,
            "--url",
            url or dev_server.url,
        ],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def seed_run(dev_server: DevServer) -> None:
    info = httpx.get(f"{dev_server.url}/.well-known/durable-dev", timeout=10).json()
    store = DynamoDBRunStore(
        info["table_name"], region=info["region"], endpoint_url=info["moto_url"]
    )
    now = datetime.now(UTC)
    store.create_run(
        RunRecord(
            run_id=SEEDED_RUN,
            task_id="e2e-two-approvals",
            status=RunStatus.QUEUED,
            payload="null",
            created_at=now,
            updated_at=now,
            wake_at=now,
        )
    )


def test_every_sample_event_gets_its_expected_answer(
    dev_server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    seed_run(dev_server)
    covered = {"sqs-wake-up-batch.json", "schedule-sweeper.json"}

    # the SQS batch: a start, its duplicate and a stale timer; none is reported failed
    result = invoke(dev_server, "WorkerFunction", "--event", str(EVENTS / "sqs-wake-up-batch.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"batchItemFailures": []}

    for name, expected in API_EVENTS:
        covered.add(name)
        result = invoke(dev_server, "api", "--event", str(EVENTS / name))
        assert result.returncode == 0, f"{name}: {result.stderr}"
        response: dict[str, Any] = json.loads(result.stdout)
        assert response["statusCode"] == expected, f"{name}: {response}"
        body = json.loads(response["body"])
        if name == "api-get-run.json":
            assert body["status"] == "WAITING"  # the worker invocation above ran it
            assert body["waiting_for"] == "approval"
        if name == "api-cancel-run.json":
            assert body["status"] == "CANCELLED"
        if expected >= 400:
            assert set(body["error"]) >= {"code", "message"}

    result = invoke(dev_server, "sweeper", "--event", str(EVENTS / "schedule-sweeper.json"))
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout)["runs_enqueued"], int)

    assert covered == {path.name for path in EVENTS.glob("*.json")}


def test_invoke_refuses_bad_input_with_exit_code_2(dev_server: DevServer, tmp_path: Any) -> None:
    event = str(EVENTS / "api-openapi.json")
    unknown = invoke(dev_server, "no-such-function", "--event", event)
    assert unknown.returncode == 2
    assert "unknown handler" in unknown.stderr

    missing = invoke(dev_server, "api", "--event", str(tmp_path / "missing.json"))
    assert missing.returncode == 2
    assert "cannot read the event file" in missing.stderr

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert invoke(dev_server, "api", "--event", str(broken)).returncode == 2

    unreachable = invoke(dev_server, "api", "--event", event, url="http://127.0.0.1:9")
    assert unreachable.returncode == 2
    assert "make dev" in unreachable.stderr


def test_invoke_imports_the_task_modules_a_dev_stack_serves_from_its_directory(
    tmp_path: Path,
) -> None:
    # given: a user's module beside which `durable dev --tasks tasks,my_tasks` was started
    (tmp_path / "my_tasks.py").write_text(
        "from durable import Context, task\n\n\n"
        '@task(id="e2e-user-hello")\n'
        "def hello(ctx: Context, payload: dict) -> dict:\n"
        '    return {"hello": payload["name"]}\n'
    )
    event = json.loads((ROOT / "events" / "api-trigger-process-order.json").read_text())
    event["rawPath"] = "/tasks/e2e-user-hello/runs"
    event["requestContext"]["http"]["path"] = "/tasks/e2e-user-hello/runs"
    event["body"] = json.dumps({"payload": {"name": "Ada"}})
    event_file = tmp_path / "trigger-hello.json"
    event_file.write_text(json.dumps(event))
    server = start_dev_server(tasks="tasks,my_tasks", cwd=tmp_path)
    try:
        # when: the API handler is invoked from another directory (the project's)
        result = invoke(server, "api", "--event", str(event_file))
    finally:
        server.stop()

    # then: it imported my_tasks, as the stack did, and started the run
    assert result.returncode == 0, result.stderr[-2000:]
    response = json.loads(result.stdout)
    assert response["statusCode"] == 202, response
