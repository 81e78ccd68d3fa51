"""The worker's Lambda handler on memory adapters and a virtual clock, with its EMF output
captured: what the monitoring tests (unit, and the template's alarms in tests/sam) read.

`WorkerLambda` plays the SQS event source mapping: it pops the wake-ups due on the memory
queue, hands them to `handlers.worker.handler` in batches of up to 10 records, and keeps
every EMF line Powertools printed (`emitted`). `SCENARIOS` triggers runs that complete,
retry a step, exhaust their attempts, diverge from their log (held) and time out.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from aws_lambda_powertools.utilities.typing import LambdaContext

from durable import Context, RetryPolicy, TaskRegistry, task
from durable.blobs.memory import MemoryBlobStore
from durable.bootstrap import Runtime, reset_runtime, set_runtime
from durable.clock import VirtualClock
from durable.queues.memory import MemoryWakeQueue
from durable.records import WakeUp
from durable.storage.memory import MemoryRunStore
from handlers import sweeper as sweeper_handler
from handlers import worker as worker_handler


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and the worker read from a Lambda context."""

    function_name: str = "durable-worker"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:durable-worker"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000002"
    log_group_name: str = "/aws/lambda/durable-worker"
    log_stream_name: str = "2030/01/01/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass(frozen=True)
class EmfLine:
    """One EMF document: its namespace, dimension sets, dimension values and metrics."""

    namespace: str
    dimension_sets: list[list[str]]
    dimensions: dict[str, str]
    metrics: dict[str, list[float]]  # name -> values
    units: dict[str, str]
    raw: dict[str, Any]

    @classmethod
    def parse(cls, line: str) -> EmfLine:
        blob = json.loads(line)
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        names = {d["Name"]: d["Unit"] for d in directive["Metrics"]}
        sets = [list(names_) for names_ in directive["Dimensions"]]
        values = {name: blob[name] for name in names}
        return cls(
            namespace=directive["Namespace"],
            dimension_sets=sets,
            dimensions={name: blob[name] for dims in sets for name in dims},
            metrics={k: v if isinstance(v, list) else [v] for k, v in values.items()},
            units=names,
            raw=blob,
        )


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1893456000000"},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:durable-wakeups",
        "awsRegion": "us-east-1",
    }


