"""The run shapes of the capacity model, driven on moto in process, one access trace per run.

Shapes (tasks defined here, so that the figures do not move with the example tasks):
- `five-steps`: five steps in one invocation;
- `sleeps-and-retry`: a step, a 30 s sleep, a step that fails once and is retried through
  SQS (a step-level retry policy), a one-hour sleep (over SQS's 15-minute delay: the
  sweeper's ground), a last step;
- `map-100`: `ctx.map` over 100 items (default `max_concurrency`), each child one step.
  It stores 101 runs: figures per run count the children as runs.

The worker and client are the ones Lambda runs, on DynamoDB and S3 in moto and the
template's defaults: a 300 s lease (`WorkerTimeout`) and a 30-day retention
(`RunRetentionDays`), so every run also pays for its end in the `expiry` index and for its
purge, which is driven once the runs of a shape have expired: serially here
(`durable.services.sweeper.purge_expired`), with the requests per run a worker's purger makes
(`durable.services.purge`; its shard lease, two writes per page of 100 runs, is left out).

Wake-ups go to SQS (counted) and to a heap on the virtual clock (delivered from): a one-hour
sleep takes no time. Each message gets a modeled ready time: the modeled time its sender had
reached plus its delay, cut to `DELAY_CAP` (the simulation's window then holds whole runs;
steady-state rates do not depend on the delays). An invocation's modeled time runs from its
message's ready time: its measured compute (wall time less the time moto took to answer)
plus the assumed latency per AWS request.
"""

from __future__ import annotations

import heapq
import itertools
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from bench.capacity_meter import AwsMeter, Invocation, metering
from bench.capacity_model import RunTrace
from bench.dynamodb_items import TABLE, TableLayout

from durable import Context, RetryPolicy, TaskRegistry, task
from durable.clock import VirtualClock
from durable.records import WakeUp

RUN_OR_CHILD = re.compile(r"run_[0-9a-f]{32}(?:\.\d+)*")
DELAY_CAP = 1.0  # seconds: the longest sleep or backoff kept in the modeled time line
LEASE = timedelta(seconds=300)  # template.yaml: WorkerTimeout (DURABLE_LEASE_SECONDS)
RETENTION = timedelta(days=30)  # template.yaml: RunRetentionDays
MAP_ITEMS = 100

registry = TaskRegistry()
_failed_once: set[str] = set()


def add_one(value: int) -> int:
    return value + 1


def add_one_after_a_failure(key: str, value: int) -> int:
    """Fails the first time it is called for `key` (a transient error), then succeeds."""
    if key not in _failed_once:
        _failed_once.add(key)
        raise ConnectionError("simulated transient failure")
    return value + 1


@task(id="capacity-five-steps", registry=registry)
def five_steps(ctx: Context, payload: int) -> int:
    value = payload
    for i in range(5):
        value = ctx.step(f"step-{i}", add_one, value)
    return value


@task(id="capacity-sleeps-and-retry", registry=registry)
def sleeps_and_retry(ctx: Context, payload: int) -> int:
    value = ctx.step("first", add_one, payload)
    ctx.sleep("short-nap", timedelta(seconds=30))
    value = ctx.step(
        "flaky",
        add_one_after_a_failure,
        ctx.run.id,
        value,
        retry=RetryPolicy(max_attempts=3, min_delay=timedelta(seconds=1)),
    )
    ctx.sleep("long-nap", timedelta(hours=1))
    return int(ctx.step("last", add_one, value))


@task(id="capacity-map-child", registry=registry)
def map_child(ctx: Context, payload: int) -> int:
    return int(ctx.step("double", lambda: payload * 2))


@task(id="capacity-map", registry=registry)
def map_parent(ctx: Context, payload: int) -> int:
    return sum(ctx.map("capacity-map-child", list(range(payload))))


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    task_id: str
    payload: int
    runs: int  # top-level runs measured by default


SHAPES = (
    Shape("five-steps", "capacity-five-steps", 0, 40),
    Shape("sleeps-and-retry", "capacity-sleeps-and-retry", 0, 40),
    Shape(f"map-{MAP_ITEMS}", "capacity-map", MAP_ITEMS, 1),
)


class ModeledQueue:
    """Sends to SQS (counted by the meter) and delivers from a heap on the virtual clock."""

    def __init__(self, sqs: Any, clock: VirtualClock, meter: AwsMeter) -> None:
        self.sqs = sqs
        self.clock = clock
        self.meter = meter
        self._heap: list[tuple[Any, int, WakeUp, float]] = []
        self._order = itertools.count()

    @property
    def max_delay(self) -> timedelta:
        return self.sqs.max_delay  # type: ignore[no-any-return]

    def send(self, message: WakeUp, delay: timedelta = timedelta(0)) -> None:
        self.sqs.send(message, delay)
        self._push(message, delay)

    def send_many(self, messages: Sequence[WakeUp], delay: timedelta = timedelta(0)) -> None:
        self.sqs.send_many(messages, delay)
        for message in messages:
            self._push(message, delay)

    def waiting(self) -> int:
        self.sqs.waiting()  # the request the sweeper makes
        now = self.clock.now()
        return sum(1 for due, *_ in self._heap if due <= now)

    def _push(self, message: WakeUp, delay: timedelta) -> None:
        ready = self.meter.modeled_now() + min(delay.total_seconds(), DELAY_CAP)
        due = self.clock.now() + max(delay, timedelta(0))
        heapq.heappush(self._heap, (due, next(self._order), message, ready))

    def pop(self) -> tuple[Any, WakeUp, float] | None:
        if not self._heap:
            return None
        due, _, message, ready = heapq.heappop(self._heap)
        return due, message, ready


