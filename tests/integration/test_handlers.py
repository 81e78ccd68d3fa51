"""The three Lambda handlers on moto: API → DynamoDB + SQS → worker → DynamoDB, and the sweeper.

The handlers build their runtime from the environment (`DURABLE_*`), exactly as in Lambda.
Wake-ups are received from the moto queue and handed to the worker handler as the SQS event
source mapping would: records it reports as failed stay on the queue, the others are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from durable import Context, DurableError, task
from durable.adapters import import_task_modules
from durable.aws import boto3_client
from durable.blobs.memory import MemoryBlobStore
from durable.bootstrap import (
    MALFORMED,
    Runtime,
    get_runtime,
    reset_runtime,
)
from durable.clock import SystemClock, VirtualClock
from durable.faults import Faults, injected_into_botocore
from durable.queues.memory import MemoryWakeQueue
from durable.queues.sqs import SQSWakeQueue
from durable.records import RunRecord, RunStatus
from durable.resources import ensure_resources
from durable.settings import Settings
from durable.storage.dynamodb import DynamoDBRunStore
from durable.storage.memory import MemoryRunStore
from durable.worker.redelivery import retry_delay
from handlers import api as api_handler
from handlers import sweeper as sweeper_handler
from handlers import worker as worker_handler

REGION = "us-east-1"
SRC = Path(__file__).resolve().parents[2] / "src"

# -- tasks (registered in the default registry; the runtime imports this module) ----------


@task(id="handlers-it-double")
def double(ctx: Context, payload: dict[str, int]) -> int:
    return ctx.step("double", lambda: payload["n"] * 2)


@task(id="handlers-it-approval")
def approval(ctx: Context, payload: None) -> Any:
    ctx.step("prepare", lambda: "ready")
    return ctx.wait_for_event("go")


@task(id="handlers-it-nap")
def nap(ctx: Context, payload: None) -> str:
    ctx.sleep("nap", timedelta(minutes=5))
    return "rested"


# -- fakes of what Lambda hands a function ---------------------------------------------------


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and the worker read from a Lambda context."""

    function_name: str = "durable-test"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:durable-test"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"
    log_group_name: str = "/aws/lambda/durable-test"
    log_stream_name: str = "2030/01/01/[$LATEST]0"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def lambda_context(remaining_ms: int = 60_000) -> LambdaContext:
    return cast(LambdaContext, FakeLambdaContext(remaining_ms=remaining_ms))


def http_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
            },
            "requestId": "request-1",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 1893456000000,
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    """One record of an SQS event, as the event source mapping delivers it."""
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1893456000000",
            "SenderId": "123456789012",
            "ApproximateFirstReceiveTimestamp": "1893456000000",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:hd-wakeups",
        "awsRegion": REGION,
    }


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto, the runtime's resources, and the environment a deployed function would have."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "DURABLE_TABLE_NAME": "hd-runs",
        "DURABLE_QUEUE_NAME": "hd-wakeups",
        "DURABLE_BUCKET_NAME": "hd-values",
        "DURABLE_TASK_MODULES": __name__,
        "DURABLE_SWEEP_GRACE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_S3",
        "DURABLE_QUEUE_URL",
        "DURABLE_ENDPOINT_URL",
        "DURABLE_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    reset_runtime()
    with mock_aws():
        yield ensure_resources(Settings())
    reset_runtime()


