"""The hand-off of parked timers on the AWS adapters (moto): SQS batches of ten with a delay
each, DynamoDB's `TIMER#<k>` key space, one conditional un-park per run."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.test_aws_adapters import T0, dynamodb_requests, make_run, receive_all

from durable.aws import boto3_client
from durable.clock import VirtualClock
from durable.queues.sqs import SQSWakeQueue
from durable.records import WakeReason, WakeUp
from durable.services.sweeper import sweep
from durable.services.timers import hand_off_timers
from durable.settings import Settings
from durable.storage.dynamodb import DynamoDBRunStore


def sqs_requests(queue: SQSWakeQueue) -> list[str]:
    seen: list[str] = []
    queue._client.meta.events.register(  # type: ignore[attr-defined]
        "before-call.sqs", lambda model, **_: seen.append(model.name)
    )
    return seen


def test_send_timed_sends_ten_a_request_each_with_its_delay(
    settings: Settings, queue_url: str
) -> None:
    queue = SQSWakeQueue(queue_url, client=boto3_client("sqs", settings))
    requests = sqs_requests(queue)
    now = [(WakeUp(f"run_{n:06d}", WakeReason.TIMER, "t"), timedelta(0)) for n in range(7)]
    later = [
        (WakeUp(f"run_{n:06d}", WakeReason.TIMER), timedelta(minutes=15)) for n in range(7, 12)
    ]

    queue.send_timed(now + later)

    assert requests == ["SendMessageBatch", "SendMessageBatch"]
    received = receive_all(settings, queue_url)  # the delayed ones are not visible yet
    assert sorted(WakeUp.from_json(m["Body"]).run_id for m in received) == [
        f"run_{n:06d}" for n in range(7)
    ]
    assert queue.sent == 12


def test_a_sweep_hands_off_what_is_due_within_fifteen_minutes_and_only_that(
    settings: Settings, queue_url: str
) -> None:
    store = DynamoDBRunStore.from_settings(settings)
    clock = VirtualClock(T0)
    queue = SQSWakeQueue(queue_url, client=boto3_client("sqs", settings))
    for n in range(12):  # overdue (a sweeper that was down): sent at once
        store.create_run(
            make_run(
                f"run_{n:06d}", wake_at=T0 - timedelta(seconds=n), wake_token="t", wake_parked=True
            )
        )
    store.create_run(make_run("run_000100", wake_at=T0 + timedelta(minutes=14), wake_parked=True))
    store.create_run(make_run("run_000200", wake_at=T0 + timedelta(minutes=16), wake_parked=True))
    requests = sqs_requests(queue)

    with dynamodb_requests(settings) as dynamodb:
        sent = sweep(store, queue, clock, grace=timedelta(0))

    assert sent == 0  # the overdue sweep met none of them: parked runs are not its own
    assert requests.count("SendMessageBatch") == 2  # 13 timers, ten a request
    assert dynamodb.count("UpdateItem") == 13  # one un-park each
    received = receive_all(settings, queue_url)
    bodies = sorted((m["Body"] for m in received), key=lambda b: WakeUp.from_json(b).run_id)
    assert [WakeUp.from_json(b) for b in bodies] == [
        WakeUp(f"run_{n:06d}", WakeReason.TIMER, "t") for n in range(12)
    ]  # run_000100's timer waits 14 minutes in SQS
    assert store.get_run("run_000200").wake_parked  # type: ignore[union-attr]
    assert not store.get_run("run_000100").wake_parked  # type: ignore[union-attr]
    assert store.parked_timers(T0 + timedelta(days=1)) == [store.get_run("run_000200")]

    clock.set(T0 + timedelta(minutes=2))
    assert hand_off_timers(store, queue, clock) == 1  # run_000200, within 14 minutes now
    assert store.parked_timers(T0 + timedelta(days=1)) == []
