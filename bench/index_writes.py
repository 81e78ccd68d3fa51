"""Index writes per run, measured on moto from the items themselves.

Run:  .venv/bin/python bench/index_writes.py

Each write to a run item (PutItem, UpdateItem, DeleteItem, and the members of a
transaction) is bracketed by a consistent GetItem of the item, and the two images are held
against every secondary index the table has (read from DescribeTable), as DynamoDB charges
them (`dynamodb_items.index_entry_writes`): an item entering or leaving an index is one
index write, an item whose index key changes is two (a delete and a put), an item whose
key stays but whose projected attributes change is one (with `ALL`, any attribute),
anything else none.

Runs measured, each alone in a fresh table (the test kit's moto backend, virtual clock):
- `three-steps`: three steps, then done (one invocation);
- `heartbeats`: one step with a heartbeat timeout that heartbeats 20 times, 10 seconds
  apart on the virtual clock.

The layout measured is the one of the code on the import path, so the same script run with
an older checkout's `src` first on PYTHONPATH measures that one. The writes of the run
counters (`durable.services.stats`: items of their own, in no index) are counted beside
them, requests included (the first run of a task in a process also records the task).
Nothing here asserts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import botocore.client
from dynamodb_items import IndexLayout, TableLayout, index_entry_writes

from durable import Context, TaskRegistry, task
from durable.clock import VirtualClock
from durable.testing import TestEnvironment

_WRITES = ("PutItem", "UpdateItem", "DeleteItem")


class IndexWriteCounter:
    """Index writes per index, from before/after images of every run item written."""

    def __init__(self) -> None:
        self.by_index: Counter[str] = Counter()
        self.item_writes = 0
        self.counter_writes = 0  # writes of the run counters' items (`services.stats`)
        self._indexes: tuple[IndexLayout, ...] | None = None

    def _members(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """(table, key) of each run item the request writes."""
        if operation in _WRITES:
            key = params.get("Key") or {"pk": params["Item"]["pk"], "sk": params["Item"]["sk"]}
            found = [(params["TableName"], key)]
        elif operation == "TransactWriteItems":
            found = []
            for member in params["TransactItems"]:
                for kind, request in member.items():
                    if kind in ("Put", "Update", "Delete"):
                        key = request.get("Key") or {
                            "pk": request["Item"]["pk"],
                            "sk": request["Item"]["sk"],
                        }
                        found.append((request["TableName"], key))
        else:
            return []
        return [(table, key) for table, key in found if key["sk"] == {"S": "RUN"}]

    @contextmanager
    def installed(self) -> Iterator[None]:
        original = botocore.client.BaseClient._make_api_call
        counter = self

        def get(client: Any, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
            item = original(
                client, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}
            )
            return item.get("Item")

        def counting(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if operation in _WRITES:
                key = params.get("Key") or params.get("Item") or {}
                if str(key.get("pk", {}).get("S", "")).startswith("STATS#"):
                    counter.counter_writes += 1
            members = counter._members(operation, params)
            if not members:
                return original(client, operation, params)
            if counter._indexes is None:
                description = client.describe_table(TableName=members[0][0])["Table"]
                counter._indexes = TableLayout.from_description(description).indexes
            before = [get(client, table, key) for table, key in members]
            try:
                return original(client, operation, params)
            finally:
                for (table, key), old in zip(members, before, strict=True):
                    new = get(client, table, key)
                    if old != new:
                        counter.item_writes += 1
                    for index in counter._indexes:
                        writes = index_entry_writes(index, old, new)
                        counter.by_index[index.name] += sum(count for _, _, count in writes)

        botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
        try:
            yield
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def registry(clock: list[VirtualClock]) -> TaskRegistry:
    """The measured tasks; a step's time passes on `clock[0]` (the environment's)."""
    tasks = TaskRegistry()

    @task(id="three-steps", registry=tasks)
    def three_steps(ctx: Context, payload: int) -> int:
        a = int(ctx.step("one", lambda: payload))
        b = int(ctx.step("two", lambda: a + 1))
        return int(ctx.step("three", lambda: b + 1))

    @task(id="heartbeats", registry=tasks)
    def heartbeats(ctx: Context, payload: int) -> int:
        def rows() -> int:
            for n in range(payload):
                clock[0].advance(timedelta(seconds=10))
                ctx.heartbeat({"row": n})
            return payload

        return int(ctx.step("rows", rows, heartbeat_timeout=timedelta(minutes=1)))

    return tasks


def measure(task_id: str, payload: int) -> IndexWriteCounter:
    counter = IndexWriteCounter()
    clock: list[VirtualClock] = []
    with TestEnvironment(backend="moto", registry=registry(clock)) as env:
        clock.append(env.clock)
        with counter.installed():
            run = env.trigger(task_id, payload)
            env.run_until_idle()
        assert str(env.get(run.run_id).status) == "COMPLETED", env.get(run.run_id)
    return counter


def counter_writes_of_a_later_run() -> int:
    """The counter writes of a three-step run after the first of its task and bucket."""
    counter = IndexWriteCounter()
    with TestEnvironment(backend="moto", registry=registry([])) as env:
        env.trigger("three-steps", 1)
        env.run_until_idle()
        with counter.installed():
            env.trigger("three-steps", 2)
            env.run_until_idle()
    return counter.counter_writes


def main() -> None:
    for task_id, payload in (("three-steps", 1), ("heartbeats", 20)):
        counter = measure(task_id, payload)
        total = sum(counter.by_index.values())
        detail = ", ".join(
            f"{re.sub(r'-v2$', '', name)} {count}"
            for name, count in sorted(counter.by_index.items())
        )
        print(
            f"{task_id:12s} run item writes {counter.item_writes:3d}  "
            f"index writes {total:3d}  ({detail})  counter writes {counter.counter_writes}"
        )
    print(f"three-steps, a later run of the task: counter writes {counter_writes_of_a_later_run()}")


if __name__ == "__main__":
    main()
