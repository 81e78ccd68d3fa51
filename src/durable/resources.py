"""Creating the AWS resources a stack needs where they are missing: for `durable dev`, the
test kit on moto, and the integration tests (a deployment gets them from `template.yaml`).

`ensure_resources(settings)` creates the table with its indexes, the wake-up queue with
its dead-letter queue, and the bucket; each step is idempotent, so it can run on every
start.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

from durable.aws import MAX_RECEIVE_COUNT, boto3_client, endpoint_url, region_name
from durable.settings import Settings
from durable.storage._tables import DEFAULT_SHARDS, create_table

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType


def ensure_resources(
    settings: Settings,
    *,
    visibility_timeout: timedelta | None = None,
    index_shards: int | None = None,
) -> str:
    """Create the table, queue (+ dead-letter queue) and bucket if missing; the queue URL.

    `visibility_timeout` sets how long a received message stays hidden before SQS delivers
    it again (the SQS default of 30 s when None). `index_shards` is the shard count of the
    table's indexes if it is created here (`durable.storage._tables.DEFAULT_SHARDS` when None).
    """
    create_table(
        settings.table_name,
        region_name(settings),
        endpoint_url(settings, "dynamodb"),
        shards=index_shards or DEFAULT_SHARDS,
    )
    queue_url = _ensure_queue(settings, visibility_timeout)
    _ensure_bucket(settings)
    return queue_url


def _ensure_queue(settings: Settings, visibility_timeout: timedelta | None) -> str:
    sqs = boto3_client("sqs", settings)
    # CreateQueue is idempotent for identical attributes, so no existence check is needed.
    dlq_url = sqs.create_queue(QueueName=f"{settings.queue_name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes: dict[QueueAttributeNameType, str] = {
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
        )
    }
    if visibility_timeout is not None:
        attributes["VisibilityTimeout"] = str(int(visibility_timeout.total_seconds()))
    try:
        queue_url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return sqs.create_queue(QueueName=settings.queue_name, Attributes=attributes)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    return queue_url


def _ensure_bucket(settings: Settings) -> None:
    s3 = boto3_client("s3", settings)
    try:
        s3.head_bucket(Bucket=settings.bucket_name)
        return
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = region_name(settings)
    if region == "us-east-1":
        s3.create_bucket(Bucket=settings.bucket_name)
    else:
        s3.create_bucket(
            Bucket=settings.bucket_name,
            CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]  # the stubs list regions as literals; ours is a str
        )