@dataclass
class WorkerLambda:
    """The worker handler over a memory runtime; `emitted` holds every EMF line printed."""

    registry: TaskRegistry
    clock: VirtualClock = field(default_factory=VirtualClock)
    emitted: list[EmfLine] = field(default_factory=list)
    invocations: int = 0

    def __post_init__(self) -> None:
        self.queue = MemoryWakeQueue(self.clock)
        self.runtime = Runtime.from_parts(
            store=MemoryRunStore(),
            queue=self.queue,
            blobs=MemoryBlobStore(),
            clock=self.clock,
            registry=self.registry,
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[WorkerLambda]:
        set_runtime(self.runtime)
        try:
            yield self
        finally:
            reset_runtime()

    def invoke(self, messages: list[WakeUp]) -> dict[str, Any]:
        """One invocation of the handler with these records; its EMF lines are kept."""
        event = {"Records": [sqs_record(f"m{i}", m.to_json()) for i, m in enumerate(messages)]}
        self.invocations += 1
        return self._captured(worker_handler.handler, event)

    def sweep(self) -> dict[str, Any]:
        """One invocation of the sweeper's handler (scheduled by EventBridge)."""
        return self._captured(sweeper_handler.handler, {"source": "aws.events"})

    def _captured(
        self, handler: Callable[[dict[str, Any], LambdaContext], Any], event: dict[str, Any]
    ) -> dict[str, Any]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            response: dict[str, Any] = handler(event, cast(LambdaContext, FakeLambdaContext()))
        for line in out.getvalue().splitlines():
            if line.startswith("{") and '"_aws"' in line:
                self.emitted.append(EmfLine.parse(line))
        return response

    def run_until_idle(self) -> None:
        while True:
            batch: list[WakeUp] = []
            while len(batch) < 10 and (message := self.queue.pop_due(self.clock.now())):
                batch.append(message)
            if not batch:
                return
            assert self.invoke(batch) == {"batchItemFailures": []}

    def run_until_ended(self, run_id: str, limit: int = 50) -> str:
        """Skip from wake-up to wake-up until the run ends (its status) or is held for a
        code fix ("HELD")."""
        for _ in range(limit):
            self.run_until_idle()
            info = self.runtime.client.get(run_id)
            status = info.status
            if status.is_terminal:
                return str(status)
            if info.held is not None:
                return "HELD"
            due = self.queue.next_due()
            assert due is not None, f"run {run_id} waits for nothing ({status})"
            self.clock.set(due)
        raise AssertionError(f"run {run_id} still going after {limit} wake-ups")

    def trigger(self, task_id: str, payload: Any = None) -> str:
        return self.runtime.client.trigger(task_id, payload).run_id

    def task_lines(self, task_id: str) -> list[EmfLine]:
        """The per-task lines (the run invocations) of `task_id`."""
        return [line for line in self.emitted if line.dimensions.get("task_id") == task_id]

    def totals(self, task_id: str) -> dict[str, float]:
        """Each metric of `task_id`'s lines, summed."""
        sums: dict[str, float] = {}
        for line in self.task_lines(task_id):
            for name, values in line.metrics.items():
                sums[name] = sums.get(name, 0) + sum(values)
        return sums


def scenario_tasks(registry: TaskRegistry) -> None:
    """The tasks the scenarios run, registered in `registry`."""
    flaky: dict[str, int] = {}

    @task(id="mon-complete", registry=registry)
    def complete(ctx: Context, payload: None) -> int:
        a = ctx.step("one", lambda: 1)
        ctx.sleep("pause", timedelta(minutes=1))
        return a + ctx.step("two", lambda: 2)

    def flaky_charge(run_id: str) -> str:
        flaky[run_id] = flaky.get(run_id, 0) + 1
        if flaky[run_id] == 1:
            raise ConnectionError("card processor down")
        return "charged"

    @task(id="mon-step-retry", registry=registry)
    def step_retry(ctx: Context, payload: None) -> str:
        retry = RetryPolicy(max_attempts=3, min_delay=timedelta(seconds=5))
        return ctx.step("charge", flaky_charge, ctx.run.id, retry=retry)

    @task(id="mon-exhausted", registry=registry, retry=RetryPolicy(max_attempts=2))
    def exhausted(ctx: Context, payload: None) -> None:
        ctx.step("prepare", lambda: "ok")
        raise ValueError("always broken")

    names = iter(["original", "renamed"])

    @task(id="mon-diverges", registry=registry)
    def diverges(ctx: Context, payload: None) -> None:
        ctx.step(next(names, "renamed"), lambda: None)
        ctx.sleep("pause", timedelta(seconds=5))

    @task(id="mon-times-out", registry=registry, timeout=timedelta(minutes=10))
    def times_out(ctx: Context, payload: None) -> None:
        ctx.step("begin", lambda: None)
        ctx.sleep("too-long", timedelta(hours=1))


SCENARIOS: dict[str, str] = {
    "mon-complete": "COMPLETED",
    "mon-step-retry": "COMPLETED",
    "mon-exhausted": "FAILED",
    "mon-diverges": "HELD",  # held for a code fix, never failed
    "mon-times-out": "TIMED_OUT",
}


def run_scenarios(
    make: Callable[[TaskRegistry], WorkerLambda] = WorkerLambda,
) -> tuple[WorkerLambda, dict[str, str]]:
    """Every scenario's run to its end through the handler; the Lambda and the run ids."""
    registry = TaskRegistry()
    scenario_tasks(registry)
    worker = make(registry)
    runs: dict[str, str] = {}
    with worker.installed():
        for task_id, expected in SCENARIOS.items():
            runs[task_id] = worker.trigger(task_id)
            status = worker.run_until_ended(runs[task_id])
            assert status == expected, (task_id, status)
        worker.sweep()
    return worker, runs
