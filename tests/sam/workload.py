"""A day in the life of a deployed stack, on moto in this process, one role at a time.

The three functions of `template.yaml` are driven through the same entry points their
handlers call, on DynamoDB, SQS and S3 in moto and one virtual clock:

- the API function: `durable.api.handle` with API Gateway HTTP API events;
- the worker: `Runtime.process_wake_up` with each wake-up as it falls due (what the SQS
  event source mapping hands it), plus a worker of a newer code version routing a pinned
  run to the old one (`lambda:InvokeFunction`);
- the sweeper: `Runtime.sweep` (fire cron tasks, re-enqueue a lost wake-up, send the purge
  messages of the expiry shards with runs past retention, which the workers purge).

The tasks below use every durable operation, with values over the inline limit so that
S3 is used both ways. Each wake-up is sent to the real (moto) queue, so the sends are
recorded, and kept in memory too, where the virtual clock decides when it falls due.
`run_workload` asserts where each path ends, so a workload that quietly stopped taking a
path fails here rather than passing with fewer calls recorded.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from durable import (
    Context,
    NonRetryableError,
    Queue,
    RetryPolicy,
    TaskRegistry,
    WaitTimeoutError,
    task,
)
from durable.api import handle
from durable.aws import boto3_client
from durable.blobs.s3 import S3BlobStore
from durable.bootstrap import Runtime
from durable.clock import VirtualClock
from durable.errors import InfrastructureError
from durable.queues.base import QueueDepths
from durable.queues.memory import MemoryWakeQueue
from durable.queues.sqs import SQSWakeQueue
from durable.records import WakeReason, WakeUp
from durable.resources import ensure_resources
from durable.runlogs.cloudwatch import CloudWatchRunLogSource
from durable.services.timers import hand_off_timers
from durable.settings import Settings
from durable.storage import _tables
from durable.storage.dynamodb import DynamoDBRunStore
from durable.values import ValueCodec
from durable.worker.redelivery import WakeUpBatchProcessor
from tests.sam.aws_calls import PSEUDO_PARAMETERS, CallRecorder

START = datetime(2030, 1, 1, tzinfo=UTC)
# How often `Stack.work` hands long waits off, as the scheduled sweeper does: within the
# sweeper's 15-minute window, so that no parked run wakes late.
HAND_OFF_EVERY = timedelta(minutes=14)
# Values longer than this go to S3 (the deployed limit is 128 KiB: same code, smaller values).
INLINE_LIMIT = 1024
BIG = "x" * 2 * INLINE_LIMIT
# The worker of code version v1, as `VersionRoutes` names it for a v2 deployment.
OLD_WORKER = (
    f"arn:aws:lambda:{PSEUDO_PARAMETERS['AWS::Region']}:{PSEUDO_PARAMETERS['AWS::AccountId']}"
    f":function:{PSEUDO_PARAMETERS['AWS::StackName']}-WorkerFunction-0123ABCD:v1"
)

REGISTRY = TaskRegistry()
# The outside world the tasks talk to: callback tokens handed over, attempts of a flaky call.
TOKENS: dict[str, str] = {}
ATTEMPTS: Counter[str] = Counter()
ONCE = RetryPolicy(max_attempts=1)


def flaky(key: str) -> str:
    ATTEMPTS[key] += 1
    if ATTEMPTS[key] == 1:
        raise RuntimeError("the first try fails")
    return "second try"


def refuse() -> None:
    raise NonRetryableError("card declined")


@task(id="iam-square", registry=REGISTRY)
def square(ctx: Context, payload: int) -> int:
    if payload < 0:
        ctx.step("refuse", refuse)
    return ctx.step("square", lambda: payload * payload)


@task(id="iam-tour", registry=REGISTRY, retry=ONCE)
def tour(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
    """Every durable operation once: steps, waits of every kind, children and fan-out."""
    big = ctx.step("big-value", lambda: BIG)
    ctx.step(
        "flaky",
        flaky,
        ctx.run.id,
        retry=RetryPolicy(max_attempts=2, min_delay=timedelta(seconds=5), jitter=0),
    )

    def beat() -> int:
        ctx.heartbeat({"done": 1})
        return 1

    ctx.step("long", beat, heartbeat_timeout=timedelta(minutes=1))
    ctx.step("book", lambda: "booked", compensate=lambda booking: None)
    values = [str(ctx.now()), ctx.random(), str(ctx.uuid4()), ctx.patched("new-path")]
    ctx.sleep("nap", timedelta(minutes=1))
    ctx.sleep("night", timedelta(hours=2))  # longer than SQS's delay: re-hops
    approval = ctx.wait_for_event("approval", timeout=timedelta(days=1))
    with contextlib.suppress(WaitTimeoutError):
        ctx.wait_for_event("never", timeout=timedelta(minutes=1))
    review = ctx.wait_for_callback(
        "review",
        submit=lambda token: TOKENS.__setitem__(payload["key"], token),
        timeout=timedelta(days=1),
    )
    child = ctx.invoke("iam-square", 3)
    ctx.trigger("iam-square", 4)
    squares = ctx.map("iam-square", [1, 2, -1], tolerated_failures=1)
    fastest = ctx.parallel([("iam-square", 5), ("iam-square", 6)], first_success=True)
    return {
        "big": big,
        "values": values,
        "approval": approval,
        "review": review,
        "child": child,
        "squares": [s if isinstance(s, int) else None for s in squares],
        "fastest": fastest,
    }


@task(id="iam-doomed", registry=REGISTRY, retry=RetryPolicy(max_attempts=2, jitter=0))
def doomed(ctx: Context, payload: None) -> None:
    """Retried once as a whole, then fails for good and compensates."""
    ctx.step("reserve", lambda: "reserved", compensate=lambda reservation: None)
    if ctx.run.attempt == 1:
        raise RuntimeError("the first attempt fails")
    ctx.step("pay", refuse)


@task(id="iam-slow", registry=REGISTRY, timeout=timedelta(minutes=5))
def slow(ctx: Context, payload: None) -> None:
    ctx.sleep("too-long", timedelta(hours=1))


@task(id="iam-review", registry=REGISTRY, retry=ONCE)
def review(ctx: Context, payload: str) -> Any:
    return ctx.wait_for_callback("review", submit=lambda token: TOKENS.__setitem__(payload, token))


@task(id="iam-gated", registry=REGISTRY)
def gated(ctx: Context, payload: int) -> Any:
    return ctx.wait_for_event("go")


@task(id="iam-fan-out", registry=REGISTRY)
def fan_out(ctx: Context, payload: int) -> Any:
    ctx.trigger("iam-gated", -1)
    return ctx.map("iam-gated", list(range(payload)))


# In a queue with a size limit: the sweeper counts its waiting runs before it fires it.
@task(
    id="iam-hourly",
    registry=REGISTRY,
    cron="0 * * * *",
    queue=Queue("iam-reports", concurrency=2, max_size=10),
)
def hourly(ctx: Context, payload: Any) -> str:
    return ctx.step("report", lambda: "reported")


class MirroredQueue(MemoryWakeQueue):
    """Sends each wake-up to SQS (as deployed) and keeps it in memory on the virtual clock."""

    def __init__(self, clock: VirtualClock, sqs: SQSWakeQueue) -> None:
        super().__init__(clock)
        self._sqs = sqs

    @property
    def sqs(self) -> SQSWakeQueue:
        return self._sqs

    def send(self, message: WakeUp, delay: timedelta = timedelta(0)) -> None:
        self._sqs.send(message, delay)
        super().send(message, delay)

    def send_many(self, messages: Sequence[WakeUp], delay: timedelta = timedelta(0)) -> None:
        self._sqs.send_many(messages, delay)  # ten to a request, as deployed
        for message in messages:
            super().send(message, delay)

    def waiting(self) -> int:
        self._sqs.waiting()  # asked of SQS, as deployed (nothing consumes it there)
        return super().waiting()

    def depths(self) -> QueueDepths:
        return self._sqs.depths()  # GET /metrics asks SQS, as deployed


def http_event(method: str, path: str, body: Any, query: dict[str, str]) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query),
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": PSEUDO_PARAMETERS["AWS::AccountId"],
            "apiId": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "::1"},
            "requestId": "request",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 1893456000000,
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = json.dumps(body)
    return event


class Stack:
    """The stack's three functions on one set of moto resources and one virtual clock."""

    def __init__(self, recorder: CallRecorder, settings: Settings, queue_url: str) -> None:
        self.recorder = recorder
        self.clock = VirtualClock(START)
        self.queue = MirroredQueue(
            self.clock, SQSWakeQueue(queue_url, client=boto3_client("sqs", settings))
        )
        blobs = S3BlobStore(settings.bucket_name, client=boto3_client("s3", settings))
        self.store = DynamoDBRunStore.from_settings(settings)
        parts: dict[str, Any] = {
            "store": self.store,
            "queue": self.queue,
            "blobs": blobs,
            "clock": self.clock,
            "registry": REGISTRY,
            "codec": ValueCodec(blobs, inline_limit=INLINE_LIMIT),
            "logs": CloudWatchRunLogSource(
                settings.log_group, client=boto3.client("logs", region_name=settings.region)
            ),
        }
        self.runtime = Runtime.from_parts(**parts, settings=settings)
        # The next code version's worker, which routes runs pinned to v1 back to v1.
        self.next_version = Runtime.from_parts(
            **parts,
            settings=settings.model_copy(
                update={"code_version": "v2", "version_routes": {"v1": OLD_WORKER}}
            ),
        )

    def api(self, method: str, path: str, body: Any = None, **query: str) -> tuple[int, Any]:
        with self.recorder.acting_as("api"):
            response = handle(http_event(method, path, body, query), None, self.runtime.client)
        text = response.get("body") or "null"
        is_json = "json" in str(response.get("headers", {}).get("Content-Type", "json"))
        return response["statusCode"], json.loads(text) if is_json else text

    def trigger(self, task_id: str, payload: Any = None, **options: Any) -> str:
        status, body = self.api("POST", f"/tasks/{task_id}/runs", {"payload": payload, **options})
        assert status == 202, body
        return str(body["run_id"])

    def work(self, for_: timedelta = timedelta(0)) -> None:
        """Deliver each wake-up as it falls due, moving the clock up to `for_` ahead, and
        hand the waits longer than SQS's delay to the queue every `HAND_OFF_EVERY` of it
        (the sweeper's part that time alone needs: `durable.services.timers`)."""
        limit = self.clock.now() + for_
        next_hand_off = self.clock.now() + HAND_OFF_EVERY
        while True:
            message = self.queue.pop_due(self.clock.now())
            if message is not None:
                with self.recorder.acting_as("worker"):
                    self.runtime.process_wake_up(message.to_json(), lambda: timedelta(minutes=5))
                continue
            due = self.queue.next_due()
            if due is not None and due <= min(limit, next_hand_off):
                self.clock.set(due)
            elif next_hand_off <= limit:
                self.clock.set(next_hand_off)
                next_hand_off += HAND_OFF_EVERY
                with self.recorder.acting_as("sweeper"):
                    hand_off_timers(self.store, self.queue, self.clock)
            else:
                return

    def sweep(self) -> int:
        with self.recorder.acting_as("sweeper"):
            return self.runtime.sweep()

    def status(self, run_id: str) -> str:
        code, body = self.api("GET", f"/runs/{run_id}")
        return str(body["status"]) if code == 200 else str(code)


