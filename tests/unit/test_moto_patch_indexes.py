"""`durable.local.moto_patches.indexes` (patches 15 and 16): index queries answer exactly
what moto answers without them, in the same order, pages and projections.

The same scenario runs on moto in-process (`mock_aws`) as it ships and with the patches:
a table with an INCLUDE index (a number range key with ties, broken by the table's keys)
and a KEYS_ONLY one, queried forwards and backwards, paged, filtered, with top-level and
nested projection expressions (the nested ones go to moto's own `Item.project`).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from durable.local import moto_patches

TABLE = "indexed"
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)


def make_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in (("pk", "S"), ("sk", "S"), ("g", "S"), ("n", "N"), ("k", "S"))
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-n",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "n", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["task", "doc"]},
            },
            {
                "IndexName": "by-k",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "k", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(40):
        item: dict[str, Any] = {
            "pk": {"S": f"p{i % 7}"},
            "sk": {"S": f"s{i:03d}"},
            "g": {"S": f"g{i % 2}"},
            # ties (i // 3), and numbers whose text order is not their order (9 < 10)
            "n": {"N": str(i // 3 * (1 if i % 4 else -1))},
            "task": {"S": f"task-{i % 3}"},
            "doc": {"M": {"a": {"L": [{"N": str(i)}, {"S": "x"}]}, "b": {"BOOL": i % 2 == 0}}},
            "big": {"S": "y" * 300},
        }
        if i % 5:
            item["k"] = {"S": f"k{(i * 7) % 11:02d}"}  # not every item is in `by-k`
        client.put_item(TableName=TABLE, Item=item)


def query_all(client: Any, **request: Any) -> list[Any]:
    """Every page of a query: the answers, without the consumed capacity."""
    pages = []
    while True:
        answer = client.query(TableName=TABLE, **request)
        answer.pop("ResponseMetadata", None)
        pages.append(answer)
        if "LastEvaluatedKey" not in answer:
            return pages
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def scenario() -> list[Any]:
    client = boto3.client("dynamodb", region_name=REGION)
    make_table(client)
    g0 = {":g": {"S": "g0"}}
    requests: list[dict[str, Any]] = [
        {"IndexName": "by-n", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": g0},
        {
            "IndexName": "by-n",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": g0,
            "ScanIndexForward": False,
            "Limit": 3,
        },
        {
            "IndexName": "by-n",
            "KeyConditionExpression": "g = :g AND n BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {**g0, ":lo": {"N": "-4"}, ":hi": {"N": "9"}},
            "Limit": 4,
        },
        {
            "IndexName": "by-n",
            "KeyConditionExpression": "g = :g",
            "FilterExpression": "task = :t",
            "ExpressionAttributeValues": {**g0, ":t": {"S": "task-1"}},
            "ProjectionExpression": "pk, task",
        },
        {
            "IndexName": "by-n",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": {"S": "g1"}},
            "ProjectionExpression": "doc.a[0], doc.b, pk",  # moto's own project
            "Limit": 5,
        },
        {
            "IndexName": "by-k",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": {"S": "g1"}},
            "ScanIndexForward": False,
            "Limit": 6,
        },
        {
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "p3"}},
            "ProjectionExpression": "sk, task, doc",
        },
    ]
    return [query_all(client, **request) for request in requests]


def run_scenario(patched: bool) -> list[Any]:
    if patched:
        moto_patches.apply()
    try:
        from moto.dynamodb.models.dynamo_type import Item
        from moto.dynamodb.models.table import Table

        from durable.local.moto_patches import indexes

        assert (Table.sorted_items is indexes._sorted_items) is patched
        assert (Item.project is indexes._project) is patched
        with mock_aws():
            return scenario()
    finally:
        moto_patches.revert()


def test_index_queries_answer_as_moto_does() -> None:
    stock = run_scenario(patched=False)
    patched = run_scenario(patched=True)
    assert patched == stock
    # the scenario means something: ordered ties, pages, projections
    everything = [item for page in stock[0] for item in page["Items"]]
    assert len(everything) == 20
    numbers = [int(item["n"]["N"]) for item in everything]
    assert numbers == sorted(numbers) and len(set(numbers)) < len(numbers)
    assert set(everything[0]) == {"pk", "sk", "g", "n", "task", "doc"}  # INCLUDE, no "big"
    assert len(stock[1]) > 1 and len(stock[1][0]["Items"]) == 3
    assert {frozenset(item) for page in stock[3] for item in page["Items"]} == {
        frozenset({"pk", "task"})
    }
    nested = stock[4][0]["Items"][0]
    assert set(nested) == {"pk", "doc"} and set(nested["doc"]["M"]) == {"a", "b"}
    assert set(stock[5][0]["Items"][0]) == {"pk", "sk", "g", "k"}  # KEYS_ONLY