def call_api(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = api_handler.handler(http_event(method, path, body), lambda_context())
    reply: Any = json.loads(response["body"])
    return response["statusCode"], reply


def receive(queue_url: str) -> list[dict[str, Any]]:
    """Every message visible on the queue now (each becomes invisible for a while)."""
    sqs = boto3_client("sqs", Settings())
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        messages.extend(dict(message) for message in batch)
    return messages


def deliver(queue_url: str, remaining_ms: int = 60_000) -> dict[str, Any]:
    """One pass of the event source mapping: receive, invoke the worker, delete what succeeded."""
    messages = receive(queue_url)
    assert messages, "no wake-up on the queue"
    event = {"Records": [sqs_record(m["MessageId"], m["Body"]) for m in messages]}
    response: dict[str, Any] = worker_handler.handler(event, lambda_context(remaining_ms))
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    sqs = boto3_client("sqs", Settings())
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return response


def emitted_metrics(output: str) -> dict[str, Any]:
    """The metric values in the EMF lines Powertools printed."""
    values: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blob = json.loads(line)
            for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values[definition["Name"]] = blob[definition["Name"]]
    return values


# -- the whole flow through the handlers --------------------------------------------------


def test_trigger_worker_event_worker_completes(aws: str) -> None:
    status, body = call_api("POST", "/tasks/handlers-it-approval/runs", {"payload": None})
    assert (status, body["status"], body["created"]) == (202, "QUEUED", True)
    run_id = body["run_id"]

    assert deliver(aws) == {"batchItemFailures": []}
    status, run = call_api("GET", f"/runs/{run_id}")
    assert (status, run["status"], run["waiting_for"]) == (200, "WAITING", "go")

    status, accepted = call_api("POST", f"/runs/{run_id}/events/go", {"data": {"ok": True}})
    assert (status, accepted["accepted"]) == (202, True)
    assert deliver(aws) == {"batchItemFailures": []}

    status, run = call_api("GET", f"/runs/{run_id}")
    assert (run["status"], run["result"]) == ("COMPLETED", {"ok": True})
    _, history = call_api("GET", f"/runs/{run_id}/history")
    assert [entry["kind"] for entry in history["history"]] == [
        "step_completed",
        "wait_started",
        "event_received",
    ]
    assert receive(aws) == []


def test_an_invocation_short_of_time_hands_over_through_the_queue(aws: str) -> None:
    _, body = call_api("POST", "/tasks/handlers-it-double/runs", {"payload": {"n": 4}})
    run_id = body["run_id"]

    # Less time left than the worker's margin (10 s): it runs nothing and hands over.
    assert deliver(aws, remaining_ms=5_000) == {"batchItemFailures": []}
    _, run = call_api("GET", f"/runs/{run_id}")
    assert run["status"] == "QUEUED"
    [message] = receive(aws)
    assert json.loads(message["Body"])["reason"] == "continue"
    event = {"Records": [sqs_record(message["MessageId"], message["Body"])]}

    assert worker_handler.handler(event, lambda_context()) == {"batchItemFailures": []}
    _, run = call_api("GET", f"/runs/{run_id}")
    assert (run["status"], run["result"]) == ("COMPLETED", 8)


def test_a_batch_with_a_duplicate_and_malformed_records(
    aws: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    _, body = call_api("POST", "/tasks/handlers-it-double/runs", {"payload": {"n": 21}})
    run_id = body["run_id"]
    [message] = receive(aws)
    event = {
        "Records": [
            sqs_record("valid", message["Body"]),
            sqs_record("duplicate", message["Body"]),
            sqs_record("not-json", "this is not a wake-up"),
            sqs_record("no-run-id", json.dumps({"reason": "start"})),
        ]
    }
    capsys.readouterr()

    response = worker_handler.handler(event, lambda_context())

    # Malformed bodies are dropped (logged), never retried; the duplicate is harmless.
    assert response == {"batchItemFailures": []}
    _, run = call_api("GET", f"/runs/{run_id}")
    assert (run["status"], run["result"]) == ("COMPLETED", 42)
    _, history = call_api("GET", f"/runs/{run_id}/history")
    assert [entry["kind"] for entry in history["history"]] == ["step_completed"]
    dropped = [r for r in caplog.records if r.getMessage() == "dropped a malformed wake-up message"]
    assert [record.levelname for record in dropped] == ["ERROR", "ERROR"]
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["wakeup_executed"] == [1.0]
    assert metrics["wakeup_finished"] == [1.0]
    assert metrics["wakeup_malformed"] == [1.0, 1.0]


def test_a_record_that_hits_an_infrastructure_error_is_reported_failed(aws: str) -> None:
    _, body = call_api("POST", "/tasks/handlers-it-nap/runs", {})
    run_id = body["run_id"]
    [message] = receive(aws)
    # The nap's timer cannot be sent: SQS answers with an error for that record.
    boto3_client("sqs", Settings()).delete_queue(QueueUrl=aws)
    event = {
        "Records": [
            sqs_record("start", message["Body"]),
            sqs_record("garbage", "{"),
        ]
    }

    response = worker_handler.handler(event, lambda_context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "start"}]}
    # The run was stored as sleeping before the send failed: overdue, the sweeper re-sends it.
    _, run = call_api("GET", f"/runs/{run_id}")
    assert (run["status"], run["waiting_for"]) == ("WAITING", None)
    assert run["wake_at"] is not None
    with pytest.raises(BatchProcessingError):  # all failed: Lambda retries the whole batch
        worker_handler.handler(
            {"Records": [sqs_record("start", message["Body"])]}, lambda_context()
        )


