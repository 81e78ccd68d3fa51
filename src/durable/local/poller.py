"""The local SQS event source mapping: long-poll the queue, invoke the worker, delete on success.

    receive (≤10, short long-poll, only as many as containers are free)
      └─► one invocation per message, each in its own container, with a time limit
            ok and not reported failed ─► DeleteMessageBatch (with those ending
                                            within 20 ms)
            raised / crashed / timed out ─► leave it: SQS delivers it again once the
                                            visibility timeout ends (the dead invocation's
                                            lease has run out by then)

Lambda's mapping hands batches to one invocation; here each message gets its own, which
keeps a crash's blast radius to one run. Messages are received only when a container is
free, so none waits in the dev server while its visibility timeout runs down.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from durable.local.console import Entry, entry, traceback_location
from durable.local.containers import Container, ContainerPool, InvocationResult

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

# Seconds a ReceiveMessage call waits for messages: short, so a stop takes effect quickly.
POLL_WAIT_SECONDS = 1
# How long a handled message waits for others to be deleted with (DeleteMessageBatch).
DELETE_LINGER_SECONDS = 0.02


class QueuePoller:
    """Feeds queue messages to the worker handler in a pool of containers."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        queue_arn: str,
        region: str,
        pool: ContainerPool,
        time_limit: float,
        log: Callable[[Entry], None] = print,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._region = region
        self._pool = pool
        self._time_limit = time_limit
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)
        self._invocations: set[threading.Thread] = set()
        self._deletions: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._delete_in_batches, name="sqs-deleter", daemon=True).start()
        self._lock = threading.Lock()
        self.invoked = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop receiving; invocations still running end when the pool closes."""
        self._stop.set()
        self._thread.join(timeout)

    def join_invocations(self, timeout: float) -> None:
        with self._lock:
            running = list(self._invocations)
        for thread in running:
            thread.join(timeout)
        self.flush_deletions()

    def _run(self) -> None:
        while not self._stop.is_set():
            container = self._pool.acquire(timeout=0.5)
            if container is None:
                continue
            try:
                messages = self._receive(min(10, 1 + self._pool.idle()))
            except Exception as exc:  # moto going away at shutdown, or a real fault
                self._pool.put_back(container)
                if not self._stop.is_set():
                    failure = f"could not receive from SQS: {exc}"
                    self._log(entry("worker", failure, level="WARNING"))
                    self._stop.wait(1.0)
                continue
            if not messages:
                self._pool.put_back(container)
                continue
            for index, message in enumerate(messages):
                if index > 0:
                    next_container = self._next_container()
                    if next_container is None:
                        break  # stopping: the message comes back after its timeout
                    container = next_container
                self._dispatch(container, message)

    def _next_container(self) -> Container | None:
        while not self._stop.is_set():
            container = self._pool.acquire(timeout=0.5)
            if container is not None:
                return container
        return None

    def _receive(self, count: int) -> list[MessageTypeDef]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=POLL_WAIT_SECONDS,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _dispatch(self, container: Container, message: MessageTypeDef) -> None:
        thread = threading.Thread(
            target=self._invoke, args=(container, message), name="invocation", daemon=True
        )
        with self._lock:
            self._invocations.add(thread)
            self.invoked += 1
        thread.start()

    def _invoke(self, container: Container, message: MessageTypeDef) -> None:
        try:
            try:
                event = {"Records": [sqs_record(message, self._queue_arn, self._region)]}
                result = container.invoke(event, self._time_limit, str(uuid.uuid4()))
            except Exception as exc:  # a fault of ours: never leak the container
                container.kill()
                result = InvocationResult("crashed", 0.0, detail=f"local invoke failed: {exc}")
            self._pool.release(container, result)
            succeeded = result.status == "ok" and message["MessageId"] not in _failed_ids(
                result.response
            )
            if succeeded:
                self._delete(message)
            if not self._stop.is_set():
                self._log(_describe(message, result, succeeded))
        finally:
            with self._lock:
                self._invocations.discard(threading.current_thread())

    def _delete(self, message: MessageTypeDef) -> None:
        self._deletions.put(message["ReceiptHandle"])

    def _delete_in_batches(self) -> None:
        """Delete handled messages ten to a request: whatever else ended within
        `DELETE_LINGER_SECONDS` of the first goes in the same `DeleteMessageBatch`."""
        while True:
            handles = [self._deletions.get()]
            deadline = time.monotonic() + DELETE_LINGER_SECONDS
            while len(handles) < 10:
                try:
                    handles.append(self._deletions.get(timeout=deadline - time.monotonic()))
                except (queue.Empty, ValueError):
                    break
            self._delete_batch(handles)
            for _ in handles:
                self._deletions.task_done()

    def _delete_batch(self, handles: list[str]) -> None:
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(handles)
        ]
        try:
            response = self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
            failed = [item.get("Message", "") for item in response.get("Failed", [])]
        except Exception as exc:
            failed = [str(exc)]
        if failed and not self._stop.is_set():
            # Not fatal: the message comes back and the worker drops it as done.
            self._log(
                entry(
                    "worker",
                    f"could not delete {len(failed)} handled message(s): {failed[0]}",
                    level="WARNING",
                )
            )

    def flush_deletions(self, timeout: float = 5.0) -> None:
        """Wait until every handled message queued for deletion has been deleted."""
        deadline = time.monotonic() + timeout
        while self._deletions.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)


def sqs_record(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    """The Lambda event record of one received SQS message."""
    attributes: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        binary = value.get("BinaryValue")
        attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode("ascii") if binary else None,
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _failed_ids(response: Any) -> set[str]:
    """Message ids a partial-batch response reports as failed."""
    if not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures") or []
    return {str(item.get("itemIdentifier")) for item in failures if isinstance(item, dict)}


def _describe(message: MessageTypeDef, result: InvocationResult, succeeded: bool) -> Entry:
    """One log line per invocation: which run, why, and how it ended.

    In text, `run_… (start) ok 0.51s`; a handler's traceback shrinks to its last line and
    where it was raised (json and --verbose keep it whole)."""
    run_id = ""
    try:
        body = json.loads(message["Body"])
        run_id = str(body.get("run_id", "?"))
        reason = str(body.get("reason", "?"))
        what = f"({reason})"
    except (ValueError, AttributeError):
        reason = ""
        what = f"message {message['MessageId']}"
    receives = (message.get("Attributes") or {}).get("ApproximateReceiveCount", "1")
    if receives != "1":
        what += f" delivery #{receives}"
    took = f"{result.duration:.2f}s"
    data: dict[str, Any] = {
        "reason": reason,
        "status": result.status if result.status != "ok" or succeeded else "reported_failed",
        "duration_s": round(result.duration, 3),
        "delivery": int(receives) if receives.isdigit() else receives,
        "message_id": message["MessageId"],
    }
    if succeeded:
        return entry("worker", f"{what} ok {took}", run_id=run_id, data=data, outcome="ok")
    exception = ""
    level = "WARNING"
    if result.status == "ok":
        outcome = "reported as failed"
    elif result.status == "error":
        exception = result.detail  # the text form ends with its last line and location
        outcome = "raised" if exception.strip() else "raised an error"
    else:
        level = "ERROR"
        outcome = f"{result.status.replace('_', ' ')}: {result.detail}"
    return entry(
        "worker",
        f"{what} {outcome} after {took}; SQS will deliver it again",
        level=level,
        run_id=run_id,
        data=data,
        exception=exception,
        location=traceback_location(exception),
        outcome="failed",
    )
