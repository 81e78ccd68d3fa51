"""Engine overhead per step, AWS requests per step, and the cost they imply.

Run:  .venv/bin/python bench/overhead.py        (or `make bench`)

(a) Engine overhead, in memory (memory store, memory queue, virtual clock): one invocation
    runs 1,000 fresh trivial steps; then the completed history is replayed by
    `durable.executor.execute_attempt` (no I/O), and once more through the worker
    (load the log, replay 1,000 steps, take an event, finish). Medians of several
    repetitions, compared with calling the same function 1,000 times directly.
(b) DynamoDB, SQS and S3 requests per step, counted on moto by wrapping botocore's
    `BaseClient._make_api_call` (PynamoDB and boto3 both go through it): a 100-step task,
    and a task with two sleeps (one over SQS's 15-minute delay cap) and a step that fails
    twice before it succeeds. Request units are estimated from the item sizes on the wire.
(c) The cost per million steps those counts imply at AWS list prices; the assumptions are
    printed with the figures.

Nothing here asserts: the targets are printed with PASS/FAIL beside the measured value.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import prices
from request_tally import Tally, counting_aws_requests

from durable import Context, RetryPolicy, TaskRegistry, task
from durable.clock import VirtualClock
from durable.engine.outcomes import Completed
from durable.executor import execute_attempt
from durable.queues.memory import MemoryWakeQueue
from durable.records import Checkpoint, InboxEvent, WakeUp
from durable.testing import TestEnvironment

COMMAND = ".venv/bin/python bench/overhead.py   (or: make bench)"
STEPS = 1_000
REPETITIONS = 7
MOTO_STEPS = 100

# Targets (printed, never asserted).
TARGET_FRESH_US = 100.0
TARGET_REPLAY_US = 20.0
TARGET_WRITES_PER_STEP = 1.1

# AWS list prices (us-east-1, on-demand): one table for every benchmark, in bench/prices.py.
PRICE_WRU = prices.DYNAMODB_WRITE_REQUEST_UNIT.usd
PRICE_RRU = prices.DYNAMODB_READ_REQUEST_UNIT.usd
PRICE_SQS = prices.SQS_STANDARD_REQUEST.usd
PRICE_LAMBDA_REQUEST = prices.LAMBDA_REQUEST.usd
PRICE_LAMBDA_GB_SECOND = prices.LAMBDA_GB_SECOND.usd
LAMBDA_MEMORY_GB = 0.5  # 512 MB
AWS_REQUEST_SECONDS = 0.005  # billed Lambda time per DynamoDB/SQS/S3 round trip, in region
# Lambda's SQS event source mapping receives and deletes each message: two more requests
# per message when it delivers them one at a time (batches of up to 10 make it fewer).
ESM_REQUESTS_PER_MESSAGE = 2

T = TypeVar("T")

registry = TaskRegistry()


def trivial(i: int) -> int:
    return i + 1


@task(id="bench-steps", registry=registry)
def many_steps(ctx: Context, payload: dict[str, int]) -> int:
    total = 0
    for i in range(payload["steps"]):
        total = ctx.step("add", trivial, i)
    return total


@task(id="bench-steps-then-wait", registry=registry)
def many_steps_then_wait(ctx: Context, payload: dict[str, int]) -> int:
    total = many_steps.fn(ctx, payload)
    ctx.wait_for_event("go")
    return int(total)


FLAKY_FAILURES = {"left": 0}


def flaky(value: int) -> int:
    """Fails while `FLAKY_FAILURES["left"]` lasts (the bench runs one flaky run at a time)."""
    if FLAKY_FAILURES["left"] > 0:
        FLAKY_FAILURES["left"] -= 1
        raise ConnectionError("simulated transient failure")
    return value + 1


@task(id="bench-mixed", registry=registry)
def mixed(ctx: Context, payload: dict[str, int]) -> int:
    """10 steps, a 30 s sleep, a step that fails twice then succeeds, a 1 h sleep."""
    total = 0
    for i in range(10):
        total = ctx.step("add", trivial, total)
        if i == 2:
            ctx.sleep("short-nap", timedelta(seconds=30))
        if i == 5:
            total = ctx.step("flaky", flaky, total, retry=RetryPolicy(max_attempts=3))
        if i == 7:
            ctx.sleep("long-nap", timedelta(hours=1))
    return total


MIXED_STEPS = 11  # ten "add" steps and one "flaky"


# -- (a) engine overhead in memory ---------------------------------------------------------


class _ReadOnlyEnvironment:
    """An attempt environment for replaying a finished log: any write is a bug."""

    def append(self, checkpoint: Checkpoint) -> None:
        raise AssertionError(f"a pure replay tried to write {checkpoint}")

    def cancelled(self) -> bool:
        return False

    def inbox(self) -> list[InboxEvent]:
        return []


def _timed(action: Callable[[], T]) -> tuple[T, float]:
    """The action's result and how many seconds it took."""
    gc.collect()
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def _direct_calls() -> None:
    for i in range(STEPS):
        trivial(i)