def test_a_failed_record_comes_back_after_a_backoff_not_the_visibility_timeout(
    aws: str,
) -> None:
    _, body = call_api("POST", "/tasks/handlers-it-double/runs", {"payload": {"n": 2}})
    [message] = receive(aws)
    record = sqs_record(message["MessageId"], message["Body"])
    record["receiptHandle"] = message["ReceiptHandle"]
    record["attributes"]["ApproximateReceiveCount"] = "3"
    # DynamoDB throttles the lease beyond botocore's retries: the record fails.
    faults = Faults().throttle("dynamodb", 1.0, {"UpdateItem"}, times=1)

    with injected_into_botocore(faults):
        event = {"Records": [record, sqs_record("garbage", "{")]}  # not all failed
        response = worker_handler.handler(event, lambda_context())

    assert response == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    changed = [call for call in faults.log if call.operation == "ChangeMessageVisibility"]
    assert len(changed) == 1  # 40 s for a third receive, instead of 10x the worker timeout
    assert retry_delay(3) == timedelta(seconds=40)
    assert [retry_delay(n).total_seconds() for n in (1, 2, 8, 50)] == [10, 20, 900, 900]
    # the run itself is untouched: the next delivery runs it
    _, run = call_api("GET", f"/runs/{body['run_id']}")
    assert run["status"] == "QUEUED"


def test_the_sweeper_re_enqueues_a_run_whose_wake_up_was_lost(aws: str) -> None:
    _, body = call_api("POST", "/tasks/handlers-it-double/runs", {"payload": {"n": 5}})
    run_id = body["run_id"]
    [lost] = receive(aws)
    boto3_client("sqs", Settings()).delete_message(
        QueueUrl=aws, ReceiptHandle=lost["ReceiptHandle"]
    )

    result = sweeper_handler.handler({"source": "aws.events"}, lambda_context())

    assert result == {"runs_enqueued": 1}
    [message] = receive(aws)
    assert json.loads(message["Body"]) == {"run_id": run_id, "reason": "sweep", "token": None}
    event = {"Records": [sqs_record(message["MessageId"], message["Body"])]}
    assert worker_handler.handler(event, lambda_context()) == {"batchItemFailures": []}
    _, run = call_api("GET", f"/runs/{run_id}")
    assert (run["status"], run["result"]) == ("COMPLETED", 10)
    assert sweeper_handler.handler({}, lambda_context()) == {"runs_enqueued": 0}


