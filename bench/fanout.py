"""Fan-out: one `ctx.map` over N items, counting invocations, store writes and time.

    .venv/bin/python bench/fanout.py [N] [memory|moto]    (defaults: 10000 memory)

The same worker code as in Lambda runs on the memory store, or on DynamoDB and S3 in moto
(in process); wake-ups go through the test kit's in-memory queue on a virtual clock (each
one is still a real worker invocation), so the figures are requests and invocations, not
Lambda latency. On moto every TransactWriteItems deep-copies the whole table (moto's
rollback), so its time per item grows with the table: use a few hundred items there.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any

import botocore.client

from durable import Context, TaskRegistry, task
from durable.testing import TestEnvironment

calls: Counter[str] = Counter()
_original = botocore.client.BaseClient._make_api_call


def _counting(self: Any, operation: str, params: Any) -> Any:
    calls[f"{self.meta.service_model.service_name}:{operation}"] += 1
    return _original(self, operation, params)


def main(items: int, backend: str = "memory") -> None:
    registry = TaskRegistry()

    @task(id="double", registry=registry)
    def double(ctx: Context, payload: int) -> int:
        return int(ctx.step("double", lambda: payload * 2))

    @task(id="fan-out", registry=registry)
    def fan_out(ctx: Context, payload: int) -> int:
        return sum(ctx.map("double", list(range(payload)), max_concurrency=100))

    botocore.client.BaseClient._make_api_call = _counting  # type: ignore[method-assign]
    with TestEnvironment(backend=backend, registry=registry) as env:  # type: ignore[arg-type]
        calls.clear()
        started = time.perf_counter()
        run = env.trigger("fan-out", items)
        info = env.run_until_complete(run.run_id)
        elapsed = time.perf_counter() - started
        parent = sum(1 for message, _ in env.handled if message.run_id == run.run_id)
    assert info.result == 2 * sum(range(items)), info
    dynamodb_writes = sum(
        n
        for name, n in calls.items()
        if name.split(":")[1] in ("PutItem", "UpdateItem", "TransactWriteItems", "DeleteItem")
    ) or int(getattr(env.store, "writes", 0))
    print(f"ctx.map over {items:,} items (max_concurrency=100), on {backend}:")
    print(
        f"  wall time                 {elapsed:8.1f} s ({elapsed / items * 1000:.1f} ms per item)"
    )
    print(
        f"  worker invocations        {env.invocations:8,} ({env.invocations / items:.2f} per item)"
    )
    print(f"  parent invocations        {parent:8,}")
    print(
        f"  store writes              {dynamodb_writes:8,} ({dynamodb_writes / items:.2f} per item)"
    )
    for name, count in sorted(calls.items()):
        print(f"    {name:34} {count:8,}")
    print("reproduce: .venv/bin/python bench/fanout.py", items, backend)


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 10_000,
        sys.argv[2] if len(sys.argv) > 2 else "memory",
    )
