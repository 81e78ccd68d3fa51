"""The queue port's depths on moto's SQS: waiting, in flight, delayed, and the dead-letter
queue's depth found through the queue's redrive policy."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable.aws import boto3_client
from durable.errors import InfrastructureError
from durable.queues.base import queue_depths
from durable.queues.sqs import SQSWakeQueue
from durable.records import WakeReason, WakeUp
from durable.settings import Settings


def test_depths_count_waiting_in_flight_delayed_and_dead_letters(
    settings: Settings, queue_url: str
) -> None:
    sqs = boto3_client("sqs", settings)
    queue = SQSWakeQueue(queue_url, client=sqs)
    # given 3 messages due now, 2 delayed, 1 of the due ones received (in flight)
    for n in range(3):
        queue.send(WakeUp(f"run_{n}", WakeReason.START))
    for n in range(2):
        queue.send(WakeUp(f"late_{n}", WakeReason.TIMER, "t"), timedelta(minutes=5))
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)
    assert len(received["Messages"]) == 1
    # and one message in the dead-letter queue
    dead_url = sqs.get_queue_url(QueueName=f"{settings.queue_name}-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dead_url, MessageBody="{}")

    depths = queue_depths(queue)

    assert depths is not None
    assert depths.name == settings.queue_name
    assert (depths.depth, depths.in_flight, depths.delayed) == (2, 1, 2)
    assert depths.dead_letter_name == f"{settings.queue_name}-dlq"
    assert depths.dead_letter_depth == 1


def test_a_queue_without_a_dead_letter_queue_says_none(settings: Settings, queue_url: str) -> None:
    sqs = boto3_client("sqs", settings)
    bare = sqs.create_queue(QueueName="bare")["QueueUrl"]

    depths = SQSWakeQueue(bare, client=sqs).depths()

    assert (depths.depth, depths.in_flight, depths.delayed) == (0, 0, 0)
    assert depths.dead_letter_name is None and depths.dead_letter_depth is None


def test_depths_of_a_missing_queue_is_an_infrastructure_error(
    settings: Settings, queue_url: str
) -> None:
    queue = SQSWakeQueue(queue_url + "-missing", client=boto3_client("sqs", settings))
    with pytest.raises(InfrastructureError):
        queue.depths()