def _fresh_then_pure_replay() -> tuple[float, float]:
    """Seconds for one invocation of 1,000 fresh steps, then for replaying its log."""
    with TestEnvironment(registry=registry) as env:
        run = env.trigger("bench-steps", {"steps": STEPS})
        _, fresh = _timed(env.run_until_idle)
        record = env.store.get_run(run.run_id)
        history = env.store.load_history(run.run_id)
        assert record is not None and record.status == "COMPLETED"
        assert len(history) == STEPS
        definition = registry.get("bench-steps")

        def replay() -> object:
            return execute_attempt(
                definition,
                record,
                history,
                environment=_ReadOnlyEnvironment(),
                clock=env.clock,
                codec=env.codec,
            )

        outcome, replayed = _timed(replay)
        assert isinstance(outcome, Completed), outcome
    return fresh, replayed


def _replay_through_the_worker() -> float:
    """Seconds for the invocation that loads 1,000 steps, replays them and finishes."""
    with TestEnvironment(registry=registry) as env:
        run = env.trigger("bench-steps-then-wait", {"steps": STEPS})
        env.run_until_idle()
        env.send_event(run.run_id, "go")
        _, seconds = _timed(env.run_until_idle)
        assert env.get(run.run_id).status == "COMPLETED"
    return seconds


@dataclass
class EngineFigures:
    baseline_us: float
    fresh_us: float
    replay_us: float
    worker_replay_us: float


def measure_engine() -> EngineFigures:
    baseline, fresh, replay, worker_replay = [], [], [], []
    for _ in range(REPETITIONS):
        baseline.append(_timed(_direct_calls)[1])
        fresh_seconds, replay_seconds = _fresh_then_pure_replay()
        fresh.append(fresh_seconds)
        replay.append(replay_seconds)
        worker_replay.append(_replay_through_the_worker())

    def median_us_per_step(values: list[float]) -> float:
        return statistics.median(values) / STEPS * 1e6

    return EngineFigures(
        baseline_us=median_us_per_step(baseline),
        fresh_us=median_us_per_step(fresh),
        replay_us=median_us_per_step(replay),
        worker_replay_us=median_us_per_step(worker_replay),
    )


# -- (b) AWS requests on moto -------------------------------------------------------------


class TeeQueue:
    """Sends every wake-up to SQS (to count the real requests) and to a memory queue.

    The memory queue, on the virtual clock, is what the bench delivers from: SQS delays
    are real seconds, and a one-hour sleep should not take an hour here.
    """

    def __init__(self, sqs: Any, memory: MemoryWakeQueue) -> None:
        self.sqs = sqs
        self.memory = memory

    @property
    def max_delay(self) -> timedelta:
        return min(self.sqs.max_delay, self.memory.max_delay)  # type: ignore[no-any-return]

    def send(self, message: WakeUp, delay: timedelta = timedelta(0)) -> None:
        self.sqs.send(message, delay)
        self.memory.send(message, delay)


@dataclass
class AwsFigures:
    name: str
    steps: int
    invocations: int
    tally: Tally

    def per_step(self, count: float) -> float:
        return count / self.steps


