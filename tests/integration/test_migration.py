"""`durable migrate` on moto: a table of the first layout (five unsharded indexes projecting
every attribute, built here with boto3 from those definitions and filled as that version
wrote its items) is refused by the store with a clear error, then migrated, after which
every listing, due and expired run is found again; a second migration changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from durable.cli import main
from durable.errors import TableLayoutError
from durable.local.stack import DEV_INDEX_SHARDS, migrate_first_layout
from durable.records import RunStatus
from durable.settings import Settings
from durable.storage.dynamodb import DynamoDBRunStore
from durable.storage.migration import migrate_table, needs_migration

REGION = "us-east-1"
TABLE = "old-runs"
SHARDS = 4
# PynamoDB's UTC timestamps, as the first layout stored them.
WAKE_AT = "2030-01-01T00:05:00.000000+0000"
EXPIRES_AT = "2030-02-01T00:00:00.000000+0000"
CREATED = "2030-01-01T00:00:00.000000+0000"
LATER = datetime(2031, 1, 1, tzinfo=UTC)
NEW_INDEXES = ("by-task-v2", "by-status-v2", "all-runs-v2", "due-v2", "expiry-v2")


def _old_index(name: str, hash_key: str, range_key: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def create_first_layout_table(client: Any) -> None:
    """The table as the first layout's `create_table` made it."""
    names = ["pk", "sk", "task_id", "status", "list_pk", "created_key"]
    names += ["wake_shard", "wake_at", "expire_shard", "expires_at"]
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in names],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            _old_index("by-task", "task_id", "created_key"),
            _old_index("by-status", "status", "created_key"),
            _old_index("all-runs", "list_pk", "created_key"),
            _old_index("due", "wake_shard", "wake_at"),
            _old_index("expiry", "expire_shard", "expires_at"),
        ],
    )


def old_run_item(n: int, task_id: str, status: str) -> dict[str, Any]:
    """A run item as the first layout wrote it: every field, its index keys unsharded."""
    run_id = f"run_{n:06d}"
    item: dict[str, Any] = {
        "pk": {"S": f"RUN#{run_id}"},
        "sk": {"S": "RUN"},
        "run_id": {"S": run_id},
        "task_id": {"S": task_id},
        "status": {"S": status},
        "payload": {"S": "{}"},
        "created_at": {"S": CREATED},
        "updated_at": {"S": CREATED},
        "attempt": {"N": "1"},
        "task_version": {"S": "1"},
        "code_version": {"S": "v1"},
        "checkpoints": {"N": "0"},
        "cancel_requested": {"BOOL": False},
        "created_key": {"S": run_id},
        "list_pk": {"S": "RUN"},
    }
    if status == "WAITING":
        item |= {"wake_at": {"S": WAKE_AT}, "wake_shard": {"S": "WAKE"}}
    if status == "COMPLETED":
        item |= {
            "finished_at": {"S": CREATED},
            "expires_at": {"S": EXPIRES_AT},
            "expire_shard": {"S": "EXPIRE"},
        }
    return item


RUNS = {
    n: ("orders" if n % 3 else "refunds", ("WAITING", "COMPLETED", "QUEUED")[n % 3])
    for n in range(1, 41)
}


@pytest.fixture
def old_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DURABLE_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_first_layout_table(client)
        for n, (task_id, status) in RUNS.items():
            client.put_item(TableName=TABLE, Item=old_run_item(n, task_id, status))
        client.put_item(  # a checkpoint: no index key, never touched by the migration
            TableName=TABLE,
            Item={"pk": {"S": "RUN#run_000001"}, "sk": {"S": "CP#0000000001"}, "seq": {"N": "1"}},
        )
        yield client


def index_names(client: Any) -> set[str]:
    table = client.describe_table(TableName=TABLE)["Table"]
    return {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}


def numbers(runs: list[Any]) -> list[int]:
    return [int(run.run_id.removeprefix("run_")) for run in runs]


def test_a_store_on_a_first_layout_table_says_to_migrate(old_table: Any) -> None:
    store = DynamoDBRunStore(TABLE, region=REGION)

    with pytest.raises(TableLayoutError, match="durable migrate"):
        store.list_runs()
    with pytest.raises(TableLayoutError, match="durable migrate"):
        store.list_runs(task_id="orders", status=RunStatus.WAITING)
    with pytest.raises(TableLayoutError, match="durable migrate"):
        store.due_runs(LATER)
    with pytest.raises(TableLayoutError, match="durable migrate"):
        store.expired_runs(LATER)


