"""The dev stack's moto server keeps its state on disk: journal, restore, compaction, lock.

Each test serves `DurableMoto` on a free port in this process, talks to it with boto3 as
the stack does, then forgets moto's memory (as a killed process would) and restores a new
server from the same directory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.moto_api import _internal

from durable.local import moto_patches, moto_server
from durable.local.moto_journal import (
    Journal,
    StateDirectoryBusy,
    lock_state_directory,
    read_records,
)
from durable.local.moto_server import DurableMoto
from durable.local.wsgi_server import KeepAliveServer


class Served:
    """A `DurableMoto` on a free port, and boto3 clients for it."""

    def __init__(self, state_dir: Path) -> None:
        self.app = DurableMoto(state_dir)
        self.app.restore()
        self._server = KeepAliveServer(("127.0.0.1", 0), self.app)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._stopped = False

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> None:
        """Stop serving and forget moto's memory: only the directory remains."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        _internal.moto_api_backend.reset()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    servers: list[Served] = []

    def start() -> Served:
        server = Served(tmp_path / "state")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    moto_patches.revert()
    _internal.moto_api_backend.reset()


def make_table(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName="runs",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "shard", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-shard",
                "KeySchema": [{"AttributeName": "shard", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def test_a_restart_rebuilds_tables_objects_and_queued_messages(serve: Any) -> None:
    # given writes of every kind, acknowledged
    first = serve()
    dynamodb, s3, sqs = first.client("dynamodb"), first.client("s3"), first.client("sqs")
    make_table(dynamodb)
    for n in range(30):
        dynamodb.put_item(TableName="runs", Item={"pk": {"S": f"r{n}"}, "shard": {"S": "A"}})
    dynamodb.update_item(
        TableName="runs",
        Key={"pk": {"S": "r1"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "7"}},
    )
    dynamodb.delete_item(TableName="runs", Key={"pk": {"S": "r2"}})
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(
            TableName="runs",
            Item={"pk": {"S": "r3"}, "lost": {"S": "yes"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    s3.create_bucket(Bucket="values")
    s3.put_object(Bucket="values", Key="runs/r1/v", Body=b"\x00large value\xff")
    url = sqs.create_queue(QueueName="wakeups", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="handled")
    sqs.send_message(QueueUrl=url, MessageBody="in flight")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=120)
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(message["Body"] for message in received) == ["handled", "in flight"]
    handled = next(message for message in received if message["Body"] == "handled")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handled["ReceiptHandle"])

    # when moto's memory is gone and a new server restores from the directory
    first.stop()
    second = serve()
    dynamodb, s3, sqs = second.client("dynamodb"), second.client("s3"), second.client("sqs")

    # then the table, its index, the object and the undeleted messages are back
    items = dynamodb.scan(TableName="runs")["Items"]
    assert len(items) == 29
    assert dynamodb.get_item(TableName="runs", Key={"pk": {"S": "r1"}})["Item"]["n"] == {"N": "7"}
    assert "lost" not in dynamodb.get_item(TableName="runs", Key={"pk": {"S": "r3"}})["Item"]
    by_shard = dynamodb.query(
        TableName="runs",
        IndexName="by-shard",
        KeyConditionExpression="shard = :s",
        ExpressionAttributeValues={":s": {"S": "A"}},
    )
    assert by_shard["Count"] == 29
    body = s3.get_object(Bucket="values", Key="runs/r1/v")["Body"].read()
    assert body == b"\x00large value\xff"
    url = sqs.get_queue_url(QueueName="wakeups")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "30"
    assert attributes["ApproximateNumberOfMessages"] == "1"  # the one in flight, visible now
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # "later", still delayed
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in again] == ["in flight"]


def test_what_the_restored_server_writes_survives_the_next_restart(serve: Any) -> None:
    first = serve()
    make_table(first.client("dynamodb"))
    first.client("dynamodb").put_item(TableName="runs", Item={"pk": {"S": "a"}})
    first.stop()

    second = serve()
    second.client("dynamodb").put_item(TableName="runs", Item={"pk": {"S": "b"}})
    second.stop()

    third = serve()
    keys = {item["pk"]["S"] for item in third.client("dynamodb").scan(TableName="runs")["Items"]}
    assert keys == {"a", "b"}


def test_each_start_compacts_into_a_new_snapshot_and_drops_the_old_pair(
    serve: Any, tmp_path: Path
) -> None:
    first = serve()
    make_table(first.client("dynamodb"))
    first.stop()
    second = serve()
    second.stop()

    names = sorted(path.name for path in (tmp_path / "state").iterdir())
    assert names == ["journal-2.log", "snapshot-2.bin"]


def test_the_journal_is_compacted_while_running_past_its_size_limit(
    serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(moto_server, "COMPACT_BYTES", 4096)
    server = serve()
    dynamodb = server.client("dynamodb")
    make_table(dynamodb)
    for n in range(40):
        dynamodb.put_item(TableName="runs", Item={"pk": {"S": f"r{n}"}, "pad": {"S": "x" * 200}})
    journals = sorted((tmp_path / "state").glob("journal-*.log"))
    assert len(journals) == 1 and journals[0].name != "journal-1.log"  # it moved on
    server.stop()

    restored = serve()
    assert restored.client("dynamodb").scan(TableName="runs")["Count"] == 40


def test_a_record_cut_short_by_a_kill_is_ignored(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal-1.log")
    for n in range(3):
        journal.append({"kind": "raw", "n": n})
    journal.close()
    path = tmp_path / "journal-1.log"
    path.write_bytes(path.read_bytes()[:-5])  # the last append never finished

    assert [record["n"] for record in read_records(path)] == [0, 1]


def test_two_servers_never_share_a_directory(tmp_path: Path) -> None:
    holder = lock_state_directory(tmp_path)
    try:
        with pytest.raises(StateDirectoryBusy, match="another `durable dev`"):
            lock_state_directory(tmp_path)
    finally:
        holder.close()
    lock_state_directory(tmp_path).close()  # free again once the holder is gone


def test_a_long_poll_ends_as_soon_as_a_message_arrives(serve: Any) -> None:
    server = serve()
    sqs = server.client("sqs")
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
    received: list[Any] = []

    def poll() -> None:
        received.extend(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", []))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    server.client("sqs").send_message(QueueUrl=url, MessageBody="wake up")
    poller.join(8)  # far less than the 10 s the poll may wait

    assert not poller.is_alive()
    assert [message["Body"] for message in received] == ["wake up"]


def test_the_api_takes_its_turn_before_waiting_workers_but_never_starves_them() -> None:
    lock = moto_server.TurnLock()
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with lock.turn(urgent=True):
            holding.set()
            release.wait(5)

    def take(name: str, urgent: bool) -> None:
        with lock.turn(urgent):
            order.append(name)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    worker = threading.Thread(target=take, args=("worker", False))
    worker.start()
    time.sleep(0.01)  # the worker waits first...
    api = threading.Thread(target=take, args=("api", True))
    api.start()
    time.sleep(0.01)
    release.set()  # ...and the API goes first
    for thread in (holder, worker, api):
        thread.join(5)
    assert order == ["api", "worker"]

    # a worker that has waited its patience goes, though API calls keep coming
    order.clear()
    stop = threading.Event()

    def busy_api() -> None:
        while not stop.is_set():
            with lock.turn(urgent=True):
                time.sleep(0.005)

    callers = [threading.Thread(target=busy_api) for _ in range(3)]
    for caller in callers:
        caller.start()
    worker = threading.Thread(target=take, args=("worker", False))
    worker.start()
    worker.join(2)
    through_while_busy = not worker.is_alive()
    stop.set()
    for caller in callers:
        caller.join(5)
    worker.join(5)
    assert through_while_busy and order == ["worker"]

    # and the holder may take it again (a compaction inside a request)
    with lock, lock.turn(urgent=False):
        pass
