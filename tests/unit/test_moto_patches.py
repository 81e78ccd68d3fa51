"""`durable.local.moto_patches`: moto without its whole-table costs, and still right.

Runs against moto in-process (`mock_aws`), with the patches applied for each test and
reverted after it. A patched transaction must stay all-or-nothing and keep its conditions;
a base-table query must answer exactly what moto answered before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from durable.local import moto_patches
from durable.storage._tables import create_table
from durable.storage.dynamodb import DynamoDBRunStore

TABLE = "patched"
REGION = "us-east-1"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    moto_patches.apply()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name=REGION)
            client.create_table(
                TableName=TABLE,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            yield client
    finally:
        moto_patches.revert()


def key(pk: str, sk: str = "x") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def put(client: Any, pk: str, sk: str = "x", n: int = 0) -> None:
    client.put_item(TableName=TABLE, Item={**key(pk, sk), "n": {"N": str(n)}})


def get(client: Any, pk: str, sk: str = "x") -> dict[str, Any] | None:
    item: dict[str, Any] | None = client.get_item(TableName=TABLE, Key=key(pk, sk)).get("Item")
    return item


def put_new(pk: str, n: int = 1) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": TABLE,
            "Item": {**key(pk), "n": {"N": str(n)}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def cancellation_codes(error: ClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons") or []
    return [str(reason.get("Code")) for reason in reasons]


def test_the_patches_are_installed_and_reverted() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    moto_patches.apply()
    moto_patches.apply()  # idempotent
    try:
        assert moto_patches.applied()
        assert DynamoDBBackend.transact_write_items is not original
    finally:
        moto_patches.revert()
    assert not moto_patches.applied()
    assert DynamoDBBackend.transact_write_items is original


def test_another_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "0.0.1")
    with pytest.raises(moto_patches.MotoVersionError, match=r"0\.0\.1"):
        moto_patches.apply()
    assert not moto_patches.applied()


def test_a_transaction_whose_conditions_hold_writes_every_item(dynamodb: Any) -> None:
    put(dynamodb, "upd", n=1)
    dynamodb.transact_write_items(
        TransactItems=[
            put_new("a"),
            put_new("b"),
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": key("upd"),
                    "UpdateExpression": "SET n = n + :one",
                    "ConditionExpression": "n = :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
    )
    assert get(dynamodb, "a") is not None
    assert get(dynamodb, "b") is not None
    assert get(dynamodb, "upd") == {**key("upd"), "n": {"N": "2"}}


def test_a_failed_condition_cancels_every_write_of_the_transaction(dynamodb: Any) -> None:
    # given: an item to update, one to delete, and one that makes the last put fail
    put(dynamodb, "upd", n=1)
    put(dynamodb, "del", n=5)
    put(dynamodb, "taken", n=7)
    put(dynamodb, "bystander", n=9)
    # when
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                put_new("fresh"),
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key("upd"),
                        "UpdateExpression": "SET n = n + :one, added = :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Delete": {"TableName": TABLE, "Key": key("del")}},
                put_new("taken", n=100),
            ]
        )
    # then: cancelled, with the reason on the failing action only, and nothing written
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert cancellation_codes(raised.value) == ["None", "None", "None", "ConditionalCheckFailed"]
    assert get(dynamodb, "fresh") is None
    assert get(dynamodb, "upd") == {**key("upd"), "n": {"N": "1"}}
    assert get(dynamodb, "del") == {**key("del"), "n": {"N": "5"}}
    assert get(dynamodb, "taken") == {**key("taken"), "n": {"N": "7"}}
    assert get(dynamodb, "bystander") == {**key("bystander"), "n": {"N": "9"}}


def test_a_failed_condition_check_cancels_the_transaction(dynamodb: Any) -> None:
    put(dynamodb, "guard", n=0)
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                put_new("a"),
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": key("guard"),
                        "ConditionExpression": "n = :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )
    assert cancellation_codes(raised.value) == ["None", "ConditionalCheckFailed"]
    assert get(dynamodb, "a") is None
    assert get(dynamodb, "guard") == {**key("guard"), "n": {"N": "0"}}


def test_two_actions_on_one_item_are_refused_and_write_nothing(dynamodb: Any) -> None:
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=[put_new("b"), put_new("a"), put_new("a", n=2)])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert get(dynamodb, "a") is None
    assert get(dynamodb, "b") is None


def test_a_failed_transaction_keeps_what_other_clients_wrote_meanwhile(dynamodb: Any) -> None:
    # moto's own rollback restored a copy of the whole table taken before the transaction,
    # erasing writes other threads of the server made while it ran.
    put(dynamodb, "taken")
    stop = threading.Event()

    def fail_transactions() -> None:
        while not stop.is_set():
            with pytest.raises(ClientError):
                dynamodb.transact_write_items(TransactItems=[put_new("never"), put_new("taken")])

    failing = threading.Thread(target=fail_transactions)
    failing.start()
    try:
        for n in range(60):
            put(dynamodb, "writer", sk=f"{n:03d}", n=n)
    finally:
        stop.set()
        failing.join()
    items = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "writer"}},
    )["Items"]
    assert len(items) == 60
    assert get(dynamodb, "never") is None


def test_a_query_reads_its_partition_in_order_and_pages(dynamodb: Any) -> None:
    for pk in ("p1", "p2", "p3"):
        for n in (3, 1, 2, 5, 4):
            put(dynamodb, pk, sk=f"s{n}", n=n)

    def query(**extra: Any) -> dict[str, Any]:
        answer: dict[str, Any] = dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
            ExpressionAttributeValues={":pk": {"S": "p2"}, ":s": {"S": "s"}},
            **extra,
        )
        return answer

    everything = query()
    assert [item["sk"]["S"] for item in everything["Items"]] == ["s1", "s2", "s3", "s4", "s5"]
    assert {item["pk"]["S"] for item in everything["Items"]} == {"p2"}
    backwards = query(ScanIndexForward=False, Limit=2)
    assert [item["sk"]["S"] for item in backwards["Items"]] == ["s5", "s4"]
    rest = query(ScanIndexForward=False, ExclusiveStartKey=backwards["LastEvaluatedKey"])
    assert [item["sk"]["S"] for item in rest["Items"]] == ["s3", "s2", "s1"]
    missing = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "nobody"}},
    )
    assert missing["Items"] == []
    # a scan still sees every partition
    assert dynamodb.scan(TableName=TABLE)["Count"] == 15


def test_the_run_store_keeps_one_run_per_idempotency_key(dynamodb: Any) -> None:
    from datetime import UTC, datetime

    from durable.records import RunRecord, RunStatus

    create_table("runs", REGION)
    store = DynamoDBRunStore("runs", region=REGION)
    now = datetime.now(UTC)

    def run(run_id: str) -> RunRecord:
        return RunRecord(
            run_id=run_id,
            task_id="t",
            status=RunStatus.QUEUED,
            payload="{}",
            created_at=now,
            updated_at=now,
            idempotency_key="k",
            task_version="1",
            code_version="dev",
        )

    first, created = store.create_run(run("run_a"))
    again, created_again = store.create_run(run("run_b"))
    assert created and not created_again
    assert first.run_id == again.run_id == "run_a"
    assert store.get_run("run_b") is None
    history = store.load_history("run_a")
    assert history == []


def test_the_request_counter_names_service_and_operation() -> None:
    signed = "AWS4-HMAC-SHA256 Credential=testing/20300101/us-east-1/{}/aws4_request, X=y"
    assert (
        moto_patches._operation(
            {
                "HTTP_AUTHORIZATION": signed.format("dynamodb"),
                "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem",
            }
        )
        == "dynamodb PutItem"
    )
    assert (
        moto_patches._operation(
            {"HTTP_AUTHORIZATION": signed.format("sqs"), "QUERY_STRING": "Action=SendMessage"}
        )
        == "sqs SendMessage"
    )
    assert (
        moto_patches._operation(
            {"HTTP_AUTHORIZATION": signed.format("s3"), "REQUEST_METHOD": "PUT"}
        )
        == "s3 PUT"
    )


def test_an_index_query_answers_in_index_order_and_pages(dynamodb: Any) -> None:
    create_table("runs", REGION)
    store = DynamoDBRunStore("runs", region=REGION, page_size=2)
    from datetime import UTC, datetime, timedelta

    from durable.records import RunRecord, RunStatus

    start = datetime(2030, 1, 1, tzinfo=UTC)
    # created in one order, due in the reverse one
    for n in range(5):
        at = start + timedelta(seconds=n)
        store.create_run(
            RunRecord(
                run_id=f"run_{n}",
                task_id="t",
                status=RunStatus.QUEUED,
                payload="{}",
                created_at=at,
                updated_at=at,
                idempotency_key=None,
                task_version="1",
                code_version="dev",
                wake_at=start + timedelta(minutes=10 - n),
            )
        )
    due = store.due_runs(start + timedelta(hours=1), limit=10)
    assert [run.run_id for run in due] == ["run_4", "run_3", "run_2", "run_1", "run_0"]
    listed = store.list_runs(limit=10)
    assert [run.run_id for run in listed.runs] == ["run_4", "run_3", "run_2", "run_1", "run_0"]


def test_sqs_still_delivers_and_retains(dynamodb: Any) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(message["Body"] for message in received) == ["0", "1", "2"]
    # patch 11: SQS's clock is the wall clock, as moto's own
    from moto.core.utils import unix_time
    from moto.sqs import models

    assert abs(models.unix_time() - unix_time()) < 1
    assert abs(models.unix_time_millis() - unix_time() * 1000) < 1000


# -- patches 7 to 10: the same answers as moto's, for less work ------------------------------

EVERY_TYPE = {
    "s": {"S": "text"},
    "n": {"N": "12.5"},
    "b": {"B": b"\x00\x01bytes"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"x", b"y"]},
    "m": {"M": {"inner": {"S": "v"}, "deep": {"L": [{"N": "1"}, {"NULL": True}]}}},
    "l": {"L": [{"S": "a"}, {"BOOL": False}, {"M": {}}]},
    "null": {"NULL": True},
    "bool": {"BOOL": True},
}
SET_EXPRESSION = "SET #n = :n, #s = if_not_exists(#s, :s) ADD #c :one REMOVE #gone"


def scenario() -> list[Any]:
    """Calls the run store makes, and a few it does not, with every kind of value: answers."""
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    answers: list[Any] = []

    def call(operation: str, **parameters: Any) -> None:
        try:
            answer = getattr(client, operation)(**parameters)
        except ClientError as error:
            answer = {
                "error": error.response["Error"],
                "reasons": error.response.get("CancellationReasons"),
            }
        answer.pop("ResponseMetadata", None)
        answers.append((operation, answer))

    call("put_item", TableName=TABLE, Item={**key("p", "1"), **EVERY_TYPE, "gone": {"S": "x"}})
    call(
        "put_item", TableName=TABLE, Item={**key("p", "2"), "n": {"N": "1"}}, ReturnValues="ALL_OLD"
    )
    call(
        "put_item", TableName=TABLE, Item={**key("p", "2"), "n": {"N": "2"}}, ReturnValues="ALL_OLD"
    )
    # One update expression, two different value maps (and names), on two items.
    for sk, value, name in (("1", "7", "n"), ("2", "-3", "other")):
        call(
            "update_item",
            TableName=TABLE,
            Key=key("p", sk),
            UpdateExpression=SET_EXPRESSION,
            ExpressionAttributeNames={"#n": name, "#s": "s", "#c": "count", "#gone": "gone"},
            ExpressionAttributeValues={
                ":n": {"N": value},
                ":s": {"S": f"s{sk}"},
                ":one": {"N": "1"},
            },
            ReturnValues="ALL_NEW",
        )
    for returns in ("ALL_OLD", "UPDATED_OLD", "UPDATED_NEW", "NONE"):
        call(
            "update_item",
            TableName=TABLE,
            Key=key("p", "1"),
            UpdateExpression=SET_EXPRESSION,
            ConditionExpression="attribute_exists(pk) AND #n <> :n",
            ExpressionAttributeNames={"#n": "n", "#s": "s", "#c": "count", "#gone": "gone"},
            ExpressionAttributeValues={":n": {"N": "100"}, ":s": {"S": "z"}, ":one": {"N": "1"}},
            ReturnValues=returns,
        )
    # A condition that fails, with the old item returned; an expression that cannot parse.
    call(
        "update_item",
        TableName=TABLE,
        Key=key("p", "1"),
        UpdateExpression="SET #n = :n",
        ConditionExpression="attribute_not_exists(pk)",
        ExpressionAttributeNames={"#n": "n"},
        ExpressionAttributeValues={":n": {"N": "1"}},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    for _ in range(2):
        call(
            "update_item",
            TableName=TABLE,
            Key=key("p", "1"),
            UpdateExpression="SET #n = = :n",
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={":n": {"N": "1"}},
        )
    call("get_item", TableName=TABLE, Key=key("p", "1"), ConsistentRead=True)
    call("get_item", TableName=TABLE, Key=key("p", "missing"))
    call(
        "query",
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
        Limit=1,
        ReturnConsumedCapacity="TOTAL",
    )
    call(
        "query",
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
    )
    call("scan", TableName=TABLE)
    call("batch_get_item", RequestItems={TABLE: {"Keys": [key("p", "1"), key("p", "2")]}})
    call(
        "batch_write_item",
        RequestItems={TABLE: [{"PutRequest": {"Item": {**key("q", "1"), **EVERY_TYPE}}}]},
    )
    call(
        "transact_write_items",
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {**key("t", "1"), **EVERY_TYPE}}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": key("p", "2"),
                    "UpdateExpression": SET_EXPRESSION,
                    "ExpressionAttributeNames": {
                        "#n": "n",
                        "#s": "s",
                        "#c": "count",
                        "#gone": "gone",
                    },
                    "ExpressionAttributeValues": {
                        ":n": {"N": "9"},
                        ":s": {"S": "t"},
                        ":one": {"N": "1"},
                    },
                }
            },
        ],
    )
    call(
        "transact_write_items",
        TransactItems=[
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": key("t", "1"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ],
    )
    call("transact_get_items", TransactItems=[{"Get": {"TableName": TABLE, "Key": key("t", "1")}}])
    call("delete_item", TableName=TABLE, Key=key("q", "1"), ReturnValues="ALL_OLD")
    call("describe_table", TableName=TABLE)
    return answers


def run_scenario(patched: bool) -> list[Any]:
    if patched:
        moto_patches.apply()
    try:
        with mock_aws():
            return scenario()
    finally:
        moto_patches.revert()


def test_patched_moto_answers_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    stock = run_scenario(patched=False)
    patched = run_scenario(patched=True)
    for before, after in zip(stock, patched, strict=True):
        if before[0] == "describe_table":  # creation times differ
            for answer in (before[1], after[1]):
                answer["Table"].pop("CreationDateTime")
        assert after == before
    # the two updates with one expression and two value maps wrote what each asked for
    updated = [answer for operation, answer in patched if operation == "update_item"]
    assert updated[0]["Attributes"]["n"] == {"N": "7"}
    assert updated[0]["Attributes"]["s"] == {"S": "text"}  # if_not_exists kept it
    assert updated[1]["Attributes"]["other"] == {"N": "-3"}
    assert updated[1]["Attributes"]["s"] == {"S": "s2"}
    assert "gone" not in updated[0]["Attributes"]


def tree(node: Any) -> Any:
    """A node and everything under it, as plain values."""
    children = getattr(node, "children", None)
    if children is None:
        return (type(node).__name__, repr(node) if not hasattr(node, "type") else None)
    return (type(node).__name__, [tree(child) for child in children])


def test_an_update_expression_is_parsed_once_and_never_changed(dynamodb: Any) -> None:
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    first = UpdateExpressionParser.make(SET_EXPRESSION)
    assert UpdateExpressionParser.make(SET_EXPRESSION) is first
    shape = tree(first)
    put(dynamodb, "a")
    for n in range(3):
        dynamodb.update_item(
            TableName=TABLE,
            Key=key("a"),
            UpdateExpression=SET_EXPRESSION,
            ExpressionAttributeNames={"#n": "n", "#s": "s", "#c": "count", "#gone": "gone"},
            ExpressionAttributeValues={":n": {"N": str(n)}, ":s": {"S": "s"}, ":one": {"N": "1"}},
        )
    assert UpdateExpressionParser.make(SET_EXPRESSION) is first
    assert tree(first) == shape  # the values and the item went into copies only
    assert get(dynamodb, "a") == {**key("a"), "n": {"N": "2"}, "s": {"S": "s"}, "count": {"N": "3"}}
    with pytest.raises(Exception, match="Syntax error"):
        UpdateExpressionParser.make("SET a = = b")


# -- patches 12 and 13 --------------------------------------------------------------------

CONDITION = "attribute_not_exists(#pk) OR #n < :limit"


def test_a_condition_is_lexed_once_and_each_write_gets_its_own_values(dynamodb: Any) -> None:
    def put_if(n: int, limit: int) -> bool:
        try:
            dynamodb.put_item(
                TableName=TABLE,
                Item={**key("c"), "n": {"N": str(n)}},
                ConditionExpression=CONDITION,
                ExpressionAttributeNames={"#pk": "pk", "#n": "n"},
                ExpressionAttributeValues={":limit": {"N": str(limit)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    assert put_if(5, limit=0)  # absent: written
    assert not put_if(6, limit=5)  # 5 < 5 does not hold
    assert put_if(7, limit=6)  # 5 < 6 holds: the new value was used, not the cached one
    assert not put_if(8, limit=7)
    assert get(dynamodb, "c") == {**key("c"), "n": {"N": "7"}}
    assert list(moto_patches._lexed_conditions) == [CONDITION]
    for _ in range(2):  # a text that does not lex fails the same way each time, and is not kept
        with pytest.raises(Exception, match="Cannot parse condition"):
            dynamodb.put_item(
                TableName=TABLE, Item=key("d"), ConditionExpression="attribute_not_exists(pk) $"
            )
    assert list(moto_patches._lexed_conditions) == [CONDITION]


def test_a_send_does_not_count_the_queue_and_attributes_stay_whole(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sqs.models import Queue

    counted: list[str] = []
    count = Queue.approximate_number_of_messages
    monkeypatch.setattr(
        Queue,
        "approximate_number_of_messages",
        property(lambda queue: counted.append(queue.name) or count.fget(queue)),
    )
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="standard")["QueueUrl"]
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"b{n}"} for n in range(3)]
    )
    assert counted == []  # no send looked at the whole queue
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "8"
    assert "VisibilityTimeout" in attributes
    assert counted == ["standard"]
    # A FIFO queue still reads its ContentBasedDeduplication: the same body twice is one message.
    fifo = sqs.create_queue(
        QueueName="ordered.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")
    received = sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in received] == ["same"]
