"""Patch 14 (`durable.local.moto_patches.logs`): moto filters `{ $.run_id = "..." }` as
CloudWatch does, and answers every other pattern as stock moto does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from durable.local import moto_patches
from durable.runlogs.cloudwatch import CloudWatchRunLogSource, filter_pattern

GROUP = "/aws/lambda/durable-worker"
RUN = "run_0123456789abcdef0123456789abcdef"
CHILD = RUN + ".1.2.0"
MESSAGES = [
    json.dumps({"message": "parent", "run_id": RUN}),
    json.dumps({"message": "child", "run_id": CHILD}),
    json.dumps({"message": "nested", "data": {"run_id": RUN}}),
    json.dumps({"message": "number", "run_id": 7}),
    f"not JSON, but mentions {RUN}",
    "START RequestId: 1 Version: $LATEST",
    json.dumps(["run_id", RUN]),
]
PATTERNS = [
    filter_pattern(RUN),
    filter_pattern(CHILD),
    '{ $.run_id = "run_*" }',  # a wildcard: not this patch's
    '{ $.level = "INFO" && $.x = 1 }',
    '"mentions"',
    "START",
    "",
]


def filtered(pattern: str) -> list[str]:
    client = boto3.client("logs", region_name="us-east-1")
    client.create_log_group(logGroupName=GROUP)
    client.create_log_stream(logGroupName=GROUP, logStreamName="s")
    now = int(time.time() * 1000)
    client.put_log_events(
        logGroupName=GROUP,
        logStreamName="s",
        logEvents=[{"timestamp": now, "message": message} for message in MESSAGES],
    )
    answer = client.filter_log_events(logGroupName=GROUP, filterPattern=pattern)
    return [event["message"] for event in answer["events"]]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield
    moto_patches.revert()


def answers(patched: bool) -> dict[str, list[str]]:
    if patched:
        moto_patches.apply()
    try:
        found = {}
        for pattern in PATTERNS:
            with mock_aws():
                found[pattern] = filtered(pattern)
        return found
    finally:
        moto_patches.revert()


def test_json_equality_is_exact_and_every_other_pattern_answers_as_stock_moto(
    aws: None,
) -> None:
    stock, patched = answers(patched=False), answers(patched=True)

    # stock moto: a JSON pattern matches everything
    assert stock[filter_pattern(RUN)] == MESSAGES
    # patched: the run's own line only (not its child's, not a nested or mentioned id)
    assert patched[filter_pattern(RUN)] == [MESSAGES[0]]
    assert patched[filter_pattern(CHILD)] == [MESSAGES[1]]
    for pattern in PATTERNS[2:]:
        assert patched[pattern] == stock[pattern], pattern


def test_the_reader_returns_the_same_lines_with_and_without_the_patch(aws: None) -> None:
    def read(patched: bool) -> tuple[list[str], int]:
        if patched:
            moto_patches.apply()
        try:
            with mock_aws():
                client: Any = boto3.client("logs", region_name="us-east-1")
                filtered("")  # puts the events
                source = CloudWatchRunLogSource(GROUP, client)
                page = source.read(RUN, limit=1)
                rest = source.read(RUN, cursor=page.next_cursor)
                return [line.message for line in page.lines + rest.lines], source.calls
        finally:
            moto_patches.revert()

    stock, patched = read(False), read(True)
    assert stock[0] == patched[0] == ["parent"]
