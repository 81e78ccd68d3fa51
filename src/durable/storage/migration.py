"""`durable migrate`: bring a table of the first layout to the current one (`_tables`).

The first layout had five unsharded indexes, each projecting every attribute: `by-task`
(`task_id`), `by-status` (`status`), `all-runs` (`list_pk`, always "RUN"), `due`
(`wake_shard`, "WAKE") and `expiry` (`expire_shard`, "EXPIRE"). The migration, in order:

1. creates each index of the current layout the table lacks, one `UpdateTable` at a time
   (DynamoDB builds one index at a time), waiting until it is ACTIVE;
2. writes the config item (layout 2 and the shard count) unless the table has one, so that
   from then on every store keys runs by the same count;
3. backfills the index keys: a paged Scan of the run items, and for each one whose keys are
   missing or stale (`status_pk` not matching its status) one conditional update, on the
   status it was read with (a run whose status changed meanwhile is read again);
4. deletes each index of the first layout, one `UpdateTable` at a time, waiting until it
   is gone.

Every step is idempotent and skips what is done, so a migration cut short is finished by
running it again, and running it on a current table changes nothing. Old items keep their
`list_pk`, `wake_shard` and `expire_shard` attributes: no index reads them any more.
Run it with the workers of the old version stopped (or run it once more after the new
version is deployed: runs the old version wrote meanwhile lack the new keys).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException

from durable.errors import DurableError
from durable.records import RunStatus
from durable.storage import _shards, _tables
from durable.storage._items import RunItem
from durable.storage._tables import TableModels, make_models

# The indexes of the first layout, deleted once the current ones are built and filled.
FIRST_LAYOUT_INDEXES = ("by-task", "by-status", "all-runs", "due", "expiry")
_KEY_ATTRIBUTES = ("all_pk", "task_pk", "status_pk", "due_pk", "expiry_pk")
_UPDATE_ATTEMPTS = 5


class MigrationError(DurableError):
    """The table cannot be migrated (it does not exist, or DynamoDB refused a step)."""


@dataclass
class MigrationReport:
    """What `migrate_table` did."""

    shards: int = 0
    created_indexes: list[str] = field(default_factory=list)
    config_written: bool = False
    runs_backfilled: int = 0
    runs_current: int = 0
    deleted_indexes: list[str] = field(default_factory=list)


def needs_migration(table_name: str, region: str, endpoint_url: str | None = None) -> bool:
    """Whether the table still has an index of the first layout."""
    client: Any = make_models(table_name, region, endpoint_url).connection.client
    table = client.describe_table(TableName=table_name)["Table"]
    names = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    return bool(names & set(FIRST_LAYOUT_INDEXES))


def migrate_table(
    table_name: str,
    region: str,
    endpoint_url: str | None = None,
    *,
    shards: int | None = None,
    poll_seconds: float = 5.0,
    pause: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = lambda line: None,
) -> MigrationReport:
    """Migrate `table_name` to the current layout (see above).

    `shards` (`DEFAULT_SHARDS` when None) applies only when the table has no config item
    yet. `pause(poll_seconds)` is called between two looks at an index being built or
    deleted.
    """
    shards = shards or _tables.DEFAULT_SHARDS
    if shards < 1:
        raise ValueError("a table needs at least one index shard")
    models = make_models(table_name, region, endpoint_url)
    client: Any = models.connection.client
    report = MigrationReport()

    def indexes() -> dict[str, str]:
        try:
            table = client.describe_table(TableName=table_name)["Table"]
        except ClientError as exc:
            raise MigrationError(f"table {table_name!r} cannot be described: {exc}") from exc
        return {
            index["IndexName"]: str(index.get("IndexStatus", "ACTIVE"))
            for index in table.get("GlobalSecondaryIndexes", [])
        }

    def wait_until(index: str, status: str | None) -> None:
        """Until `index` has `status` (None: until it is gone)."""
        while indexes().get(index) != status:
            pause(poll_seconds)

    schema = models.run._get_schema()
    for index in schema["global_secondary_indexes"]:
        name = index["index_name"]
        if name not in indexes():
            progress(f"creating index {name}")
            create: dict[str, Any] = {
                "IndexName": name,
                "KeySchema": index["key_schema"],
                "Projection": index["projection"],
            }
            definitions = [dict(definition) for definition in index["attribute_definitions"]]
            _update_table(client, table_name, definitions, {"Create": create})
            report.created_indexes.append(name)
        wait_until(name, "ACTIVE")

    report.shards, report.config_written = _ensure_config(models, shards)
    progress(f"index shards: {report.shards}")
    _backfill(models, report, progress)

    for name in FIRST_LAYOUT_INDEXES:
        if name in indexes():
            progress(f"deleting index {name}")
            _update_table(client, table_name, None, {"Delete": {"IndexName": name}})
            report.deleted_indexes.append(name)
            wait_until(name, None)
    return report


def _update_table(
    client: Any, table_name: str, definitions: list[dict[str, Any]] | None, update: dict[str, Any]
) -> None:
    request: dict[str, Any] = {"TableName": table_name, "GlobalSecondaryIndexUpdates": [update]}
    if definitions:
        request["AttributeDefinitions"] = definitions
    try:
        client.update_table(**request)
    except ClientError as exc:
        raise MigrationError(f"DynamoDB refused to update {table_name!r}: {exc}") from exc


def _ensure_config(models: TableModels, shards: int) -> tuple[int, bool]:
    """The table's shard count (its config item's, else `shards`, then written)."""
    config_model = models.config
    try:
        config = config_model.get(_tables.CONFIG_PK, _tables.CONFIG_SK, consistent_read=True)
        return int(config.index_shards), False
    except config_model.DoesNotExist:
        pass
    config = config_model(
        _tables.CONFIG_PK, _tables.CONFIG_SK, layout=_tables.LAYOUT_VERSION, index_shards=shards
    )
    try:
        config.save(condition=config_model.pk.does_not_exist())
    except PynamoDBException:
        # Written by a concurrent migration (or store) since: that count holds.
        config = config_model.get(_tables.CONFIG_PK, _tables.CONFIG_SK, consistent_read=True)
        return int(config.index_shards), False
    return shards, True


def _current_keys(item: RunItem, shards: int) -> dict[str, str]:
    shard = _shards.shard_of(item.run_id, shards)
    return {
        "all_pk": _tables.all_runs_pk(shard),
        "task_pk": _tables.task_pk(item.task_id, shard),
        "status_pk": _tables.status_pk(str(RunStatus(item.status)), shard),
        # A parked run stays parked (`durable.storage.timers`): its key space is kept.
        "due_pk": _tables.due_key(shard, (item.due_pk or "").startswith(_tables.TIMER_PREFIX)),
        "expiry_pk": _tables.expiry_pk(shard),
    }


def _backfill(
    models: TableModels, report: MigrationReport, progress: Callable[[str], None]
) -> None:
    m = models.run
    needed = ["pk", "sk", "run_id", "task_id", "status", "created_key", *_KEY_ATTRIBUTES]
    for item in m.scan(m.sk == _tables.RUN_SK, attributes_to_get=needed):
        if _backfill_run(m, item, report.shards):
            report.runs_backfilled += 1
            if report.runs_backfilled % 1000 == 0:
                progress(f"{report.runs_backfilled} runs given their index keys")
        else:
            report.runs_current += 1


def _backfill_run(m: type[RunItem], item: RunItem, shards: int) -> bool:
    """Give one run its index keys unless it has them; whether it was written."""
    for _ in range(_UPDATE_ATTEMPTS):
        keys = _current_keys(item, shards)
        stored = {name: getattr(item, name, None) for name in _KEY_ATTRIBUTES}
        if stored == keys and item.created_key == item.run_id:
            return False
        actions = [getattr(m, name).set(value) for name, value in keys.items()]
        actions.append(m.created_key.set(item.run_id))
        try:
            m(item.pk, item.sk).update(
                actions=actions, condition=m.pk.exists() & (m.status == item.status)
            )
            return True
        except PynamoDBException as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise MigrationError(f"run {item.run_id} was not migrated: {exc}") from exc
        try:  # gone, or its status changed since the scan: read it again
            item = m.get(item.pk, item.sk, consistent_read=True)
        except m.DoesNotExist:
            return False
    raise MigrationError(f"run {item.run_id} kept changing; run the migration again")
