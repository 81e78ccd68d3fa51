"""AWS plumbing shared by the adapters: clients and endpoints.

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

Creating the resources themselves (for tests and `durable dev`) is `durable.resources`'.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config

from durable.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

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
        service,  # type: ignore[call-overload]  # the stubs type one client per literal name
        region_name=region_name(settings),
        endpoint_url=endpoint_url(settings, service),
        config=client_config(service),
    )
