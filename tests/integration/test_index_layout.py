"""The table's indexes as a user of the table sees them, on moto, after a real workload:
no index key holds more than a small share of its index, nothing but keys (and what a query
filters on) is projected, and a heartbeat writes no index."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import botocore.client
import pytest

from durable import Context, TaskRegistry, task
from durable.records import RunStatus
from durable.settings import Settings
from durable.testing import MotoBackend, TestEnvironment

SHARDS = 8
# No key of an index may hold more than this share of the index's items (or of one task's
# or one status's, for those with at least `GROUP` runs, which a random spread over the
# shards cannot overload that much but once in a million): 2.5 times an even spread.
MAX_SHARE = 2.5 / SHARDS
GROUP = 100
BUSY, REPORTS, AUDITS = 120, 40, 40
VOLATILE = {"updated_at", "lease_owner", "lease_expires", "payload", "result", "checkpoints"}


def workload_registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="busy", registry=registry)
    def busy(ctx: Context, payload: int) -> int:
        ctx.step("fetch", lambda: payload)
        ctx.sleep("nap", timedelta(hours=1))  # waits: in the due index
        return payload

    @task(id="report", registry=registry)
    def report(ctx: Context, payload: int) -> int:
        return int(ctx.step("one", lambda: payload)) + int(ctx.step("two", lambda: 1))

    @task(id="audit", registry=registry)
    def audit(ctx: Context, payload: int) -> int:
        return int(ctx.step("check", lambda: payload))

    return registry


@pytest.fixture(scope="module")
def table() -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(the table's description, every item) after the workload, on `SHARDS` shards."""
    with (
        MotoBackend(index_shards=SHARDS) as moto,
        TestEnvironment(
            backend="moto", moto=moto, registry=workload_registry(), retention=timedelta(days=7)
        ) as env,
    ):
        for n in range(BUSY):
            env.trigger("busy", n)
        for n in range(REPORTS):
            env.trigger("report", n)
        for n in range(AUDITS):
            env.trigger("audit", n)
        env.run_until_idle()
        client = boto3.client("dynamodb", region_name="us-east-1")
        name = moto.settings.table_name
        description = client.describe_table(TableName=name)["Table"]
        items = [
            item
            for page in client.get_paginator("scan").paginate(TableName=name)
            for item in page["Items"]
        ]
        yield description, items


