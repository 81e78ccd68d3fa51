"""The one place the AWS adapters are chosen: `Settings` in, wired `Adapters` out, cached per
container.

    environment_adapters() ─► Settings (DURABLE_* env) ─► import task modules (`@task`)
                                                       ─► DynamoDBRunStore + SQSWakeQueue
                                                          + S3BlobStore ─► ValueCodec
                                                          + CloudWatchRunLogSource (run logs)

Both ends of a deployment build on these: `Client.from_environment()` (a user's script, the
CLI) and `durable.bootstrap`'s runtime (the Lambda handlers, which add the worker). Tests and
the local dev server pass their own adapters instead (`Runtime.from_parts`).

boto3 and PynamoDB load only when adapters are built: this module is on every handler's
cold-start path.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from durable.blobs.base import BlobStore
from durable.errors import DurableError
from durable.queues.base import WakeQueue
from durable.runlogs.base import RunLogSource
from durable.settings import Settings, get_settings
from durable.storage.base import RunStore
from durable.values import ValueCodec

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True, slots=True)
class Adapters:
    """The adapters `settings` name, with the codec on their blob store."""

    settings: Settings
    store: RunStore
    queue: WakeQueue
    blobs: BlobStore
    codec: ValueCodec
    logs: RunLogSource


def import_task_modules(settings: Settings) -> None:
    """Import the modules named in `DURABLE_TASK_MODULES`, so their `@task`s register."""
    for name in settings.task_module_list:
        importlib.import_module(name)


def build_adapters(settings: Settings) -> Adapters:
    """The AWS adapters (DynamoDB, SQS, S3) that `settings` describe, task modules imported."""
    # Imported here (lower layers all): boto3 and PynamoDB load only when they are needed.
    from durable.aws import boto3_client, endpoint_url, region_name
    from durable.blobs.s3 import S3BlobStore
    from durable.queues.sqs import SQSWakeQueue
    from durable.runlogs.cloudwatch import CloudWatchRunLogSource
    from durable.storage.dynamodb import DynamoDBRunStore

    import_task_modules(settings)
    sqs = boto3_client("sqs", settings)
    queue_url = settings.queue_url or _queue_url(sqs, settings.queue_name)
    store = DynamoDBRunStore.from_settings(settings)
    queue = SQSWakeQueue(queue_url, client=sqs)
    blobs = S3BlobStore(settings.bucket_name, client=boto3_client("s3", settings))
    logs = CloudWatchRunLogSource(
        settings.log_group,
        region=region_name(settings),
        endpoint_url=endpoint_url(settings, "logs"),
    )
    return Adapters(settings, store, queue, blobs, ValueCodec(blobs), logs)


def _queue_url(sqs: SQSClient, queue_name: str) -> str:
    """The URL of the queue called `queue_name` (when `DURABLE_QUEUE_URL` is not set)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    except (BotoCoreError, ClientError) as exc:
        raise DurableError(
            f"cannot find the wake-up queue {queue_name!r}; set DURABLE_QUEUE_URL: {exc}"
        ) from exc


_lock = threading.Lock()
_cached: Adapters | None = None


def environment_adapters(settings: Settings | None = None) -> Adapters:
    """This container's adapters, built on first use from `settings` (default: the env).

    Given settings other than the cached adapters', new ones are built and cached.
    """
    global _cached
    with _lock:
        if _cached is None or (settings is not None and settings != _cached.settings):
            _cached = build_adapters(settings if settings is not None else get_settings())
        return _cached


def forget_adapters() -> None:
    """Forget the cached adapters (and the cached settings): the next call builds afresh."""
    global _cached
    with _lock:
        _cached = None
    get_settings.cache_clear()
