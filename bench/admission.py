"""DynamoDB requests per trigger under a rate limit and under debounce, counted on moto.

Run:  .venv/bin/python bench/admission.py

The test kit's moto backend (in process), virtual clock. Every DynamoDB request a trigger
makes is counted by operation (through `durable.faults.Faults`, which sees each botocore
call, failed conditional writes included: DynamoDB bills those too), over:

- `plain`: 300 triggers of a task with no limit (the baseline);
- `rate 10/min`: 300 triggers at once of a task whose queue allows 10 starts a minute
  (30 windows filled in turn), then the same with a concurrency key per 10 triggers;
- `rate + key`: 300 triggers with an idempotency key each, then each retried once (a
  retry reads the claim and takes no place);
- `debounce`: 300 triggers of a debounced task with 10 keys (each key's first trigger
  creates its run, the others replace it).

Only the triggers are counted there (the runs are not executed). Then, runs executed
too: 60 triggers 20 s apart on one key (20 minutes), of a task debounced by 5 s alone and
of one debounced by 5 s and limited to one start a minute: the runs each makes, and all
DynamoDB and SQS requests per trigger (triggers, starts, steps). Nothing here asserts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from durable import Context, Queue, RateLimit, TaskRegistry, task
from durable.testing import Faults, TestEnvironment

TRIGGERS = 300
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}


def _registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="plain", registry=registry)
    def plain(ctx: Context, payload: Any) -> Any:
        return payload

    @task(id="limited", registry=registry, queue=Queue("api", rate_limit=RateLimit(10, _MINUTE)))
    def limited(ctx: Context, payload: Any) -> Any:
        return payload

    @task(id="debounced", registry=registry, queue=Queue("idx", debounce=timedelta(seconds=30)))
    def debounced(ctx: Context, payload: Any) -> Any:
        return payload

    digest = Queue("digest", debounce=timedelta(seconds=5), rate_limit=RateLimit(1, _MINUTE))
    for task_id, queue in (("stream", Queue("stream", debounce=timedelta(seconds=5))),
                           ("digest", digest)):  # fmt: skip

        @task(id=task_id, registry=registry, queue=queue)
        def streamed(ctx: Context, payload: Any) -> Any:
            return ctx.step("send", lambda: payload)

    return registry


_MINUTE = timedelta(minutes=1)


def measure(name: str, triggers: Callable[[TestEnvironment], int]) -> None:
    faults = Faults()
    start = datetime(2030, 1, 1, tzinfo=UTC)
    with TestEnvironment(backend="moto", registry=_registry(), faults=faults, start=start) as env:
        count = triggers(env)
        dynamodb = Counter(call.operation for call in faults.log if call.service == "dynamodb")
    requests = sum(dynamodb.values())
    writes = sum(amount for operation, amount in dynamodb.items() if operation in WRITES)
    shown = ", ".join(f"{operation} {amount / count:.2f}" for operation, amount in dynamodb.items())
    print(
        f"{name:<28} requests/trigger {requests / count:5.2f}  writes/trigger "
        f"{writes / count:5.2f}  ({shown})"
    )


def plain(env: TestEnvironment) -> int:
    for n in range(TRIGGERS):
        env.trigger("plain", n)
    return TRIGGERS


def rate(env: TestEnvironment) -> int:
    for n in range(TRIGGERS):
        env.trigger("limited", n)
    return TRIGGERS


def rate_keys(env: TestEnvironment) -> int:
    for n in range(TRIGGERS):
        env.trigger("limited", n, concurrency_key=f"tenant-{n // 10}")
    return TRIGGERS


def rate_idempotent(env: TestEnvironment) -> int:
    for _ in range(2):
        for n in range(TRIGGERS):
            env.trigger("limited", n, idempotency_key=f"k{n}")
    return 2 * TRIGGERS


def debounce(env: TestEnvironment) -> int:
    for n in range(TRIGGERS):
        env.trigger("debounced", n, concurrency_key=f"doc-{n % 10}")
    return TRIGGERS


def stream(task_id: str) -> None:
    """60 triggers 20 s apart on one key, the runs executed; all requests counted."""
    faults = Faults()
    start = datetime(2030, 1, 1, 0, 0, 10, tzinfo=UTC)
    with TestEnvironment(backend="moto", registry=_registry(), faults=faults, start=start) as env:
        for n in range(60):
            env.trigger(task_id, n)
            env.advance(timedelta(seconds=20))
        env.advance(timedelta(minutes=2))
        with faults.paused():
            runs = env.list(task_id=task_id, limit=100).runs
        requests = Counter(call.service for call in faults.log)
    shown = ", ".join(f"{service} {amount / 60:.2f}" for service, amount in requests.items())
    print(
        f"{task_id + ' (runs executed)':<28} runs {len(runs):3d}  requests/trigger "
        f"{sum(requests.values()) / 60:5.2f}  ({shown})"
    )


if __name__ == "__main__":
    measure("plain", plain)
    measure("rate 10/min", rate)
    measure("rate 10/min, key per 10", rate_keys)
    measure("rate + idempotency, x2", rate_idempotent)
    measure("debounce, 10 keys", debounce)
    stream("stream")
    stream("digest")
