"""The dev moto server keeps no CloudWatch Logs traffic in its journal: the workers' lines
(shipped every 0.2 s) and the API's reads of them would otherwise each cost a synced
write, and the lines are documented as memory only."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.unit.test_moto_server import make_table, serve  # noqa: F401 - the fixture

from durable.local.moto_journal import read_records

GROUP = "/aws/lambda/durable-worker"


def test_logs_requests_are_served_and_not_journaled(serve: Any, tmp_path: Path) -> None:  # noqa: F811
    server = serve()
    make_table(server.client("dynamodb"))  # a write that is journaled, for comparison
    logs = server.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    now = int(time.time() * 1000)  # CloudWatch takes the last two weeks' events only
    for number in range(20):
        logs.put_log_events(
            logGroupName=GROUP,
            logStreamName="s",
            logEvents=[{"timestamp": now + number, "message": f"line {number}"}],
        )
    found = logs.filter_log_events(logGroupName=GROUP, filterPattern='"line 1"')["events"]
    journal = next((tmp_path / "state").glob("journal-*.log"))
    records = list(read_records(journal))
    server.stop()

    assert {event["message"] for event in found} >= {"line 1", "line 10", "line 19"}
    assert len(records) == 1  # CreateTable only
    assert "logs" not in str(records[0]["environ"].get("HTTP_AUTHORIZATION", ""))
    restored = serve()
    assert restored.client("logs").describe_log_groups()["logGroups"] == []
