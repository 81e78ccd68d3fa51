"""What a long wait costs: a 40-day sleep, a start delayed 40 days, a 2-day retry backoff.

Run:  .venv/bin/python bench/long_sleep.py [--measure-before]

Each scenario runs once on moto, in process (DynamoDB on a table of 64 index shards, as
the template makes it, and SQS), on a virtual clock: every wake-up is sent to SQS (to
count the requests) and delivered from a memory queue at its virtual time. The sweeper
runs as in AWS, but skipping ahead: once a day, then every minute from 20 minutes before
the wake-up on (every sweep in between would find nothing more to do). AWS requests are
counted at botocore (`request_tally`); the sweeps' queries (one per index shard, whatever
the number of runs) are counted apart: they are a cost per sweep, not per run.

"before" is the behaviour this replaces (a timer hop every 15 minutes, each an invocation
that reads the run and sends the next hop): computed as one hop per 15 minutes, and with
`--measure-before` measured for the 40-day sleep with a queue that never parks and
clamps each delay to SQS's 15 minutes (3,841 invocations on moto: 8 minutes here).

Then the cost per day of 100,000 runs each waiting a month, at the list prices of
`bench/prices.py`. Nothing here asserts.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import prices
from request_tally import Tally, counting_aws_requests

from durable import Context, RetryPolicy, TaskRegistry, task
from durable.clock import VirtualClock
from durable.queues.base import SQS_MAX_DELAY
from durable.queues.memory import MemoryWakeQueue
from durable.records import WakeUp

COMMAND = ".venv/bin/python bench/long_sleep.py"
DAY = timedelta(days=1)
LONG = timedelta(days=40)
BACKOFF = timedelta(days=2)
HOP = SQS_MAX_DELAY
# Lambda's SQS event source mapping receives and deletes each message it delivers.
ESM_REQUESTS_PER_MESSAGE = 2
RUNS = 100_000
MONTH = timedelta(days=30)


class TeeQueue:
    """Sends to SQS (counted) and to a memory queue on the virtual clock (delivered from).

    With `hops`, it stands for the old worker: it never parks (its longest delay is ten
    years) and sends every delay as at most one 15-minute hop.
    """

    def __init__(self, sqs: Any, memory: MemoryWakeQueue, hops: bool = False) -> None:
        self.sqs = sqs
        self.memory = memory
        self.hops = hops
        self.messages = 0

    @property
    def max_delay(self) -> timedelta:
        return timedelta(days=3650) if self.hops else SQS_MAX_DELAY

    def send(self, message: WakeUp, delay: timedelta = timedelta(0)) -> None:
        self.send_timed([(message, delay)])

    def send_timed(self, entries: Sequence[tuple[WakeUp, timedelta]]) -> None:
        entries = [(message, min(delay, HOP)) for message, delay in entries]
        if len(entries) == 1:
            self.sqs.send(*entries[0])
        else:
            self.sqs.send_timed(entries)
        for message, delay in entries:
            self.memory.send(message, delay)
        self.messages += len(entries)


@dataclass
class Figures:
    name: str
    invocations: int
    messages: int
    run: Counter[str]  # the run's own requests (its hand-off's included), by "service.Operation"
    sweeps: int
    sweep_requests: Counter[str]  # the sweeps' queries, a cost per sweep
    seconds: float

    def sqs_requests(self) -> int:
        sqs = sum(n for op, n in self.run.items() if op.startswith("sqs."))
        return sqs + ESM_REQUESTS_PER_MESSAGE * self.messages

    def dynamodb(self, writes: bool) -> int:
        ops = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")
        return sum(
            n
            for op, n in self.run.items()
            if op.startswith("dynamodb.") and (op.split(".")[1] in ops) == writes
        )


def registry() -> TaskRegistry:
    tasks = TaskRegistry()
    failures = {"left": 1}

    @task(id="sleep-40-days", registry=tasks)
    def sleep_40_days(ctx: Context, payload: None) -> str:
        ctx.sleep("renewal", LONG)
        return ctx.step("renew", lambda: "renewed")

    @task(id="start-in-40-days", registry=tasks)
    def start_later(ctx: Context, payload: None) -> str:
        return ctx.step("renew", lambda: "renewed")

    def flaky() -> str:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("the provider is down")
        return "ok"

    policy = RetryPolicy(max_attempts=2, min_delay=BACKOFF, max_delay=BACKOFF, jitter=0)

    @task(id="retry-in-2-days", registry=tasks)
    def retry_later(ctx: Context, payload: None) -> str:
        return ctx.step("call", flaky, retry=policy)

    return tasks


def measure(
    name: str, task_id: str, delay: timedelta | None, length: timedelta, hops: bool
) -> Figures:
    from moto import mock_aws

    from durable.aws import boto3_client
    from durable.blobs.s3 import S3BlobStore
    from durable.client import Client
    from durable.queues.sqs import SQSWakeQueue
    from durable.resources import ensure_resources
    from durable.services.sweeper import sweep
    from durable.settings import Settings
    from durable.storage.dynamodb import DynamoDBRunStore
    from durable.values import ValueCodec
    from durable.worker import Worker

    tasks = registry()
    began = time.perf_counter()
    with mock_aws():
        settings = Settings(endpoint_url=None)
        queue_url = ensure_resources(settings)
        clock = VirtualClock()
        memory = MemoryWakeQueue(clock)
        queue = TeeQueue(SQSWakeQueue(queue_url, boto3_client("sqs", settings)), memory, hops)
        store = DynamoDBRunStore(settings.table_name, region=settings.region)
        store.index_shards  # noqa: B018 - the config read, before counting
        codec = ValueCodec(S3BlobStore(settings.bucket_name, boto3_client("s3", settings)))
        client = Client(store=store, queue=queue, codec=codec, clock=clock, registry=tasks)
        worker = Worker(store=store, queue=queue, codec=codec, clock=clock, registry=tasks)
        end = clock.now() + length
        close = end - timedelta(minutes=20)
        invocations = sweeps = 0
        swept: Counter[str] = Counter()
        with counting_aws_requests() as tally:
            run = client.trigger(task_id, delay=delay)
            next_sweep = clock.now()
            while True:
                while (message := memory.pop_due(clock.now())) is not None:
                    worker.handle(message)
                    invocations += 1
                if _finished(tally, client, run.run_id):
                    break
                if clock.now() >= next_sweep:
                    swept += _counted(tally, lambda: sweep(store, queue, clock))
                    sweeps += 1
                    now = clock.now()
                    next_sweep = (
                        min(now + DAY, close) if now < close else now + timedelta(minutes=1)
                    )
                due = memory.next_due()
                clock.set(next_sweep if due is None else min(due, next_sweep))
        info = client.get(run.run_id)
        if info.status != "COMPLETED":
            raise RuntimeError(f"{name}: the run ended {info.status}: {info.error}")
    # A sweep's queries (one per index shard) are the same whatever the number of runs;
    # what else it did (the hand-off's send, read and un-park) was for this run.
    fixed = Counter({op: n for op, n in swept.items() if op == "dynamodb.Query"})
    own = tally.calls - fixed
    return Figures(
        name, invocations, queue.messages, own, sweeps, fixed, time.perf_counter() - began
    )


def _counted(tally: Tally, action: Callable[[], Any]) -> Counter[str]:
    before = Counter(tally.calls)
    action()
    return tally.calls - before


def _finished(tally: Tally, client: Any, run_id: str) -> bool:
    """Whether the run has ended: the bench's own read, not counted."""
    tally.active = False
    try:
        return bool(client.get(run_id).status.is_terminal)
    finally:
        tally.active = True


