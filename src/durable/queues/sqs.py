"""`SQSWakeQueue`: the `WakeQueue` port on an SQS standard queue.

SQS delivers at least once, possibly late, twice or out of order; consumers are idempotent
(see `durable.queues.base`). A delay is sent as `DelaySeconds`, rounded up to whole seconds
so a message never arrives before it is due; SQS caps it at 15 minutes and so does `send`
(a longer delay raises `ValueError`, as the memory queue does).

The body is `WakeUp.to_json()`; `run_id` and `reason` are also sent as message attributes,
so consumers and the console can filter without parsing. botocore errors become
`InfrastructureError`.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from durable.aws import boto3_client
from durable.errors import InfrastructureError
from durable.queues.base import SQS_MAX_DELAY, QueueDepths
from durable.records import WakeUp
from durable.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

# SendMessageBatch takes at most ten entries.
_BATCH = 10


class SQSWakeQueue:
    """Sends wake-ups to one SQS queue."""

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self._queue_url = queue_url
        self._client = client if client is not None else boto3_client("sqs", get_settings())
        self._lock = threading.Lock()
        self._dead_letter_url: str | None = None
        self.sent = 0  # messages accepted by SQS, counted for tests and benchmarks

    @property
    def queue_url(self) -> str:
        return self._queue_url

    @property
    def max_delay(self) -> timedelta:
        return SQS_MAX_DELAY

    def send(self, message: WakeUp, delay: timedelta = timedelta(0)) -> None:
        delay_seconds = _delay_seconds(delay)
        try:
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=message.to_json(),
                DelaySeconds=delay_seconds,
                MessageAttributes=_attributes(message),
            )
        except (BotoCoreError, ClientError) as exc:
            raise InfrastructureError(
                f"SQS refused the wake-up for run {message.run_id}: {exc}"
            ) from exc
        self._count(1)

    def send_many(self, messages: Sequence[WakeUp], delay: timedelta = timedelta(0)) -> None:
        """Send every message with the same delay, ten per request (see `send_timed`)."""
        self.send_timed([(message, delay) for message in messages])

    def send_timed(self, entries: Sequence[tuple[WakeUp, timedelta]]) -> None:
        """Send each message after its own delay, ten per request.

        Raises `InfrastructureError` naming the runs whose messages SQS did not accept; the others
        were sent (a re-send is harmless: consumers are idempotent).
        """
        pending = [(message, _delay_seconds(delay)) for message, delay in entries]
        failed: list[str] = []
        for start in range(0, len(pending), _BATCH):
            batch = pending[start : start + _BATCH]
            request: list[SendMessageBatchRequestEntryTypeDef] = [
                {
                    "Id": str(index),
                    "MessageBody": message.to_json(),
                    "DelaySeconds": delay_seconds,
                    "MessageAttributes": _attributes(message),
                }
                for index, (message, delay_seconds) in enumerate(batch)
            ]
            try:
                response = self._client.send_message_batch(
                    QueueUrl=self._queue_url, Entries=request
                )
            except (BotoCoreError, ClientError) as exc:
                raise InfrastructureError(
                    f"SQS refused a batch of {len(batch)} wake-ups: {exc}"
                ) from exc
            self._count(len(response.get("Successful", [])))
            failed.extend(batch[int(entry["Id"])][0].run_id for entry in response.get("Failed", []))
        if failed:
            raise InfrastructureError(f"SQS did not accept the wake-ups of runs {failed}")

    def waiting(self) -> int:
        """Messages visible and waiting for a consumer (approximate: SQS counts lag a little)."""
        try:
            response = self._client.get_queue_attributes(
                QueueUrl=self._queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )
        except (BotoCoreError, ClientError) as exc:
            raise InfrastructureError(f"SQS did not say how many messages wait: {exc}") from exc
        return int(response.get("Attributes", {}).get("ApproximateNumberOfMessages", "0"))

    def depths(self) -> QueueDepths:
        """The queue's approximate counts, and its dead-letter queue's depth (from the
        queue's redrive policy; its URL is looked up once). Two or three requests."""
        attributes = self._attributes(
            self._queue_url,
            [
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
                "RedrivePolicy",
            ],
        )
        dead_letter_name: str | None = None
        dead_letter_depth: int | None = None
        policy = attributes.get("RedrivePolicy")
        if policy:
            arn = str(json.loads(policy).get("deadLetterTargetArn", ""))
            if arn:
                dead_letter_name = arn.rsplit(":", 1)[-1]
                if self._dead_letter_url is None:
                    try:
                        self._dead_letter_url = self._client.get_queue_url(
                            QueueName=dead_letter_name, QueueOwnerAWSAccountId=arn.split(":")[4]
                        )["QueueUrl"]
                    except (BotoCoreError, ClientError) as exc:
                        raise InfrastructureError(
                            f"SQS did not find the dead-letter queue {dead_letter_name}: {exc}"
                        ) from exc
                dead = self._attributes(self._dead_letter_url, ["ApproximateNumberOfMessages"])
                dead_letter_depth = int(dead.get("ApproximateNumberOfMessages", "0"))
        return QueueDepths(
            name=self._queue_url.rstrip("/").rsplit("/", 1)[-1],
            depth=int(attributes.get("ApproximateNumberOfMessages", "0")),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
            delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", "0")),
            dead_letter_name=dead_letter_name,
            dead_letter_depth=dead_letter_depth,
        )

    def _attributes(self, url: str, names: list[QueueAttributeFilterType]) -> dict[str, str]:
        try:
            response = self._client.get_queue_attributes(QueueUrl=url, AttributeNames=names)
        except (BotoCoreError, ClientError) as exc:
            raise InfrastructureError(f"SQS did not give the queue's attributes: {exc}") from exc
        return {str(name): value for name, value in response.get("Attributes", {}).items()}

    def redeliver_after(self, receipt_handle: str, delay: timedelta) -> None:
        """Make a received message visible again after `delay` (a failed record's backoff)."""
        try:
            self._client.change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=int(delay.total_seconds()),
            )
        except (BotoCoreError, ClientError) as exc:
            raise InfrastructureError(f"SQS refused to change a visibility: {exc}") from exc

    def _count(self, sent: int) -> None:
        with self._lock:
            self.sent += sent


def _delay_seconds(delay: timedelta) -> int:
    if delay > SQS_MAX_DELAY:
        raise ValueError(f"delay {delay} exceeds the queue's maximum {SQS_MAX_DELAY}")
    # Round up: a wake-up may come late, never early.
    return max(0, min(math.ceil(delay.total_seconds()), int(SQS_MAX_DELAY.total_seconds())))


def _attributes(message: WakeUp) -> dict[str, MessageAttributeValueTypeDef]:
    return {
        "run_id": {"DataType": "String", "StringValue": message.run_id},
        "reason": {"DataType": "String", "StringValue": str(message.reason)},
    }