@dataclass
class Measurement:
    layout: TableLayout
    traces: dict[str, list[RunTrace]]  # shape name -> one trace per top-level run
    seconds: dict[str, float]  # shape name -> wall time its measurement took
    warnings: list[str]  # what did not go as a run of the shape should
    table_shards: int = 0  # the table's index shard count (0: it has none)


def measure(
    shapes: Sequence[Shape] = SHAPES, latency: float = 0.005, scale: float = 1.0
) -> Measurement:
    """Drive every shape on moto; `scale` multiplies the number of runs of each."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL"):
            del os.environ[name]  # never let a configured endpoint take these requests
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from durable.aws import boto3_client
    from durable.blobs.s3 import S3BlobStore
    from durable.client import Client
    from durable.ids import new_run_id
    from durable.queues.sqs import SQSWakeQueue
    from durable.resources import ensure_resources
    from durable.services.sweeper import SETTLE, purge_expired
    from durable.settings import Settings
    from durable.storage.dynamodb import DynamoDBRunStore
    from durable.values import ValueCodec
    from durable.worker import Worker, WorkerConfig

    traces: dict[str, list[RunTrace]] = {}
    seconds: dict[str, float] = {}
    warnings: list[str] = []
    with mock_aws():
        settings = Settings(endpoint_url=None)
        queue_url = ensure_resources(settings)
        description = boto3_client("dynamodb", settings).describe_table(
            TableName=settings.table_name
        )["Table"]
        layout = TableLayout.from_description(description)
        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.region]
        meter = AwsMeter(layout, settings.table_name, backend, latency)
        store = DynamoDBRunStore(settings.table_name, region=settings.region)
        codec = ValueCodec(S3BlobStore(settings.bucket_name, boto3_client("s3", settings)))
        sqs = SQSWakeQueue(queue_url, boto3_client("sqs", settings))
        for shape in shapes:
            started = time.perf_counter()
            clock = VirtualClock()
            queue = ModeledQueue(sqs, clock, meter)
            common: dict[str, Any] = {
                "store": store,
                "queue": queue,
                "codec": codec,
                "clock": clock,
                "registry": registry,
            }
            client = Client(**common, code_version="v1", retention=RETENTION)
            worker = Worker(
                **common,
                config=WorkerConfig(lease=LEASE, retention=RETENTION, code_version="v1"),
            )
            shape_traces: dict[str, RunTrace] = {}
            with metering(meter):
                for _ in range(max(1, round(shape.runs * scale))):
                    run_id = new_run_id(clock.now())
                    trace = shape_traces[run_id] = meter.traces[run_id] = RunTrace(runs=1)
                    meter.current, meter.base_time = run_id, 0.0
                    client.trigger(shape.task_id, shape.payload, run_id=run_id)
                    while (popped := queue.pop()) is not None:
                        due, message, ready = popped
                        clock.set(max(clock.now(), due))
                        meter.invocation = call = Invocation(ready, time.perf_counter())
                        worker.handle(message)
                        compute = time.perf_counter() - call.wall_start - call.aws_seconds
                        meter.invocation = None
                        trace.messages += 1
                        trace.compute_seconds += compute
                        trace.worker_seconds += compute + call.requests * latency
                    meter.current = None
                    info = client.get(run_id)
                    if info.status != "COMPLETED":
                        raise RuntimeError(f"{shape.name}: run ended {info.status}: {info.error}")
                for trace in shape_traces.values():
                    trace.runs = _runs_in(trace)
                purged = _purge(
                    meter, store, clock, shape_traces, RETENTION + SETTLE, purge_expired
                )
                expected = sum(trace.runs for trace in shape_traces.values())
                if purged != expected:
                    warnings.append(
                        f"{shape.name}: the sweeper purged {purged} of {expected} expired runs"
                    )
            traces[shape.name] = list(shape_traces.values())
            meter.traces.clear()
            seconds[shape.name] = time.perf_counter() - started
    return Measurement(layout, traces, seconds, warnings, getattr(store, "index_shards", 0))


def _runs_in(trace: RunTrace) -> int:
    """The run and its children: the distinct run ids in the table keys it wrote."""
    ids = {
        match.group(0)
        for access in trace.accesses
        if access.target == TABLE and (match := RUN_OR_CHILD.search(access.key))
    }
    return max(1, len(ids))


def _purge(
    meter: AwsMeter,
    store: Any,
    clock: VirtualClock,
    traces: dict[str, RunTrace],
    after: timedelta,
    purge_expired: Any,
) -> int:
    """Let the runs expire, purge them (the requests a purger makes for each run, serially),
    and charge each run its share.

    Returns how many runs were purged.
    """
    clock.set(clock.now() + after + timedelta(minutes=1))
    before = {run_id: len(trace.accesses) for run_id, trace in traces.items()}
    meter.current, meter.base_time = None, 0.0
    meter.unattributed = RunTrace(runs=0)
    meter.invocation = call = Invocation(0.0, time.perf_counter())
    purged = purge_expired(store, clock, limit=100_000)
    compute = time.perf_counter() - call.wall_start - call.aws_seconds
    meter.invocation = None
    seconds = compute + call.requests * meter.latency
    shared = meter.unattributed
    for run_id, trace in traces.items():
        end = max((a.at for a in trace.accesses[: before[run_id]]), default=0.0) + DELAY_CAP
        trace.accesses[before[run_id] :] = [
            replace(a, at=end) for a in trace.accesses[before[run_id] :]
        ]
        share = 1 / len(traces)
        trace.accesses.extend(
            replace(a, at=end, read_units=a.read_units * share, write_units=a.write_units * share)
            for a in shared.accesses
        )
        for operation, count in shared.requests.items():
            trace.requests[operation] += count * share  # type: ignore[assignment]
        trace.sweeper_seconds += seconds * share
    return int(purged)
