"""AWS plumbing shared by the adapters: clients, endpoints, and the resources the runtime needs.

- `endpoint_url(settings, service)` is the one rule for where a client talks to:
  `settings.endpoint_url`, else `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else
  AWS itself. Every adapter (boto3 and PynamoDB alike) resolves its endpoint here, so
  `durable dev` and the tests reach moto with one setting.
- `boto3_client(service, settings)` makes a client from a fresh session (boto3's default
  session is not safe to share between threads while clients are created), configured
  for the field: botocore's standard retry mode (exponential backoff with jitter on
  throttling, 5xx and connection errors, a retry quota against retry storms) with
  `RETRY_ATTEMPTS` tries in all, and short connect/read timeouts so a stuck connection
  costs seconds, not the invocation. PynamoDB's models get the same (`storage._tables`).
  What fails beyond that becomes an `InfrastructureError` in the adapters.
- `ensure_resources(settings)` creates whatever is missing (the table with its indexes, the
  wake-up queue with its dead-letter queue, the bucket) and returns the queue URL. It is
  idempotent and meant for tests and the local dev server; deployed stacks come from SAM.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config

from durable.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

# SQS hands a message to the dead-letter queue after this many receives.
MAX_RECEIVE_COUNT = 5
# Every AWS client: tries per call in all (botocore's standard mode), and timeouts.
RETRY_ATTEMPTS = 6
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 10
# S3 moves values of up to 6 MB: give a read more time.
S3_READ_TIMEOUT_SECONDS = 30
# Connections one client keeps to one endpoint. A Lambda invocation uses one at a time;
# `durable dev`'s gateway serves every HTTP client from its own thread on one client.
MAX_POOL_CONNECTIONS = 32


def client_config(service: str) -> Config:
    """The botocore configuration of every client the runtime makes for `service`."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": RETRY_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=S3_READ_TIMEOUT_SECONDS if service == "s3" else READ_TIMEOUT_SECONDS,
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )


def endpoint_url(settings: Settings | None, service: str) -> str | None:
    """Where clients of `service` should talk to; None means AWS's own endpoint."""
    if settings is not None and settings.endpoint_url:
        return settings.endpoint_url
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
    return specific or os.environ.get("AWS_ENDPOINT_URL") or None


def region_name(settings: Settings | None) -> str:
    """The region: `DURABLE_REGION` when set, else the usual AWS environment, else the default.

    `Settings.region` has a default, so an unset `DURABLE_REGION` must not hide the
    `AWS_REGION` that Lambda sets in every function's environment.
    """
    # An empty DURABLE_REGION (template.yaml's default) counts as unset.
    if settings is not None and "region" in settings.model_fields_set and settings.region:
        return settings.region
    from_env = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if from_env:
        return from_env
    return (settings.region if settings is not None else "") or "us-east-1"


@overload
def boto3_client(service: Literal["dynamodb"], settings: Settings) -> DynamoDBClient: ...
@overload
def boto3_client(service: Literal["sqs"], settings: Settings) -> SQSClient: ...
@overload
def boto3_client(service: Literal["s3"], settings: Settings) -> S3Client: ...
@overload
def boto3_client(service: Literal["lambda"], settings: Settings) -> Any: ...
def boto3_client(service: str, settings: Settings) -> Any:
    """A boto3 client for `service` in the settings' region and endpoint."""
    session = boto3.session.Session()
    return session.client(
        service,  # type: ignore[call-overload]
        region_name=region_name(settings),
        endpoint_url=endpoint_url(settings, service),
        config=client_config(service),
    )


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
    # Imported here: PynamoDB stays off the import path of anything but the store.
    from durable.storage._tables import DEFAULT_SHARDS, create_table

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
            CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
        )
