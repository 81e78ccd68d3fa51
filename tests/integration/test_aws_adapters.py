"""The AWS adapters against moto: SQS wake-ups, S3 blobs, DynamoDB requests and fencing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable.aws import boto3_client, endpoint_url, region_name
from durable.blobs.s3 import S3BlobStore
from durable.errors import ConflictError, DurableError
from durable.queues.sqs import SQSWakeQueue
from durable.records import Checkpoint, CheckpointKind, RunRecord, RunStatus, WakeReason, WakeUp
from durable.resources import ensure_resources
from durable.settings import Settings
from durable.storage._tables import make_models
from durable.storage.dynamodb import DynamoDBRunStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def make_run(run_id: str = "run_000001", **fields: Any) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        task_id="orders",
        status=RunStatus.QUEUED,
        payload="{}",
        created_at=T0,
        updated_at=T0,
        **fields,
    )


def make_checkpoint(seq: int, value: str = "null") -> Checkpoint:
    return Checkpoint(
        seq=seq,
        kind=CheckpointKind.STEP_COMPLETED,
        op=seq - 1,
        name=f"step-{seq}",
        task_attempt=1,
        at=T0,
        value=value,
    )


def receive_all(settings: Settings, queue_url: str, wait_seconds: int = 0) -> list[Any]:
    sqs = boto3_client("sqs", settings)
    messages: list[Any] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=wait_seconds,
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        wait_seconds = 0


# -- resources and endpoints -------------------------------------------------------------


def test_ensure_resources_creates_everything_once(settings: Settings, queue_url: str) -> None:
    sqs = boto3_client("sqs", settings)
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
    table = boto3_client("dynamodb", settings).describe_table(TableName=settings.table_name)

    assert policy["deadLetterTargetArn"].endswith(":it-wakeups-dlq")
    assert int(policy["maxReceiveCount"]) == 5
    assert {index["IndexName"] for index in table["Table"]["GlobalSecondaryIndexes"]} == {
        "by-task-v2",
        "by-status-v2",
        "all-runs-v2",
        "due-v2",
        "expiry-v2",
    }
    boto3_client("s3", settings).head_bucket(Bucket=settings.bucket_name)
    assert ensure_resources(settings) == queue_url  # idempotent


def test_endpoint_and_region_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:5001")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    assert endpoint_url(Settings(), "dynamodb") == "http://127.0.0.1:5000"
    assert endpoint_url(Settings(), "sqs") == "http://127.0.0.1:5001"
    assert endpoint_url(Settings(endpoint_url="http://moto:1"), "sqs") == "http://moto:1"
    assert region_name(Settings()) == "eu-west-1"  # Lambda's region when DURABLE_REGION is unset
    assert region_name(Settings(region="ap-south-1")) == "ap-south-1"
    client = boto3_client("sqs", Settings(endpoint_url="http://moto:1"))
    assert client.meta.endpoint_url == "http://moto:1"
    store = DynamoDBRunStore.from_settings(Settings(table_name="t", endpoint_url="http://moto:1"))
    assert store.table_name == "t"
    assert make_models("t", "eu-west-1", "http://moto:1").run.Meta.host == "http://moto:1"


# -- SQS ---------------------------------------------------------------------------------


def test_sqs_send_round_trips_body_and_attributes(settings: Settings, queue_url: str) -> None:
    queue = SQSWakeQueue(queue_url, client=boto3_client("sqs", settings))
    wake_up = WakeUp("run_000001", WakeReason.TIMER, token="tok-1")

    queue.send(wake_up)

    [message] = receive_all(settings, queue_url)
    assert WakeUp.from_json(message["Body"]) == wake_up
    assert message["MessageAttributes"]["run_id"]["StringValue"] == "run_000001"
    assert message["MessageAttributes"]["reason"]["StringValue"] == "timer"
    assert queue.sent == 1
    assert queue.max_delay == timedelta(minutes=15)


def test_sqs_delay_is_rounded_up_and_honoured(settings: Settings, queue_url: str) -> None:
    queue = SQSWakeQueue(queue_url)  # a client of its own, from the process settings
    sent_at = time.monotonic()

    queue.send(WakeUp("run_000001", WakeReason.TIMER), timedelta(milliseconds=2200))

    # 2.2 s became 3 s: never early. (Seconds, not fractions: on a loaded machine the first
    # receive may itself take most of a second.)
    assert receive_all(settings, queue_url) == []
    [message] = receive_all(settings, queue_url, wait_seconds=10)
    assert time.monotonic() - sent_at >= 2.9
    assert WakeUp.from_json(message["Body"]).run_id == "run_000001"


def test_sqs_refuses_delays_over_15_minutes(settings: Settings, queue_url: str) -> None:
    queue = SQSWakeQueue(queue_url, client=boto3_client("sqs", settings))

    queue.send(WakeUp("run_000001", WakeReason.TIMER), timedelta(minutes=15))  # the maximum
    with pytest.raises(ValueError, match="exceeds"):
        queue.send(WakeUp("run_000002", WakeReason.TIMER), timedelta(minutes=15, seconds=1))

    assert queue.sent == 1


def test_sqs_send_many_batches_by_ten(settings: Settings, queue_url: str) -> None:
    queue = SQSWakeQueue(queue_url, client=boto3_client("sqs", settings))
    wake_ups = [WakeUp(f"run_{n:06d}", WakeReason.SWEEP) for n in range(23)]

    queue.send_many(wake_ups)

    received = receive_all(settings, queue_url)
    assert sorted(WakeUp.from_json(m["Body"]).run_id for m in received) == [
        w.run_id for w in wake_ups
    ]
    assert queue.sent == 23


def test_sqs_errors_become_durable_errors(settings: Settings, queue_url: str) -> None:
    queue = SQSWakeQueue(queue_url + "-missing", client=boto3_client("sqs", settings))

    with pytest.raises(DurableError):
        queue.send(WakeUp("run_000001", WakeReason.START))


# -- S3 ----------------------------------------------------------------------------------


def test_s3_round_trips_a_1_mb_value(settings: Settings, queue_url: str) -> None:
    blobs = S3BlobStore(settings.bucket_name, client=boto3_client("s3", settings))
    value = bytes(range(256)) * 4096  # 1 MiB, every byte value

    blobs.put("runs/run_000001/result", value)

    assert blobs.get("runs/run_000001/result") == value
    assert S3BlobStore(settings.bucket_name).get("runs/run_000001/result") == value


def test_s3_missing_key_is_a_durable_error(settings: Settings, queue_url: str) -> None:
    blobs = S3BlobStore(settings.bucket_name, client=boto3_client("s3", settings))

    with pytest.raises(DurableError, match="missing"):
        blobs.get("runs/nothing-here")
    with pytest.raises(DurableError):
        S3BlobStore("no-such-bucket", client=boto3_client("s3", settings)).put("k", b"v")


# -- DynamoDB ----------------------------------------------------------------------------


@pytest.fixture
def store(settings: Settings, queue_url: str) -> DynamoDBRunStore:
    return DynamoDBRunStore.from_settings(settings)


@contextmanager
def dynamodb_requests(settings: Settings) -> Iterator[list[str]]:
    """The DynamoDB operations the store sends while the block runs, in order."""
    client = make_models(settings.table_name, settings.region, None).connection.client
    seen: list[str] = []

    def record(model: Any, **_: Any) -> None:
        seen.append(model.name)

    client.meta.events.register("before-call.dynamodb", record, unique_id="count-requests")
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-call.dynamodb", unique_id="count-requests")


def test_each_state_change_is_one_dynamodb_request(
    settings: Settings, store: DynamoDBRunStore
) -> None:
    with dynamodb_requests(settings) as requests:
        store.create_run(make_run(wake_at=T0))  # due at once, as a trigger makes it
        for seq in range(1, 6):
            store.append_checkpoint("run_000001", make_checkpoint(seq))
        store.acquire_lease("run_000001", "worker-a", T0, T0 + timedelta(minutes=15))
        store.update_run("run_000001", {"checkpoints": 5}, expect_owner="worker-a")
        store.create_run(make_run("run_000002", idempotency_key="k"))

    # The first request reads the table's config item (its index shards): once per store.
    assert requests == (
        ["GetItem"] + ["PutItem"] + ["PutItem"] * 5 + ["UpdateItem"] * 2 + ["TransactWriteItems"]
    )
    assert store.writes == 9


def test_a_lease_on_a_run_due_later_than_it_reads_the_run_and_moves_its_wake_up(
    settings: Settings, store: DynamoDBRunStore
) -> None:
    store.create_run(make_run(wake_at=T0 + timedelta(hours=1)))

    with dynamodb_requests(settings) as requests:
        leased = store.acquire_lease("run_000001", "worker-a", T0, T0 + timedelta(minutes=15))

    assert requests == ["UpdateItem", "GetItem", "UpdateItem"]
    assert leased.wake_at == T0 + timedelta(minutes=15)


def test_a_lost_append_writes_nothing_and_is_not_counted(
    settings: Settings, store: DynamoDBRunStore
) -> None:
    store.create_run(make_run())
    store.append_checkpoint("run_000001", make_checkpoint(1))
    writes = store.writes

    with dynamodb_requests(settings) as requests, pytest.raises(ConflictError):
        store.append_checkpoint("run_000001", make_checkpoint(1, value='"late"'))

    assert requests == ["PutItem"]
    assert store.writes == writes
    assert [cp.value for cp in store.load_history("run_000001")] == ["null"]


def test_two_workers_racing_for_one_slot_exactly_one_wins(
    settings: Settings, store: DynamoDBRunStore
) -> None:
    # Two invocations of one run, each with its own store, as two Lambda containers would be.
    # Worker A leases the run, stalls past its lease; worker B takes the run over. Both read
    # the same log and both try to write its next slot. (In sequence: moto applies a
    # condition and its write without a lock, so only DynamoDB itself arbitrates true
    # concurrency; the condition is what this test is about.)
    worker_a = DynamoDBRunStore.from_settings(settings)
    worker_b = DynamoDBRunStore.from_settings(settings)
    worker_a.create_run(make_run())
    worker_a.acquire_lease("run_000001", "a", T0, T0 + timedelta(minutes=15))
    seq_a = len(worker_a.load_history("run_000001")) + 1
    later = T0 + timedelta(minutes=16)
    worker_b.acquire_lease("run_000001", "b", later, later + timedelta(minutes=15))
    seq_b = len(worker_b.load_history("run_000001")) + 1

    outcomes: dict[str, str] = {}
    for name, worker, seq in (("b", worker_b, seq_b), ("a", worker_a, seq_a)):
        try:
            worker.append_checkpoint("run_000001", make_checkpoint(seq, value=json.dumps(name)))
            outcomes[name] = "won"
        except ConflictError:
            outcomes[name] = "lost"

    assert seq_a == seq_b == 1
    assert sorted(outcomes.values()) == ["lost", "won"]
    assert [cp.value for cp in store.load_history("run_000001")] == ['"b"']
    with pytest.raises(ConflictError):  # the stale worker cannot finish the run either
        worker_a.update_run("run_000001", {"status": RunStatus.COMPLETED}, expect_owner="a")


def test_dynamodb_errors_become_durable_errors(settings: Settings, queue_url: str) -> None:
    missing_table = DynamoDBRunStore("no-such-table", region=settings.region)
    store = DynamoDBRunStore.from_settings(settings)
    store.create_run(make_run())

    with pytest.raises(DurableError):
        missing_table.get_run("run_000001")
    with pytest.raises(DurableError):  # over DynamoDB's 400 KB item limit
        store.append_checkpoint("run_000001", make_checkpoint(1, value="x" * 500_000))
    with pytest.raises(DurableError):
        store.list_runs(cursor="not a cursor!")