def resources(settings: Settings) -> tuple[str, dict[str, str]]:
    """Create the table, queues and bucket; the queue URL and physical -> logical names."""
    queue_url = ensure_resources(settings)
    dead_letters = queue_url + "-dlq"
    # What Lambda makes of the worker's output: its log group, named in the template.
    boto3.client("logs", region_name=settings.region).create_log_group(
        logGroupName=settings.log_group
    )
    names = {
        settings.table_name: "RunsTable",
        queue_url: "WakeQueue",
        dead_letters: "WakeDeadLetterQueue",
        f"{settings.queue_name}-dlq": "WakeDeadLetterQueue",  # GetQueueUrl names it (metrics)
        settings.bucket_name: "ValuesBucket",
        settings.log_group: "WorkerLogGroup",
    }
    return queue_url, names


def run_workload(stack: Stack) -> None:
    """Every path each function takes, in the order a deployment would see them."""
    TOKENS.clear()
    ATTEMPTS.clear()

    # -- the API starts runs; a v2 worker routes a v1 run back to v1 -----------------------
    tour_id = stack.trigger("iam-tour", {"key": "tour", "blob": BIG}, idempotency_key="tour-1")
    assert stack.trigger("iam-tour", {"key": "tour", "blob": BIG}, idempotency_key="tour-1") == (
        tour_id
    )
    stack.trigger("iam-square", 7, delay_seconds=30)
    doomed_id = stack.trigger("iam-doomed")
    slow_id = stack.trigger("iam-slow")
    rejected_id = stack.trigger("iam-review", "rejected")
    late_id = stack.trigger("iam-review", "late")
    fan_id = stack.trigger("iam-fan-out", 2)
    with stack.recorder.acting_as("worker"):
        routed = stack.next_version.process_wake_up(WakeUp(slow_id, WakeReason.START).to_json())
    assert routed == "routed"

    # -- a record the worker fails (an infrastructure error) is made visible again soon ------
    # (Lambda's poller receives it: that is not the worker's own call.)
    sqs = boto3_client("sqs", Settings())
    [message] = sqs.receive_message(
        QueueUrl=stack.queue.sqs.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"]
    )["Messages"]
    record = SQSRecord(
        {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {"ApproximateReceiveCount": "1"},
        }
    )
    failure = InfrastructureError("DynamoDB: throttled (for the test)")
    with stack.recorder.acting_as("worker"):
        processor = WakeUpBatchProcessor(lambda: stack.queue.sqs)
        processor.failure_handler(record, (InfrastructureError, failure, None))

    # -- the worker runs them up to their waits ----------------------------------------------
    stack.work(timedelta(hours=3))
    assert stack.status(doomed_id) == "FAILED"
    assert stack.status(slow_id) == "TIMED_OUT"
    assert stack.status(tour_id) == "WAITING"

    # -- the API delivers events and callbacks, cancels, lists and reads ----------------------
    status, body = stack.api("POST", f"/runs/{tour_id}/events/approval", {"data": {"by": "ops"}})
    assert status == 202, body
    status, body = stack.api("POST", f"/callbacks/{TOKENS['rejected']}", {"error": "rejected"})
    assert status == 202, body
    status, body = stack.api("POST", f"/runs/{fan_id}/cancel")
    assert status == 200, body
    status, page = stack.api("GET", "/runs", limit="2")
    assert status == 200 and page["next_cursor"], page
    assert stack.api("GET", "/runs", limit="2", cursor=page["next_cursor"])[0] == 200
    assert stack.api("GET", "/runs", task_id="iam-square", status="COMPLETED")[0] == 200
    assert stack.api("GET", "/runs", status="WAITING")[0] == 200
    assert stack.api("GET", f"/runs/{tour_id}/history")[0] == 200
    assert stack.api("GET", f"/runs/{tour_id}/logs")[0] == 200
    assert stack.api("GET", "/openapi.json")[0] == 200
    assert stack.api("GET", "/metrics")[0] == 200
    assert stack.api("GET", "/")[0] == 200
    stack.work(timedelta(minutes=2))
    status, body = stack.api("POST", f"/callbacks/{TOKENS['tour']}", {"data": {"ok": True}})
    assert status == 202, body
    stack.work(timedelta(hours=1))
    status, body = stack.api("GET", f"/runs/{tour_id}")
    assert body["status"] == "COMPLETED" and body["result"]["big"] == BIG, body
    assert stack.status(rejected_id) == "FAILED"
    assert stack.status(fan_id) == "CANCELLED"

    # -- bulk cancels: the worker lists a job's matches through each listing index ----------
    since = stack.clock.now().isoformat()
    bulk_ids = [stack.trigger("iam-gated", 100 + n) for n in range(3)]
    stack.work()
    for bulk_filter in (
        {"task_id": "iam-gated", "status": "WAITING"},  # by-status
        {"task_id": "iam-gated"},  # by-task
        {"created_after": since},  # all-runs
    ):
        status, job = stack.api("POST", "/bulk", {"action": "cancel", "filter": bulk_filter})
        assert status == 202, job
        stack.work()
        status, job = stack.api("GET", f"/bulk/{job['job_id']}")
        assert status == 200 and job["state"] == "completed", job
    assert all(stack.status(run_id) == "CANCELLED" for run_id in bulk_ids)

    # -- a late callback into a run the sweeper purges between the event's put and its
    # re-read: the API takes the event back (DeleteItem) and answers 404 ----------------------
    assert stack.api("POST", f"/runs/{late_id}/cancel")[0] == 200

    purged: list[int] = []

    def purge_late_run() -> None:
        with stack.recorder.acting_as("worker"):  # a purger runs in the worker
            purged.append(stack.store.delete_run(late_id))

    def puts_an_event(params: dict[str, Any]) -> bool:
        return str(params["Item"]["sk"]["S"]).startswith(_tables.INBOX_PREFIX)

    stack.recorder.after("dynamodb", "PutItem", puts_an_event, purge_late_run)
    status, body = stack.api("POST", f"/callbacks/{TOKENS['late']}", {"data": "too late"})
    assert purged, "the API never put the late event"
    assert status == 404 and body["error"]["code"] == "run_not_found", body

    # -- the sweeper: a lost wake-up, the cron task (twice: the second finds it fired), and
    # every finished run purged once its retention has passed ------------------------------
    lost_id = stack.trigger("iam-square", 8)
    while stack.queue.pop_due(stack.clock.now()) is not None:
        pass  # the wake-up is lost
    hour = stack.clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    stack.clock.set(hour)
    stack.work()
    stack.sweep()  # fires the cron task; its message waits, so the lost run waits too...
    stack.work()
    assert stack.sweep() >= 1  # ...until no message waits: then it is sent again
    stack.sweep()
    stack.work(timedelta(minutes=1))
    assert stack.status(lost_id) == "COMPLETED"

    # -- an invocation still running past its run's wake-up: the sweeper moves the wake-up
    # to the lease's expiry instead of re-sending the run, then re-sends it once the lease
    # has run out (the invocation died) ---------------------------------------------------
    running_id = stack.trigger("iam-square", 9)
    while stack.queue.pop_due(stack.clock.now()) is not None:
        pass  # taken by the invocation below
    lease_expires = stack.clock.now() + timedelta(minutes=15)
    with stack.recorder.acting_as("worker"):
        stack.store.acquire_lease(running_id, "still-running", stack.clock.now(), lease_expires)
    stack.clock.advance(timedelta(minutes=5))
    assert stack.sweep() == 0
    with stack.recorder.acting_as("worker"):
        running = stack.store.get_run(running_id)
    assert running is not None and running.wake_at == lease_expires, running
    stack.clock.advance(timedelta(minutes=12))
    assert stack.sweep() == 1
    stack.work(timedelta(minutes=1))
    assert stack.status(running_id) == "COMPLETED"
    status, page = stack.api("GET", "/runs", task_id="iam-hourly")
    assert [run["status"] for run in page["runs"]] == ["COMPLETED"], page
    stack.clock.advance(timedelta(days=3, minutes=30))  # no cron instant falls in the lookback
    stack.sweep()  # sends the expiry shards' purge messages...
    stack.work()  # ...and the workers purge them
    assert stack.status(tour_id) == "404"
    assert stack.api("GET", "/runs")[1]["runs"] == []
