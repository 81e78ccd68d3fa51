"""What a retry and a fork cost on a long log, on in-process moto: AWS calls and time.

Run:  .venv/bin/python bench/repair.py [--steps 500]

A task of `--steps` steps fails at its last one (attempt budget 1). Then, each timed:

- `retry`: `Client.retry` (the run read, its log read once, the audit entry, the update,
  the wake-up), then the retried attempt's invocation, which replays the steps before the
  failure and runs the last one again;
- `fork`: `Client.fork` from the entry before the last step (the log read, the copy's
  `--steps - 1` puts, two audit entries, the update, the wake-up), then the fork's
  invocation.

Printed: DynamoDB and SQS calls (counted at botocore, as the fault suite counts them) and
milliseconds of each. In-process moto answers one request at a time: the times say how the
work scales, not what DynamoDB answers in. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from durable import Context, RetryPolicy, TaskRegistry, task
from durable.faults import Faults
from durable.testing import TestEnvironment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    steps: int = args.steps
    broken = [True]
    registry = TaskRegistry()

    def effect(index: int) -> int:
        if index == steps - 1 and broken[0]:
            raise RuntimeError("the last step is broken")
        return index

    @task(id="long", registry=registry, retry=RetryPolicy(max_attempts=1))
    def long(ctx: Context, payload: None) -> int:
        return sum(
            ctx.step(f"s{index}", effect, index, retry=RetryPolicy(max_attempts=1))
            for index in range(steps)
        )

    faults = Faults()
    with TestEnvironment(backend="moto", registry=registry, faults=faults) as env:
        failed = env.trigger("long")
        env.run_until_complete(failed.run_id)
        broken[0] = False
        rows: list[tuple[str, dict[str, int], float]] = []

        def timed(name: str, action: Any) -> Any:
            before = len(faults.log)
            started = time.perf_counter()
            result = action()
            elapsed = (time.perf_counter() - started) * 1000
            calls = Counter(call.service for call in faults.log[before:])
            rows.append((name, dict(calls), elapsed))
            return result

        forked = timed("fork call", lambda: env.client.fork(failed.run_id, steps - 1))
        timed("fork's invocation", lambda: env.run_until_complete(forked.run_id))
        timed("retry call", lambda: env.client.retry(failed.run_id))
        info = timed("retried invocation", lambda: env.run_until_complete(failed.run_id))
        assert str(info.status) == "COMPLETED"
    print(f"a {steps}-step run that failed at its last step, on in-process moto")
    print(f"{'':20} {'DynamoDB':>9} {'SQS':>5} {'ms':>8}")
    for name, calls, elapsed in rows:
        print(f"{name:20} {calls.get('dynamodb', 0):>9} {calls.get('sqs', 0):>5} {elapsed:>8.0f}")


if __name__ == "__main__":
    main()