def main(before: bool) -> None:
    print("durable: what a long wait costs (moto in process, 64 index shards, virtual clock)")
    print(f"reproduce: {COMMAND}")
    print()
    scenarios = [
        ("40-day ctx.sleep", "sleep-40-days", None, LONG + timedelta(minutes=1)),
        ("trigger delayed 40 days", "start-in-40-days", LONG, LONG + timedelta(minutes=1)),
        ("2-day retry backoff", "retry-in-2-days", None, BACKOFF + timedelta(minutes=1)),
    ]
    rows: list[tuple[str, Figures]] = []
    for name, task_id, delay, length in scenarios:
        rows.append(("after", measure(name, task_id, delay, length, hops=False)))
    if before:
        name, task_id, delay, length = scenarios[0]
        rows.insert(0, ("before", measure(name, task_id, delay, length, hops=True)))
    header = (
        f"{'':8}{'scenario':26}{'invocations':>12}{'messages':>10}{'SQS req.':>10}"
        f"{'DDB reads':>11}{'DDB writes':>11}{'sweeps':>8}{'seconds':>9}"
    )
    print(header)
    for label, f in rows:
        print(
            f"{label:8}{f.name:26}{f.invocations:>12,}{f.messages:>10,}{f.sqs_requests():>10,}"
            f"{f.dynamodb(False):>11,}{f.dynamodb(True):>11,}{f.sweeps:>8,}{f.seconds:>9.1f}"
        )
    for name, length, first in (
        ("40-day ctx.sleep", LONG, 1),
        ("trigger delayed 40 days", LONG, 0),
        ("2-day retry backoff", BACKOFF, 1),
    ):
        if before and first and length == LONG:
            continue  # measured above
        # The first attempt, then one invocation per hop, each reading the run and sending
        # the next hop (the last one runs it).
        invocations = first + math.ceil(length / HOP)
        print(
            f"{'before':8}{name:26}{invocations:>12,}{invocations:>10,}"
            f"{invocations * (1 + ESM_REQUESTS_PER_MESSAGE):>10,}{invocations:>11,}"
            f"{'':>11}{'':>8}  (computed)"
        )
    print(
        "  per run, sweeps' queries apart; SQS req. = the run's SendMessage(Batch) requests +"
        f" {ESM_REQUESTS_PER_MESSAGE} per message delivered (the event source mapping's"
        " receive and delete)"
    )
    after = rows[-3]
    per_sweep = {op: n / after[1].sweeps for op, n in after[1].sweep_requests.items()}
    print(
        "  each sweep, whatever the number of runs: "
        + ", ".join(f"{n:.0f} {op}" for op, n in sorted(per_sweep.items()))
        + " (one per index shard for the overdue runs, one for the parked ones)"
    )
    print()
    cost(rows, per_sweep)