def measure_aws() -> list[AwsFigures]:
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

    from durable.aws import boto3_client
    from durable.blobs.s3 import S3BlobStore
    from durable.client import Client
    from durable.queues.sqs import SQSWakeQueue
    from durable.resources import ensure_resources
    from durable.settings import Settings
    from durable.storage.dynamodb import DynamoDBRunStore
    from durable.values import ValueCodec
    from durable.worker import Worker

    figures = []
    scenarios: list[tuple[str, str, dict[str, int], int]] = [
        (f"{MOTO_STEPS}-step task", "bench-steps", {"steps": MOTO_STEPS}, MOTO_STEPS),
        ("sleeps + step retries", "bench-mixed", {}, MIXED_STEPS),
    ]
    with mock_aws():
        settings = Settings(endpoint_url=None)
        queue_url = ensure_resources(settings)
        for name, task_id, payload, steps in scenarios:
            clock = VirtualClock()
            memory = MemoryWakeQueue(clock)
            queue = TeeQueue(SQSWakeQueue(queue_url, boto3_client("sqs", settings)), memory)
            store = DynamoDBRunStore(settings.table_name, region=settings.region)
            codec = ValueCodec(S3BlobStore(settings.bucket_name, boto3_client("s3", settings)))
            client = Client(store=store, queue=queue, codec=codec, clock=clock, registry=registry)
            worker = Worker(store=store, queue=queue, codec=codec, clock=clock, registry=registry)
            FLAKY_FAILURES["left"] = 2
            invocations = 0
            with counting_aws_requests() as tally:
                run = client.trigger(task_id, payload)
                # Deliver every wake-up at its time, skipping the clock between them.
                while (due := memory.next_due()) is not None:
                    clock.set(due)
                    while (message := memory.pop_due(clock.now())) is not None:
                        worker.handle(message)
                        invocations += 1
                tally.active = False
                info = client.get(run.run_id)
            if info.status != "COMPLETED":
                raise RuntimeError(f"{name}: the run ended {info.status}: {info.error}")
            figures.append(AwsFigures(name, steps, invocations, tally))
    return figures


# -- (c) cost and the report ---------------------------------------------------------------


@dataclass
class Cost:
    dynamodb: float
    sqs: float
    lambda_requests: float
    lambda_duration: float

    @property
    def total(self) -> float:
        return self.dynamodb + self.sqs + self.lambda_requests + self.lambda_duration


