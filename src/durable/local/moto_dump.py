"""The whole state of the dev stack's moto, as records that rebuild it (a snapshot).

Read through moto's own API (ListTables, Scan, ListObjectsV2, GetQueueAttributes...), so a
snapshot does not depend on moto's internals; the messages come from the server's own
account of what was sent and not deleted (`QueuedMessage`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from durable.local.moto_requests import (
    QueuedMessage,
    Request,
    Response,
    queue_name,
    synthetic_request,
)

Call = Callable[[Request], Response]  # hands one request to moto


def dump(call: Call, messages: dict[tuple[str, str], QueuedMessage]) -> Iterator[dict[str, Any]]:
    """The whole state: tables, buckets, queues and their messages."""
    yield from dump_dynamodb(call)
    yield from dump_s3(call)
    yield from dump_sqs(call, messages)


def _dynamodb(call: Call, action: str, parameters: dict[str, Any]) -> dict[str, Any]:
    request = synthetic_request(
        "dynamodb",
        target=f"DynamoDB_20120810.{action}",
        body=json.dumps(parameters).encode(),
    )
    response = call(request)
    if not response.ok:
        raise RuntimeError(f"moto {action} failed: {response.body[:300]!r}")
    return response.json()


def dump_dynamodb(call: Call) -> Iterator[dict[str, Any]]:
    """Each table (CreateTable, its TTL) and its items (BatchWriteItem, 25 to a record)."""
    for name in _dynamodb(call, "ListTables", {}).get("TableNames", []):
        table = _dynamodb(call, "DescribeTable", {"TableName": name})["Table"]
        yield _dynamodb_record("CreateTable", _create_table_input(table))
        ttl = _dynamodb(call, "DescribeTimeToLive", {"TableName": name})
        description = ttl.get("TimeToLiveDescription", {})
        if description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            yield _dynamodb_record(
                "UpdateTimeToLive",
                {
                    "TableName": name,
                    "TimeToLiveSpecification": {
                        "Enabled": True,
                        "AttributeName": description["AttributeName"],
                    },
                },
            )
        start: dict[str, Any] | None = None
        while True:
            page = _dynamodb(
                call, "Scan", {"TableName": name, **({"ExclusiveStartKey": start} if start else {})}
            )
            items = page.get("Items", [])
            for offset in range(0, len(items), 25):
                chunk = items[offset : offset + 25]
                yield _dynamodb_record(
                    "BatchWriteItem",
                    {"RequestItems": {name: [{"PutRequest": {"Item": i}} for i in chunk]}},
                )
            start = page.get("LastEvaluatedKey")
            if not start:
                break


def _dynamodb_record(action: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return synthetic_request(
        "dynamodb",
        target=f"DynamoDB_20120810.{action}",
        body=json.dumps(parameters).encode(),
    ).to_record()


def dump_s3(call: Call) -> Iterator[dict[str, Any]]:
    """Each bucket (CreateBucket) and each object in it (PutObject)."""
    listing = call(synthetic_request("s3", method="GET", path="/"))
    for bucket in re.findall(rb"<Name>([^<]+)</Name>", listing.body):
        name = bucket.decode()
        yield synthetic_request("s3", method="PUT", path=f"/{name}").to_record()
        marker = ""
        while True:
            request = synthetic_request("s3", method="GET", path=f"/{name}")
            request.environ["QUERY_STRING"] = f"list-type=2&max-keys=1000{marker}"
            page = call(request).body
            for key in re.findall(rb"<Key>([^<]+)</Key>", page):
                path = f"/{name}/{_unescape_xml(key.decode())}"
                got = call(synthetic_request("s3", method="GET", path=path))
                content_type = dict(got.headers).get("Content-Type", "binary/octet-stream")
                yield synthetic_request(
                    "s3",
                    method="PUT",
                    path=path,
                    body=got.body,
                    headers={"Content-Type": content_type},
                ).to_record()
            token = re.search(rb"<NextContinuationToken>([^<]+)<", page)
            if token is None:
                break
            marker = f"&continuation-token={token.group(1).decode()}"


def dump_sqs(
    call: Call, messages: dict[tuple[str, str], QueuedMessage]
) -> Iterator[dict[str, Any]]:
    """Each queue with its attributes (CreateQueue), then each message not deleted."""

    def sqs(action: str, parameters: dict[str, Any]) -> dict[str, Any]:
        response = call(
            synthetic_request(
                "sqs", target=f"AmazonSQS.{action}", body=json.dumps(parameters).encode()
            )
        )
        return response.json() if response.ok else {}

    queues = []
    for url in sqs("ListQueues", {}).get("QueueUrls", []):
        attributes = sqs("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})
        queues.append((queue_name(url), attributes.get("Attributes", {})))
    # Dead-letter queues first: a redrive policy names a queue that must exist.
    queues.sort(key=lambda queue: "RedrivePolicy" in queue[1])
    for name, attributes in queues:
        settable = {
            key: value for key, value in attributes.items() if key in _SETTABLE_QUEUE_ATTRIBUTES
        }
        yield synthetic_request(
            "sqs",
            target="AmazonSQS.CreateQueue",
            body=json.dumps({"QueueName": name, "Attributes": settable}).encode(),
        ).to_record()
    for (queue, message_id), message in messages.items():
        yield {
            "kind": "sqs_send",
            "queue": queue,
            "id": message_id,
            "body": message.body,
            "attributes": message.attributes,
            "visible_at": message.visible_at,
        }


_SETTABLE_QUEUE_ATTRIBUTES = frozenset(
    {
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "RedrivePolicy",
        "RedriveAllowPolicy",
        "FifoQueue",
        "ContentBasedDeduplication",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "SqsManagedSseEnabled",
    }
)


def _unescape_xml(text: str) -> str:
    return (
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    )


def _create_table_input(table: dict[str, Any]) -> dict[str, Any]:
    """CreateTable's parameters for a table as DescribeTable shows it."""
    created: dict[str, Any] = {
        "TableName": table["TableName"],
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": table["AttributeDefinitions"],
    }
    billing = table.get("BillingModeSummary", {}).get("BillingMode", "PAY_PER_REQUEST")
    created["BillingMode"] = billing
    if billing == "PROVISIONED":
        throughput = table.get("ProvisionedThroughput", {})
        created["ProvisionedThroughput"] = {
            "ReadCapacityUnits": throughput.get("ReadCapacityUnits", 5),
            "WriteCapacityUnits": throughput.get("WriteCapacityUnits", 5),
        }
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = []
        for index in table.get(kind, []):
            copied: dict[str, Any] = {
                "IndexName": index["IndexName"],
                "KeySchema": index["KeySchema"],
                "Projection": index["Projection"],
            }
            if kind == "GlobalSecondaryIndexes" and billing == "PROVISIONED":
                throughput = index.get("ProvisionedThroughput", {})
                copied["ProvisionedThroughput"] = {
                    "ReadCapacityUnits": throughput.get("ReadCapacityUnits", 5),
                    "WriteCapacityUnits": throughput.get("WriteCapacityUnits", 5),
                }
            indexes.append(copied)
        if indexes:
            created[kind] = indexes
    if "StreamSpecification" in table:
        created["StreamSpecification"] = table["StreamSpecification"]
    return created
