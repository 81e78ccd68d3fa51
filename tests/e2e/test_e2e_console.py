"""The `durable dev` console end to end: a worker's log record is one formatted line with its
run id, and `--log-format json` prints one JSON object per line, the stack's lines too."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.e2e.devserver import start_dev_server

if TYPE_CHECKING:
    from tests.e2e.conftest import WaitFor
    from tests.e2e.devserver import DevServer

pytestmark = pytest.mark.e2e


def process_order(api: httpx.Client) -> tuple[str, str]:
    order_id = f"console-{time.monotonic_ns()}"
    response = api.post("/tasks/process-order/runs", json={"payload": {"order_id": order_id}})
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"]), order_id


def test_a_run_s_log_record_is_one_readable_line(
    api: httpx.Client, wait_for: WaitFor, dev_server: DevServer
) -> None:
    run_id, order_id = process_order(api)

    assert wait_for(run_id)["status"] == "COMPLETED"

    assert dev_server.saw(f"{run_id} (start) ok"), dev_server.output[-3000:]
    assert dev_server.saw(f"order_id={order_id}"), dev_server.output[-3000:]
    [line] = [line for line in dev_server.lines if f"order_id={order_id}" in line]
    assert f" worker  INFO  {run_id} process-order order processed attempt=1 " in line
    # the Lambda context Powertools adds, and raw JSON, stay off the console
    assert "function_arn" not in dev_server.output
    assert not [line for line in dev_server.lines if line.startswith("{")]


def test_log_format_json_prints_one_object_per_line() -> None:
    server = start_dev_server("--log-format", "json")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            run_id, order_id = process_order(api)
            deadline = time.monotonic() + 60
            while api.get(f"/runs/{run_id}").json()["status"] != "COMPLETED":
                assert time.monotonic() < deadline, server.output[-3000:]
                time.sleep(0.1)
        assert server.saw('"status": "ok"', timeout=10), server.output[-3000:]
        logged = server.lines[server.lines.index("Press Ctrl-C to stop.\n") + 1 :]
    finally:
        assert server.stop() == 0, server.output[-3000:]

    # the banner goes to stderr: stdout holds JSON lines only
    records: list[dict[str, Any]] = [json.loads(line) for line in logged]
    [processed] = [r for r in records if r.get("order_id") == order_id]
    assert processed["message"] == "order processed"
    assert (processed["source"], processed["run_id"]) == ("worker", run_id)
    assert processed["task_id"] == "process-order"
    assert "function_arn" in processed  # json keeps everything
    [trigger] = [r for r in records if r["source"] == "api" and r.get("status") == 202]
    assert trigger["message"].startswith("POST /tasks/process-order/runs 202")
    invocation = next(r for r in records if r.get("run_id") == run_id and "duration_s" in r)
    assert (invocation["status"], invocation["reason"]) == ("ok", "start")
    assert {"timestamp", "level"} <= set(invocation) & set(processed)