def cost_per_million_steps(figures: AwsFigures, engine_seconds_per_step: float) -> Cost:
    tally = figures.tally
    million = 1e6 / figures.steps
    sqs_messages = tally.calls["sqs.SendMessage"]
    sqs_requests = tally.total("sqs") + ESM_REQUESTS_PER_MESSAGE * sqs_messages
    aws_requests = tally.total("dynamodb") + tally.total("sqs") + tally.total("s3")
    billed_seconds = aws_requests * AWS_REQUEST_SECONDS + figures.steps * engine_seconds_per_step
    return Cost(
        dynamodb=million * (tally.wru * PRICE_WRU + tally.rru * PRICE_RRU),
        sqs=million * sqs_requests * PRICE_SQS,
        lambda_requests=million * figures.invocations * PRICE_LAMBDA_REQUEST,
        lambda_duration=million * billed_seconds * LAMBDA_MEMORY_GB * PRICE_LAMBDA_GB_SECOND,
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    import moto

    print("durable: engine overhead and AWS requests per step")
    print(f"reproduce: {COMMAND}")
    print(
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"moto {moto.__version__}"
    )
    print()

    engine = measure_engine()
    fresh_overhead = engine.fresh_us - engine.baseline_us
    replay_overhead = engine.replay_us - engine.baseline_us
    print(f"(a) engine overhead, memory backend, {STEPS:,} trivial steps, median of {REPETITIONS}")
    print(f"    direct call of the step function        {engine.baseline_us:9.3f} us per call")
    print(
        f"    fresh step (one invocation, 1,000 steps) {engine.fresh_us:9.2f} us per step"
        f"   ({engine.fresh_us / engine.baseline_us:,.0f}x a direct call)"
    )
    print(
        f"    replayed step (execute_attempt, no I/O)  {engine.replay_us:9.2f} us per step"
        f"   ({engine.replay_us / engine.baseline_us:,.0f}x a direct call)"
    )
    print(
        f"    replayed step through the worker          {engine.worker_replay_us:9.2f} us per step"
        "   (load log + replay + event + finish)"
    )
    print(
        f"    target: overhead per fresh step    <= {TARGET_FRESH_US:5.0f} us: "
        f"{fresh_overhead:8.2f} us  {verdict(fresh_overhead <= TARGET_FRESH_US)}"
    )
    print(
        f"    target: overhead per replayed step <= {TARGET_REPLAY_US:5.0f} us: "
        f"{replay_overhead:8.2f} us  {verdict(replay_overhead <= TARGET_REPLAY_US)}"
    )
    print()

    aws = measure_aws()
    print("(b) AWS requests on moto, counted at botocore (trigger to completion, all included)")
    for figures in aws:
        tally = figures.tally
        print(
            f"    {figures.name}: {figures.steps} steps, {figures.invocations} worker "
            "invocations (SQS messages handled)"
        )
        for name, count in sorted(tally.calls.items()):
            print(f"        {name:<28} {count:5d}   {figures.per_step(count):6.3f} per step")
        print(
            f"        DynamoDB writes {figures.per_step(tally.writes()):.3f} per step, "
            f"reads {figures.per_step(tally.reads()):.3f} per step; "
            f"estimated units: {figures.per_step(tally.wru):.3f} WRU, "
            f"{figures.per_step(tally.rru):.3f} RRU per step"
        )
        print(f"        SQS sends {figures.per_step(tally.calls['sqs.SendMessage']):.3f} per step")
    hundred = aws[0]
    writes_per_step = hundred.per_step(hundred.tally.writes())
    print(
        f"    target: DynamoDB writes per step ({hundred.name}) <= {TARGET_WRITES_PER_STEP}: "
        f"{writes_per_step:.3f}  {verdict(writes_per_step <= TARGET_WRITES_PER_STEP)}"
    )
    print()

    print("(c) cost per million steps, AWS list prices, us-east-1")
    gb_second = f"{prices.LAMBDA_GB_SECOND.usd:.10f}".rstrip("0")
    print(
        f"    prices: DynamoDB on-demand {prices.per_million(prices.DYNAMODB_WRITE_REQUEST_UNIT)}"
        f" WRU, {prices.per_million(prices.DYNAMODB_READ_REQUEST_UNIT)} RRU; SQS standard "
        f"{prices.per_million(prices.SQS_STANDARD_REQUEST)} requests; Lambda "
        f"{prices.per_million(prices.LAMBDA_REQUEST)} requests + ${gb_second}/GB-s "
        "(dates and sources: bench/prices.py)"
    )
    print(
        f"    assumed: Lambda {LAMBDA_MEMORY_GB * 1024:.0f} MB; billed time = "
        f"{AWS_REQUEST_SECONDS * 1000:.0f} ms per AWS request + the measured engine time per "
        "fresh step; the steps' own work is not included"
    )
    print(
        f"    assumed: the SQS event source mapping adds {ESM_REQUESTS_PER_MESSAGE} requests "
        "(receive + delete) per message, unbatched; its idle polling (a fixed monthly cost), "
        "API Gateway and the trigger's API Lambda are not included"
    )
    print("    request units are estimated from item sizes (1 WRU per KB written, 1 RRU per 4 KB")
    print("    read strongly consistent, half eventually consistent, transactions count double)")
    engine_seconds = engine.fresh_us / 1e6
    columns = ("DynamoDB", "SQS", "Lambda req", "Lambda GB-s", "total")
    print(f"    {'':<24} " + " ".join(f"{name:>11}" for name in columns))
    for figures in aws:
        cost = cost_per_million_steps(figures, engine_seconds)
        print(
            f"    {figures.name:<24} "
            + " ".join(
                f"{'$' + format(value, ',.2f'):>11}"
                for value in (
                    cost.dynamodb,
                    cost.sqs,
                    cost.lambda_requests,
                    cost.lambda_duration,
                    cost.total,
                )
            )
        )
    print()
    print(f"reproduce: {COMMAND}")


if __name__ == "__main__":
    main()
