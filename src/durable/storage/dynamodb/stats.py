"""Counters of runs on DynamoDB (`RunStats`): items beside the runs, never in an index.

Keys (`durable.storage._tables`): `STATS#<task>#<s>` / `B#<slot>` per time bucket and
`STATS#<task>#<s>` / `TOTAL` for the lifetime counts, `s` one of `STATS_SHARDS` by a hash of
the run, so one busy task writes 4 partitions' keys, not one.

- `add_stats` is one `UpdateItem` per item (`ADD c_<name> :n`), the bucket's guarded by
  `bucket = :b`. When the slot holds an older bucket (or nothing) that fails, and a `PutItem`
  conditioned on `attribute_not_exists(pk) OR bucket < :b` starts the new bucket with these
  amounts; if someone started it first, the `ADD` is tried once more. So a bucket costs one
  write, plus one at each rollover of its slot (every 80 minutes of a task's activity).
  The task is recorded once per process (`STATS#TASKS`, an unconditional put).
- `read_stats` is `BatchGetItem`s of the slots of the buckets asked for and the totals
  of the tasks (8 x 4 keys a task for the last hour, 100 keys a request, sent at once on
  the listings' pool), eventually consistent: a figure a second old is fine.
- `stats_task_ids` is one query of `STATS#TASKS` (paged).
- `count_active` queries the status index, each (status, shard) key once, at once on the
  listings' thread pool, reading at most `cap / shards` runs a key, and one more to know
  whether there are more (with `task_id`, which the index projects). So at most `cap` runs
  a status, or one a shard when there are more shards than that.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from concurrent.futures import Future
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException

from durable.records import RunStatus
from durable.storage import _tables
from durable.storage._listings import shard_query_pool
from durable.storage._shards import shard_of
from durable.storage.base import STATS_BUCKETS, STATS_SHARDS, ActiveCounts, TaskCounts
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import CONDITION_FAILED, response_code, translated

_BATCH_GET = 100  # keys per BatchGetItem request


class DynamoRunStats(DynamoTable):
    """The counter items: `add_stats`, `read_stats`, `stats_task_ids`, `count_active`."""

    _stats_tasks_recorded: set[str]

    def add_stats(
        self,
        task_id: str,
        bucket: int,
        window: Mapping[str, int],
        totals: Mapping[str, int],
        shard_key: str,
    ) -> None:
        shard = shard_of(shard_key, STATS_SHARDS)
        pk = _tables.stats_pk(task_id, shard)
        with translated("add_stats"):
            self._record_stats_task(task_id)
            if window:
                self._add_to_bucket(pk, bucket, window)
            if totals:
                self._update(pk, _tables.STATS_TOTAL_SK, totals)

    def _record_stats_task(self, task_id: str) -> None:
        recorded = self.__dict__.setdefault("_stats_tasks_recorded", set())
        if task_id in recorded:
            return
        self._models.connection.dispatch(
            "PutItem",
            {
                "TableName": self.table_name,
                "Item": {"pk": {"S": _tables.STATS_TASKS_PK}, "sk": {"S": task_id}},
            },
        )
        self._wrote()
        recorded.add(task_id)

    def _add_to_bucket(self, pk: str, bucket: int, window: Mapping[str, int]) -> None:
        sk = _tables.stats_bucket_sk(bucket % STATS_BUCKETS)
        for _ in range(2):
            if self._update(pk, sk, window, bucket=bucket):
                return
            # The slot holds another bucket (or none): start this one, unless it is older.
            item: dict[str, Any] = {
                "pk": {"S": pk},
                "sk": {"S": sk},
                "bucket": {"N": str(bucket)},
            }
            for name, amount in window.items():
                item[_tables.STATS_COUNTER_PREFIX + name] = {"N": str(amount)}
            try:
                self._models.connection.dispatch(
                    "PutItem",
                    {
                        "TableName": self.table_name,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(pk) OR #b < :b",
                        "ExpressionAttributeNames": {"#b": "bucket"},
                        "ExpressionAttributeValues": {":b": {"N": str(bucket)}},
                    },
                )
            except (PynamoDBException, ClientError) as exc:
                if response_code(exc) != CONDITION_FAILED:
                    raise
                continue  # started by another writer (add again), or newer (then dropped)
            self._wrote()
            return

    def _update(
        self, pk: str, sk: str, amounts: Mapping[str, int], bucket: int | None = None
    ) -> bool:
        """`ADD` the amounts to one item (guarded by its bucket when given); False when the
        guard did not hold."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds: list[str] = []
        for index, (name, amount) in enumerate(sorted(amounts.items())):
            names[f"#c{index}"] = _tables.STATS_COUNTER_PREFIX + name
            values[f":c{index}"] = {"N": str(amount)}
            adds.append(f"#c{index} :c{index}")
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
            "UpdateExpression": "ADD " + ", ".join(adds),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if bucket is not None:
            request["ConditionExpression"] = "#b = :b"
            names["#b"] = "bucket"
            values[":b"] = {"N": str(bucket)}
        try:
            self._models.connection.dispatch("UpdateItem", request)
        except (PynamoDBException, ClientError) as exc:
            if bucket is not None and response_code(exc) == CONDITION_FAILED:
                return False
            raise
        self._wrote()
        return True

    def read_stats(
        self, task_ids: Collection[str], since_bucket: int, until_bucket: int | None = None
    ) -> list[TaskCounts]:
        if until_bucket is not None and until_bucket - since_bucket + 1 < STATS_BUCKETS:
            slots = sorted({b % STATS_BUCKETS for b in range(since_bucket, until_bucket + 1)})
        else:
            slots = list(range(STATS_BUCKETS))
        last = until_bucket if until_bucket is not None else math.inf
        keys: list[tuple[str, str]] = []
        for task_id in task_ids:
            for shard in range(STATS_SHARDS):
                pk = _tables.stats_pk(task_id, shard)
                keys.append((pk, _tables.STATS_TOTAL_SK))
                keys.extend((pk, _tables.stats_bucket_sk(slot)) for slot in slots)
        # The requests go out at once, on the listings' pool (100 keys each).
        pool = shard_query_pool()
        chunks = [
            pool.submit(self._batch_get, keys[start : start + _BATCH_GET])
            for start in range(0, len(keys), _BATCH_GET)
        ]
        items: dict[str, list[dict[str, Any]]] = {}
        for chunk in chunks:
            for item in chunk.result():
                items.setdefault(item["pk"]["S"], []).append(item)
        found: list[TaskCounts] = []
        for task_id in task_ids:
            window: dict[str, int] = {}
            totals: dict[str, int] = {}
            for shard in range(STATS_SHARDS):
                for item in items.get(_tables.stats_pk(task_id, shard), []):
                    if item["sk"]["S"] == _tables.STATS_TOTAL_SK:
                        _add_counters(totals, item)
                    elif since_bucket <= int(item["bucket"]["N"]) <= last:
                        _add_counters(window, item)
            found.append(TaskCounts(task_id, window, totals))
        return found

    def _batch_get(self, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """One `BatchGetItem`, resent for the keys DynamoDB leaves unprocessed."""
        pending: dict[str, Any] = {
            self.table_name: {"Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys]}
        }
        items: list[dict[str, Any]] = []
        with translated("read_stats"):
            while pending:
                response = self._models.connection.dispatch(
                    "BatchGetItem", {"RequestItems": pending}
                )
                items.extend(response.get("Responses", {}).get(self.table_name, []))
                pending = response.get("UnprocessedKeys") or {}
        return items

    def stats_task_ids(self) -> set[str]:
        tasks: set[str] = set()
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _tables.STATS_TASKS_PK}},
        }
        with translated("stats_task_ids"):
            while True:
                response = self._models.connection.dispatch("Query", request)
                tasks.update(item["sk"]["S"] for item in response.get("Items", []))
                last = response.get("LastEvaluatedKey")
                if not last:
                    return tasks
                request["ExclusiveStartKey"] = last

    def count_active(self, statuses: Collection[RunStatus], cap: int) -> ActiveCounts:
        shards = self.index_shards
        per_key = max(1, math.ceil(cap / shards))
        pool = shard_query_pool()
        futures: dict[tuple[RunStatus, int], Future[list[str]]] = {
            (status, shard): pool.submit(self._task_ids_in, status, shard, per_key + 1)
            for status in statuses
            for shard in range(shards)
        }
        counts: dict[str, dict[RunStatus, int]] = {}
        capped: set[RunStatus] = set()
        for (status, _), future in futures.items():
            task_ids = future.result()
            if len(task_ids) > per_key:  # one more than the limit was read: there are more
                capped.add(status)
            for task_id in task_ids[:per_key]:
                per_task = counts.setdefault(task_id, {})
                per_task[status] = per_task.get(status, 0) + 1
        return ActiveCounts(counts, frozenset(capped))

    def _task_ids_in(self, status: RunStatus, shard: int, limit: int) -> list[str]:
        """The task of each run in `status` in one shard of the status index, up to `limit`."""
        m = self._models.run
        with translated("count_active"):
            return [
                str(item.task_id)
                for item in m.status_index.query(
                    _tables.status_pk(status, shard), limit=limit, attributes_to_get=["task_id"]
                )
            ]


def _add_counters(into: dict[str, int], item: Mapping[str, Any]) -> None:
    for attribute, value in item.items():
        if attribute.startswith(_tables.STATS_COUNTER_PREFIX):
            name = attribute.removeprefix(_tables.STATS_COUNTER_PREFIX)
            into[name] = into.get(name, 0) + int(value["N"])