def test_the_migration_builds_the_sharded_layout_and_finds_every_run(old_table: Any) -> None:
    pauses: list[float] = []
    assert needs_migration(TABLE, REGION)

    report = migrate_table(TABLE, REGION, shards=SHARDS, pause=pauses.append)

    assert not needs_migration(TABLE, REGION)

    assert sorted(report.created_indexes) == sorted(NEW_INDEXES)
    assert sorted(report.deleted_indexes) == sorted(
        ["by-task", "by-status", "all-runs", "due", "expiry"]
    )
    assert (report.shards, report.config_written) == (SHARDS, True)
    assert (report.runs_backfilled, report.runs_current) == (len(RUNS), 0)
    assert index_names(old_table) == set(NEW_INDEXES)

    store = DynamoDBRunStore(TABLE, region=REGION, page_size=3)
    assert store.index_shards == SHARDS
    assert numbers(store.list_runs(limit=100).runs) == sorted(RUNS, reverse=True)
    waiting_orders = [
        n for n, (task, status) in RUNS.items() if (task, status) == ("orders", "WAITING")
    ]
    assert numbers(
        store.list_runs(task_id="orders", status=RunStatus.WAITING, limit=100).runs
    ) == sorted(waiting_orders, reverse=True)
    assert sorted(numbers(store.due_runs(LATER, limit=100))) == sorted(
        n for n, (_, status) in RUNS.items() if status == "WAITING"
    )
    assert sorted(numbers(store.expired_runs(LATER, limit=100))) == sorted(
        n for n, (_, status) in RUNS.items() if status == "COMPLETED"
    )
    # The migrated runs take part in what a store does next: a status change moves its key.
    store.update_run("run_000003", {"status": RunStatus.FAILED})
    assert numbers(store.list_runs(status=RunStatus.FAILED).runs) == [3]


def test_migrating_again_changes_nothing(old_table: Any) -> None:
    migrate_table(TABLE, REGION, shards=SHARDS, pause=lambda seconds: None)

    again = migrate_table(TABLE, REGION, shards=16, pause=lambda seconds: None)

    assert again.created_indexes == [] and again.deleted_indexes == []
    assert (again.shards, again.config_written) == (SHARDS, False)  # the table's count holds
    assert (again.runs_backfilled, again.runs_current) == (0, len(RUNS))


def test_migrating_again_keeps_a_parked_timer_parked(old_table: Any) -> None:
    migrate_table(TABLE, REGION, shards=SHARDS, pause=lambda seconds: None)
    store = DynamoDBRunStore(TABLE, region=REGION)
    [run] = [run for run in store.due_runs(LATER, limit=100) if run.run_id == "run_000003"]
    assert store.set_timer_parked(run.run_id, True, wake_at=run.wake_at, wake_token=run.wake_token)

    again = migrate_table(TABLE, REGION, shards=SHARDS, pause=lambda seconds: None)

    assert (again.runs_backfilled, again.runs_current) == (0, len(RUNS))
    assert numbers(store.parked_timers(LATER)) == [3]
    assert 3 not in numbers(store.due_runs(LATER, limit=100))


def test_durable_migrate_on_the_command_line(
    old_table: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_TABLE_NAME", TABLE)

    assert main(["migrate", "--shards", str(SHARDS)]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed["table"] == TABLE
    assert printed["index_shards"] == SHARDS
    assert printed["runs_backfilled"] == len(RUNS)
    assert main(["migrate", "--table", "no-such-table"]) == 1
    assert "no-such-table" in capsys.readouterr().err


def test_durable_dev_migrates_a_first_layout_table_of_its_state_directory(old_table: Any) -> None:
    settings = Settings(table_name=TABLE, region=REGION, endpoint_url=None)

    assert migrate_first_layout(settings)
    assert not migrate_first_layout(settings)  # once
    store = DynamoDBRunStore(TABLE, region=REGION)
    assert store.index_shards == DEV_INDEX_SHARDS
    assert numbers(store.list_runs(limit=100).runs) == sorted(RUNS, reverse=True)
