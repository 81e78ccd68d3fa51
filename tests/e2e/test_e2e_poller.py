"""The dev stack's SQS event source mapping deletes every handled message, in batches.

A message the poller fails to delete comes back after its visibility timeout and the worker
drops it as finished, so no run would show it: the queue itself is checked here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import boto3
import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import WaitFor
    from tests.e2e.devserver import DevServer

pytestmark = pytest.mark.e2e


def test_handled_messages_are_deleted_ten_to_a_request(
    api: httpx.Client, dev_server: DevServer, wait_for: WaitFor
) -> None:
    info = api.get("/.well-known/durable-dev").json()
    sqs = boto3.client(
        "sqs",
        endpoint_url=info["moto_url"],
        region_name=info["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    counts_before = httpx.get(info["moto_url"] + "/moto-api/durable/requests").json()

    # given a burst of runs, all handled
    run_ids = [
        api.post("/tasks/e2e-hello/runs", json={"payload": {"name": f"n{n}"}}).json()["run_id"]
        for n in range(12)
    ]
    for run_id in run_ids:
        assert wait_for(run_id)["status"] == "COMPLETED"

    # then no message is left in the queue, visible or in flight
    deadline = time.monotonic() + 10
    while True:
        attributes = sqs.get_queue_attributes(
            QueueUrl=info["queue_url"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        left = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert left == 0, attributes

    # and they went in batches, never one DeleteMessage each
    counts = httpx.get(info["moto_url"] + "/moto-api/durable/requests").json()
    batches = counts.get("sqs DeleteMessageBatch", 0) - counts_before.get(
        "sqs DeleteMessageBatch", 0
    )
    singles = counts.get("sqs DeleteMessage", 0) - counts_before.get("sqs DeleteMessage", 0)
    assert singles == 0
    assert 1 <= batches <= 12