def test_the_sweeper_and_the_workers_purge_expired_runs_through_the_handlers(aws: str) -> None:
    # given: finished runs past their retention, one not yet, and one still waiting
    store = DynamoDBRunStore.from_settings(Settings())
    now = SystemClock().now()
    expired = []
    for n in range(12):
        run_id = f"run_{n:032x}"
        store.create_run(
            RunRecord(run_id, "handlers-it-double", RunStatus.QUEUED, "null", now, now)
        )
        ends = now - timedelta(days=3) if n else now
        store.update_run(
            run_id,
            {
                "status": RunStatus.COMPLETED,
                "finished_at": ends,
                "expires_at": ends + timedelta(days=1),
            },
        )
        if n:
            expired.append(run_id)
    _, body = call_api("POST", "/tasks/handlers-it-approval/runs", {"payload": None})
    waiting = body["run_id"]
    assert deliver(aws) == {"batchItemFailures": []}

    # when: the sweeper runs, then the workers take its messages
    assert sweeper_handler.handler({}, lambda_context()) == {"runs_enqueued": 0}
    messages = receive(aws)
    bodies = [json.loads(message["Body"]) for message in messages]
    assert {body["reason"] for body in bodies} == {"purge"}
    shards = {store.shard_of(run_id) for run_id in expired}
    assert sorted(body["shard"] for body in bodies) == sorted(shards)
    event = {"Records": [sqs_record(m["MessageId"], m["Body"]) for m in messages]}
    assert worker_handler.handler(event, lambda_context()) == {"batchItemFailures": []}

    # then: the expired runs are gone; the other two are not
    assert all(store.get_run(run_id) is None for run_id in expired)
    assert store.get_run("run_" + "0" * 32) is not None
    assert call_api("GET", f"/runs/{waiting}")[1]["status"] == "WAITING"
    # a malformed purge message is dropped, never retried
    bad = json.dumps({"run_id": "PURGE#1", "reason": "purge", "shard": -1})
    event = {"Records": [sqs_record("bad-purge", bad)]}
    assert worker_handler.handler(event, lambda_context()) == {"batchItemFailures": []}


def test_api_errors_through_the_handler(aws: str) -> None:
    status, body = call_api("POST", "/tasks/no-such-task/runs", {"payload": 1})

    assert (status, body["error"]["code"]) == (404, "unknown_task")
    status, body = call_api("GET", "/runs")
    assert (status, body) == (200, {"runs": [], "next_cursor": None})


# -- bootstrap ---------------------------------------------------------------------------


def test_the_runtime_is_built_from_the_environment_once(aws: str) -> None:
    runtime = get_runtime()

    assert get_runtime() is runtime
    assert isinstance(runtime.store, DynamoDBRunStore)
    assert runtime.store.table_name == "hd-runs"
    assert isinstance(runtime.queue, SQSWakeQueue)
    assert runtime.queue.queue_url == aws  # resolved from DURABLE_QUEUE_NAME
    assert runtime.settings.task_module_list == [__name__]
    assert "handlers-it-double" in runtime.registry
    assert runtime.client.store is runtime.store and runtime.worker.store is runtime.store
    reset_runtime()
    assert get_runtime() is not runtime


def test_explicit_settings_and_queue_url(aws: str) -> None:
    settings = Settings(queue_url=aws, queue_name="not-looked-up", table_name="hd-runs")

    runtime = get_runtime(settings)

    assert runtime.settings is settings
    assert isinstance(runtime.queue, SQSWakeQueue) and runtime.queue.queue_url == aws
    assert get_runtime() is runtime
    assert get_runtime(Settings(queue_url=aws, table_name="other")) is not runtime


def test_a_missing_queue_is_a_clear_error(aws: str) -> None:
    with pytest.raises(DurableError, match="DURABLE_QUEUE_URL"):
        get_runtime(Settings(queue_name="no-such-queue"))


def test_an_unknown_task_module_fails_loudly() -> None:
    with pytest.raises(ModuleNotFoundError):
        import_task_modules(Settings(task_modules="tasks_that_do_not_exist_anywhere"))


def test_a_runtime_from_parts_drops_malformed_messages() -> None:
    clock = VirtualClock()
    runtime = Runtime.from_parts(
        store=MemoryRunStore(), queue=MemoryWakeQueue(clock), blobs=MemoryBlobStore(), clock=clock
    )

    assert runtime.process_wake_up("[]") == MALFORMED
    assert runtime.process_wake_up('{"run_id": "run_missing"}') == "unknown_run"
    assert runtime.sweep() == 0


def test_handlers_import_nothing_of_the_dev_tooling() -> None:
    """Cold start: the Lambda path must not pull in moto, the CLI or the test kit."""
    code = (
        "import sys, handlers.api, handlers.worker, handlers.sweeper\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('moto', 'pytest', 'flask')"
        " or m in ('durable.cli', 'durable.testing') or m.startswith('durable.local'))\n"
        "print(heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
