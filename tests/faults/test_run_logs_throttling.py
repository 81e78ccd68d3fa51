"""Reading a run's logs when CloudWatch Logs throttles past botocore's retries: the API
answers 503 with its JSON error body (never a 500), and the next try reads the lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from durable import Context, TaskRegistry, task
from durable.api import handle
from durable.client import Client
from durable.faults import injected_into_botocore
from durable.local.gateway import build_event
from durable.runlogs.cloudwatch import CloudWatchRunLogSource
from durable.testing import Faults, TestEnvironment

GROUP = "/aws/lambda/durable-worker"


@pytest.fixture
def logs_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=GROUP)
        yield client


def get(client: Client, target: str) -> tuple[int, dict[str, str], Any]:
    response = handle(build_event(method="GET", target=target, headers=[], body=b""), None, client)
    return response["statusCode"], response.get("headers", {}), json.loads(response["body"])


def test_a_throttled_read_is_503_and_the_retry_reads(
    registry: TaskRegistry, logs_client: Any
) -> None:
    @task(id="noisy", registry=registry)
    def noisy(ctx: Context, payload: None) -> None:
        logging.getLogger("tests.faults.noisy").warning("hello from the run")

    # CloudWatch takes events of the last two weeks only: the run starts now, really.
    with TestEnvironment(registry=registry, start=datetime.now(UTC)) as env:
        run = env.trigger("noisy")
        env.run_until_complete(run.run_id)
        # what the worker printed, as Lambda would have put it in the worker's group
        logs_client.create_log_stream(logGroupName=GROUP, logStreamName="s")
        logs_client.put_log_events(
            logGroupName=GROUP,
            logStreamName="s",
            logEvents=[
                {"timestamp": int(env.now().timestamp() * 1000), "message": json.dumps(record)}
                for record in (json.loads(event.message) for event in env.log_source._events)
            ],
        )
        client = Client(
            store=env.store,
            queue=env.queue,
            codec=env.codec,
            clock=env.clock,
            registry=registry,
            logs=CloudWatchRunLogSource(GROUP, logs_client),
        )
        faults = Faults().throttle("logs", 1.0, {"FilterLogEvents"}, times=1)
        with injected_into_botocore(faults):
            status, headers, body = get(client, f"/runs/{run.run_id}/logs")
            again = get(client, f"/runs/{run.run_id}/logs")

    assert faults.injected["logs:throttle"] == 1
    assert status == 503
    assert body["error"]["code"] == "service_unavailable"
    assert headers.get("Retry-After") == "1"
    assert again[0] == 200
    assert [line["message"] for line in again[2]["logs"]] == ["hello from the run"]