def cost(rows: list[tuple[str, Figures]], per_sweep: dict[str, float]) -> None:
    """100,000 runs each waiting a month: what a day of it costs, before and after."""
    wru, rru = prices.DYNAMODB_WRITE_REQUEST_UNIT.usd, prices.DYNAMODB_READ_REQUEST_UNIT.usd
    sqs, lam = prices.SQS_STANDARD_REQUEST.usd, prices.LAMBDA_REQUEST.usd
    print(f"{RUNS:,} runs each waiting a month (a 30-day sleep), per day:")
    after = next(f for label, f in rows if label == "after")
    waits_per_day = RUNS / (MONTH / DAY)  # each run's wait ends once a month
    hops_per_run_day = DAY / HOP
    # before: each run hops every 15 minutes: an invocation, a consistent read of the run
    # (1 RRU), a SendMessage and the event source mapping's receive and delete.
    before_day = {
        "Lambda invocations": RUNS * hops_per_run_day,
        "SQS requests": RUNS * hops_per_run_day * (1 + ESM_REQUESTS_PER_MESSAGE),
        "DynamoDB reads": RUNS * hops_per_run_day,
        # The run's own writes (its start, checkpoints, leases, end) were the same, but
        # the hand-off's un-park.
        "DynamoDB writes": waits_per_day * (after.dynamodb(True) - 1),
    }
    sweep_reads = sum(n for op, n in per_sweep.items() if op.startswith("dynamodb.")) * 1440
    # The overdue sweep's queries were made before too: half of them (the parked key space
    # is the other half).
    before_day["DynamoDB reads"] += sweep_reads / 2
    after_day = {
        "Lambda invocations": waits_per_day * after.invocations,
        "SQS requests": waits_per_day * after.sqs_requests(),
        "DynamoDB reads": waits_per_day * after.dynamodb(False) + sweep_reads,
        "DynamoDB writes": waits_per_day * after.dynamodb(True),
    }
    unit = {
        "Lambda invocations": lam,
        "SQS requests": sqs,
        "DynamoDB reads": rru,
        "DynamoDB writes": wru,
    }
    print(f"  {'':22}{'before':>16}{'after':>16}")
    total_before = total_after = 0.0
    for key in before_day:
        total_before += before_day[key] * unit[key]
        total_after += after_day[key] * unit[key]
        print(f"  {key:22}{before_day[key]:>16,.0f}{after_day[key]:>16,.0f}")
    print(f"  {'cost per day (USD)':22}{total_before:>16,.2f}{total_after:>16,.2f}")
    print(
        "  after: each run's whole wait (both invocations, its writes and reads) counted on"
        f" the day it ends ({waits_per_day:,.0f} a day), plus the sweeps' queries (1,440 a"
        " day, one read unit each at least; before, the overdue half of them); the sweeper's"
        " own invocations (1,440 a day) are the same before and after and left out"
    )
    print(
        "  prices: "
        + "; ".join(
            price.label()
            for price in (
                prices.LAMBDA_REQUEST,
                prices.SQS_STANDARD_REQUEST,
                prices.DYNAMODB_WRITE_REQUEST_UNIT,
                prices.DYNAMODB_READ_REQUEST_UNIT,
            )
        )
        + f" ({prices.REGION}, {prices.DYNAMODB_READ_REQUEST_UNIT.as_of}); a request counted as one"
        " unit (items under 1 KB written, 4 KB read)"
    )


if __name__ == "__main__":
    main(before="--measure-before" in sys.argv[1:])
