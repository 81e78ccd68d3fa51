"""What a queue's concurrency limit costs a run, in DynamoDB and SQS requests, on moto.

Run:  .venv/bin/python bench/queue_overhead.py

Every AWS request the runtime makes (trigger, invocations, follow-ups; no sweeper) is
logged at botocore by `durable.faults.Faults` and counted per run, for the same tasks
(each alone in a fresh test kit on moto, virtual clock):

- `one step`: one step, then done (one invocation);
- `step, sleep, step`: a step, a 10-second sleep, a step (two invocations);

each run three ways, 20 runs triggered at once: in a queue without a limit, in a queue
of concurrency 100 that is never full, and in a queue of concurrency 2 whose runs keep
their slot while they sleep (`release_on_wait=False`), so that with the sleep 18 of them
wait for a slot (a waiter item, a QUEUED write, the second try, a recheck when woken too
early, the wake-up message). The test kit runs one invocation at a time, so a run of one
step ends in its first invocation and never makes another wait.
The first run of a key in a process also records the key (`QUEUE#<queue>` / `KEY#<key>`),
counted here once per table. Nothing here asserts.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from durable import Context, Queue, TaskRegistry, task
from durable.faults import Faults
from durable.testing import MotoBackend, TestEnvironment

RUNS = 20
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
_READS = {"GetItem", "Query", "BatchGetItem", "Scan"}


def _registry(queue: Queue | None, sleeps: bool) -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="work", registry=registry, queue=queue)
    def work(ctx: Context, payload: Any) -> Any:
        ctx.step("first", lambda: 1)
        if sleeps:
            ctx.sleep("pause", timedelta(seconds=10))
            ctx.step("second", lambda: 2)
        return payload

    return registry


def measure(moto: MotoBackend, queue: Queue | None, sleeps: bool) -> dict[str, float]:
    """Requests per run of `RUNS` runs triggered at once, run to their end."""
    faults = Faults()
    registry = _registry(queue, sleeps)
    with TestEnvironment(backend="moto", registry=registry, faults=faults, moto=moto) as env:
        run_ids = [env.trigger("work", n).run_id for n in range(RUNS)]
        for run_id in run_ids:
            info = env.run_until_complete(run_id)
            assert str(info.status) == "COMPLETED", info
    counts: Counter[str] = Counter()
    for call in faults.log:
        if call.service == "dynamodb" and call.operation in _WRITES:
            counts["dynamodb writes"] += 1
        elif call.service == "dynamodb" and call.operation in _READS:
            counts["dynamodb reads"] += 1
        elif call.service == "sqs":
            counts["sqs requests"] += 1
    names = ("dynamodb writes", "dynamodb reads", "sqs requests")
    return {name: counts[name] / RUNS for name in names}


def main() -> None:
    ways = [
        ("no limit", Queue("free")),
        ("concurrency 100, never full", Queue("roomy", concurrency=100)),
        ("concurrency 2, kept through waits", Queue("narrow", 2, release_on_wait=False)),
    ]
    print(f"requests per run ({RUNS} runs each, moto, no sweeper)\n")
    header = f"{'task':<20} {'queue':<34} {'DDB writes':>10} {'DDB reads':>10} {'SQS':>6}"
    print(header)
    print("-" * len(header))
    with MotoBackend() as moto:
        for label, sleeps in (("one step", False), ("step, sleep, step", True)):
            base: dict[str, float] | None = None
            for way, queue in ways:
                figures = measure(moto, queue, sleeps)
                extra = ""
                if base is None:
                    base = figures
                else:
                    more = figures["dynamodb writes"] - base["dynamodb writes"]
                    extra = f"   (+{more:.2f} writes)"
                print(
                    f"{label:<20} {way:<34} {figures['dynamodb writes']:>10.2f} "
                    f"{figures['dynamodb reads']:>10.2f} {figures['sqs requests']:>6.2f}{extra}"
                )


if __name__ == "__main__":
    main()
