"""Bounded items on moto, measured as DynamoDB stores them: a batch's end entry does not grow
with the batch, an inbox holds only what is still to be consumed, and a step's end holds at
most 4 KB of its input preview, never a blob of it."""

from __future__ import annotations

import json
from typing import Any

import boto3

from durable import Context, RetryPolicy, TaskRegistry, task
from durable.operations.step_input import MAX_INPUT_PREVIEW
from durable.records import MAX_ERROR_MESSAGE, MAX_TRACEBACK, CheckpointKind
from durable.serialization import dumps
from durable.storage import _tables
from durable.testing import TestEnvironment
from durable.values import DEFAULT_INLINE_LIMIT


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values (strings in UTF-8
    bytes, numbers about a byte per two digits, maps and lists 3 bytes plus contents)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return (len(str(data).lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "M":
        return 3 + item_size(data)
    if kind == "L":
        return 3 + sum(1 + _value_size(entry) for entry in data)
    return 1  # BOOL, NULL


def _batch_end_size(env: TestEnvironment, run_id: str) -> int:
    (end,) = [
        cp for cp in env.store.load_history(run_id) if cp.kind is CheckpointKind.BATCH_COMPLETED
    ]
    client = boto3.client("dynamodb", region_name="us-east-1")
    item = client.get_item(
        TableName=env.store.table_name,  # type: ignore[attr-defined]
        Key={"pk": {"S": _tables.run_pk(run_id)}, "sk": {"S": _tables.checkpoint_sk(end.seq)}},
        ConsistentRead=True,
    )["Item"]
    return item_size(item)


def test_a_batch_end_entry_is_as_small_for_120_children_as_for_3() -> None:
    registry = TaskRegistry()

    @task(id="label", registry=registry)
    def label(ctx: Context, payload: int) -> str:
        return f"item number {payload} is done"

    @task(id="labels", registry=registry)
    def labels(ctx: Context, payload: int) -> int:
        results = ctx.map("label", list(range(payload)), max_concurrency=100)
        assert list(results) == [f"item number {i} is done" for i in range(payload)]
        return len(results)

    with TestEnvironment(backend="moto", registry=registry) as env:
        small, big = env.trigger("labels", 3), env.trigger("labels", 120)
        assert env.run_until_complete(small.run_id).result == 3
        assert env.run_until_complete(big.run_id).result == 120
        small_size, big_size = _batch_end_size(env, small.run_id), _batch_end_size(env, big.run_id)
        # what the code before wrote: every child's outcome, copied into the entry
        copied = dumps(
            [
                {
                    "state": "ok",
                    "value": env.codec.decode(item.result or "null"),
                    "run_id": item.run_id,
                }
                for item in env.store.list_batch_results(big.run_id, 1, 0)
            ]
        )

    assert big_size < 400
    assert big_size - small_size <= 4  # the digits of the counts
    assert len(copied) > 120 * 60  # ~60 bytes a child: 10,000 children would not fit an item


def test_the_inbox_holds_only_unconsumed_events_on_moto() -> None:
    registry = TaskRegistry()

    @task(id="three-events", registry=registry)
    def three_events(ctx: Context, payload: None) -> list[Any]:
        return [ctx.wait_for_event("tick") for _ in range(3)]

    with TestEnvironment(backend="moto", registry=registry) as env:
        run = env.trigger("three-events")
        env.run_until_idle()
        env.send_event(run.run_id, "tock", "unconsumed")  # another name: it stays
        for n in range(3):
            env.send_event(run.run_id, "tick", n)
            env.run_until_idle()
            assert [event.name for event in env.store.list_inbox(run.run_id)] == ["tock"]
        info = env.run_until_complete(run.run_id)
        left = [event.name for event in env.store.list_inbox(run.run_id)]

    assert info.result == [0, 1, 2]
    assert left == ["tock"]


def _step_end_items(env: TestEnvironment, run_id: str) -> dict[str, dict[str, Any]]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    items: dict[str, dict[str, Any]] = {}
    for cp in env.store.load_history(run_id):
        if cp.kind in (CheckpointKind.STEP_COMPLETED, CheckpointKind.STEP_FAILED):
            key = {"pk": {"S": _tables.run_pk(run_id)}, "sk": {"S": _tables.checkpoint_sk(cp.seq)}}
            items[f"{cp.kind}:{cp.name}"] = client.get_item(
                TableName=env.store.table_name,  # type: ignore[attr-defined]
                Key=key,
                ConsistentRead=True,
            )["Item"]
    return items


def test_a_step_end_with_its_input_preview_stays_bounded_and_puts_no_blob() -> None:
    registry = TaskRegistry()
    frame = len('{"args":[""],"kwargs":{}}')
    at_bound = "y" * (MAX_INPUT_PREVIEW - frame)

    def fail_loudly(text: str) -> None:
        raise ValueError("m" * 2 * MAX_ERROR_MESSAGE)  # cut to MAX_ERROR_MESSAGE

    @task(id="big-inputs", registry=registry, retry=RetryPolicy(max_attempts=1))
    def big_inputs(ctx: Context, payload: None) -> None:
        # a 1 MB argument and a value just under the inline limit: the item holds a note
        ctx.step("big", lambda text: text[: DEFAULT_INLINE_LIMIT - 1024], "x" * 1_000_000)
        ctx.step("fails", fail_loudly, at_bound)

    with TestEnvironment(backend="moto", registry=registry) as env:
        run = env.trigger("big-inputs")
        env.run_until_complete(run.run_id)
        items = _step_end_items(env, run.run_id)
        s3 = boto3.client("s3", region_name="us-east-1")
        bucket = env.blobs._bucket  # type: ignore[attr-defined]
        blobs = s3.list_objects_v2(Bucket=bucket).get("Contents", [])

    big, failed = items["step_completed:big"], items["step_failed:fails"]
    assert json.loads(big["input"]["S"]) == {"omitted": "input is over 4 KB, the preview's bound"}
    assert item_size(big) < DEFAULT_INLINE_LIMIT + 1024  # the value, the note, small fields
    assert len(failed["input"]["S"].encode()) == MAX_INPUT_PREVIEW
    assert item_size(failed) < MAX_ERROR_MESSAGE + MAX_TRACEBACK + MAX_INPUT_PREVIEW + 1024
    assert [blob["Key"] for blob in blobs if run.run_id in blob["Key"]] == []