def index_members(
    description: dict[str, Any], items: list[dict[str, Any]]
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Index name -> (its hash key attribute, the items it holds: those with all its keys)."""
    members = {}
    for index in description["GlobalSecondaryIndexes"]:
        keys = [key["AttributeName"] for key in index["KeySchema"]]
        hash_key = next(k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "HASH")
        members[index["IndexName"]] = (
            hash_key,
            [item for item in items if all(key in item for key in keys)],
        )
    return members


def test_the_workload_fills_every_index(table: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    description, items = table
    counts = {name: len(held) for name, (_, held) in index_members(description, items).items()}

    runs = BUSY + REPORTS + AUDITS
    assert counts == {
        "by-task-v2": runs,
        "by-status-v2": runs,
        "all-runs-v2": runs,
        "due-v2": BUSY,  # asleep
        "expiry-v2": REPORTS + AUDITS,  # completed, kept a week
    }


def test_no_index_key_holds_more_than_a_small_share(
    table: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    description, items = table
    for name, (hash_key, held) in index_members(description, items).items():
        per_key = Counter(item[hash_key]["S"] for item in held)
        assert max(per_key.values()) <= MAX_SHARE * len(held), (name, per_key)
        # The same for each value before the shard suffix: one busy task, one status.
        groups: dict[str, Counter[str]] = defaultdict(Counter)
        for key, count in per_key.items():
            groups[key.rsplit("#", 1)[0]][key] = count
        for value, keys in groups.items():
            if sum(keys.values()) >= GROUP:
                # Every shard holds some (an empty one among 8 for 100 random runs: one
                # chance in 80,000; for 40 runs it would be one in 26, so smaller groups
                # are not held to it).
                assert len(keys) == SHARDS, (name, value, keys)
                assert max(keys.values()) <= MAX_SHARE * sum(keys.values()), (name, value, keys)


def test_the_busy_task_and_its_status_spread_over_every_shard(
    table: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, items = table
    busy_keys = Counter(item["task_pk"]["S"] for item in items if "task_pk" in item)
    waiting_keys = Counter(item["status_pk"]["S"] for item in items if "status_pk" in item)

    assert sorted(key for key in busy_keys if key.startswith("busy#")) == sorted(
        f"busy#{k}" for k in range(SHARDS)
    )
    assert sum(c for key, c in waiting_keys.items() if key.startswith("WAITING#")) == BUSY


def test_the_config_item_names_the_shard_count(
    table: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, items = table
    configs = [item for item in items if item["pk"]["S"] == "TABLE#CONFIG"]

    assert configs == [
        {
            "pk": {"S": "TABLE#CONFIG"},
            "sk": {"S": "CONFIG"},
            "layout": {"N": "2"},
            "index_shards": {"N": str(SHARDS)},
        }
    ]


def test_indexes_project_keys_and_filter_attributes_only(
    table: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    description, _ = table
    projections = {
        index["IndexName"]: (
            index["Projection"]["ProjectionType"],
            index["Projection"].get("NonKeyAttributes", []),
        )
        for index in description["GlobalSecondaryIndexes"]
    }

    assert projections == {
        "by-task-v2": ("KEYS_ONLY", []),
        "by-status-v2": ("INCLUDE", ["task_id"]),
        "all-runs-v2": ("KEYS_ONLY", []),
        "due-v2": ("KEYS_ONLY", []),
        "expiry-v2": ("KEYS_ONLY", []),
    }


# -- heartbeats ----------------------------------------------------------------------------


def index_attributes(description: dict[str, Any]) -> set[str]:
    """Every attribute some index holds: its keys, the table's keys, what it includes."""
    held = {key["AttributeName"] for key in description["KeySchema"]}
    for index in description["GlobalSecondaryIndexes"]:
        held |= {key["AttributeName"] for key in index["KeySchema"]}
        held |= set(index["Projection"].get("NonKeyAttributes", []))
    return held


class UpdateRecorder:
    """The attributes each UpdateItem on a run item sets or removes, in order."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, set[str]]] = []

    def record(self, operation: str, params: dict[str, Any]) -> None:
        if operation != "UpdateItem" or params["Key"]["sk"] != {"S": "RUN"}:
            return
        names = params.get("ExpressionAttributeNames", {})
        written = {names[p] for p in re.findall(r"#\w+", params["UpdateExpression"])}
        self.updates.append((params["Key"]["pk"]["S"], written))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> UpdateRecorder:
    recorder = UpdateRecorder()
    make_api_call = botocore.client.BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        recorder.record(operation, params)
        return make_api_call(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return recorder


def heartbeat_registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="import", registry=registry)
    def import_rows(ctx: Context, beats: int) -> int:
        def rows() -> int:
            for n in range(beats):
                ctx.heartbeat({"row": n})
            return beats

        return int(ctx.step("rows", rows, heartbeat_timeout=timedelta(minutes=1)))

    return registry


def test_a_heartbeat_writes_no_index_attribute(recorder: UpdateRecorder) -> None:
    with TestEnvironment(backend="moto", registry=heartbeat_registry()) as env:
        few = env.trigger("import", 2)
        many = env.trigger("import", 12)
        env.run_until_idle()
        assert env.get(few.run_id).status == RunStatus.COMPLETED
        assert env.get(many.run_id).status == RunStatus.COMPLETED
        description = boto3.client("dynamodb", region_name="us-east-1").describe_table(
            TableName=Settings(endpoint_url=None).table_name
        )["Table"]
    held = index_attributes(description)

    def updates(run_id: str) -> tuple[int, int]:
        mine = [written for pk, written in recorder.updates if pk == f"RUN#{run_id}"]
        return len(mine), sum(1 for written in mine if written & held)

    few_updates, few_index_writes = updates(few.run_id)
    many_updates, many_index_writes = updates(many.run_id)
    assert many_updates - few_updates == 10  # one lease renewal per heartbeat...
    assert many_index_writes == few_index_writes  # ...and not one of them an index write
    assert not held & VOLATILE
