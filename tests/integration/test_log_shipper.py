"""`durable dev`'s log shipper on moto: each container's lines land in a stream of its own,
named as Lambda names them, in the worker's group, where a run's logs are read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from durable.local.log_shipper import (
    EVENT_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    LogShipper,
    _chunks,
    _Line,
)
from durable.runlogs.cloudwatch import CloudWatchRunLogSource

REGION = "us-east-1"
GROUP = "/aws/lambda/durable-worker"
LAMBDA_STREAM = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")


@pytest.fixture
def logs(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("logs", region_name=REGION)


def events_of(client: Any, stream: str) -> list[str]:
    answer = client.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True)
    return [event["message"] for event in answer["events"]]


def test_each_container_ships_to_a_lambda_named_stream(logs: Any) -> None:
    reports: list[str] = []
    shipper = LogShipper(logs, GROUP, flush_seconds=0.01, report=reports.append)
    shipper.start()
    first, second = shipper.stream(), shipper.stream()
    run_line = json.dumps({"level": "INFO", "message": "charging", "run_id": "run_a"})
    first("START RequestId: 1\n")
    first(run_line + "\n")
    first("   \n")  # a blank line is no event
    second("from the other container\n")
    assert shipper.flush()
    shipper.stop()

    streams = [
        stream["logStreamName"]
        for stream in logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    ]
    assert len(streams) == 2
    assert all(LAMBDA_STREAM.match(name) for name in streams)
    contents = sorted(events_of(logs, name) for name in streams)
    assert contents == [["START RequestId: 1", run_line], ["from the other container"]]
    assert shipper.shipped == 3
    assert reports == []
    # and the run's logs read them back
    page = CloudWatchRunLogSource(GROUP, logs).read("run_a")
    assert [line.message for line in page.lines] == ["charging"]


def test_stop_sends_what_is_still_queued_and_an_existing_group_is_fine(logs: Any) -> None:
    logs.create_log_group(logGroupName=GROUP)
    shipper = LogShipper(logs, GROUP, flush_seconds=30)  # would not flush by itself in time
    shipper.start()
    ship = shipper.stream()
    for number in range(50):
        ship(f"line {number}")
    shipper.stop()

    (stream,) = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert events_of(logs, stream["logStreamName"]) == [f"line {number}" for number in range(50)]


def test_a_refused_batch_is_reported_once_and_dropped(logs: Any) -> None:
    reports: list[str] = []
    shipper = LogShipper(logs, GROUP, flush_seconds=0.01, report=reports.append)
    shipper.start()
    logs.delete_log_group(logGroupName=GROUP)  # the group goes away under the shipper
    ship = shipper.stream()
    ship("lost")
    assert shipper.flush()
    ship("lost too")
    assert shipper.flush()
    shipper.stop()

    assert shipper.shipped == 0
    assert len([report for report in reports if "cannot ship" in report]) == 1


def test_batches_keep_within_putlogevents_limits() -> None:
    big = "x" * (MAX_EVENT_BYTES + 100)
    lines = [_Line("s", 1, big)] + [_Line("s", 2, "y" * 1000) for _ in range(2000)]

    chunks = _chunks(lines)

    assert len(chunks[0][0].message.encode()) == MAX_EVENT_BYTES  # cut to CloudWatch's limit
    assert sum(len(chunk) for chunk in chunks) == len(lines)
    for chunk in chunks:
        size = sum(len(line.message.encode()) + EVENT_OVERHEAD for line in chunk)
        assert size <= MAX_BATCH_BYTES
    assert len(chunks) > 1
