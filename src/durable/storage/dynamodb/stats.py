"""Counters of runs on DynamoDB (`RunStats`): items beside the runs, never in an index.

Keys and attributes (`durable.storage._tables`): one item `STATS#<task>#<s>` / `SLOT#<slot>`
per task, shard `s` (one of `STATS_SHARDS` by a hash of the run, so one busy task writes
4 partitions' keys, not one) and ring slot (`slot = bucket % STATS_BUCKETS`, 8 slots of 10
minutes), holding the bucket the slot holds (`p`), that bucket's counters (`b_<name>`) and
the slot's share of the lifetime totals (`t_<name>`, never cleared).

- `add_stats` is one `UpdateItem` of the current slot's item: `ADD t_x :1, b_x :1,
  b_h<bin> :1` guarded by `p = :bucket` (`_stats_try_add`). When the slot holds an older
  bucket (or none) the guard fails, and DynamoDB sends the item back with the failure
  (`ReturnValuesOnConditionCheckFailure`, no read); one rollover write (`_stats_roll`)
  then sets `p` and the bucket's counters to this add's amounts, removes the item's other
  `b_` counters and adds the totals, guarded by the slot still holding what the failed add
  saw. If another writer rolled it first, the `ADD` is tried once more. An add whose
  bucket is older than the slot's (a writer 80 minutes late) keeps only its totals (an
  `ADD` of them alone, to the slot's item). So an add costs one write, two at the rollover
  of its slot (every 80 minutes of a task's activity, per shard), three when it loses a
  rollover race; a failed conditional write is billed too. Each is billed by one slot's
  item (one bucket's counters and the slot's totals: 0.1 to 0.4 KB, 1 write unit; 1.6 KB
  at most with 10-digit amounts, see `bench/metrics_scale.py`), not by the whole ring. The
  task is recorded once per process (`STATS#TASKS`, an unconditional put).
- A race the guard does not see: an add to the old bucket between the failed add's answer
  and the rollover (a writer 80 minutes late racing the slot's first of the new bucket)
  adds a counter the rollover does not know to remove, so it stays in the new bucket.
- `read_stats` is `BatchGetItem`s of the tasks' items (32 keys a task: 4 shards x 8 slots,
  100 keys a request, sent at once on the listings' pool), eventually consistent: a figure
  a second old is fine. The totals are summed over every item; the bucket counters over
  the items whose period is in the range asked for.
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
from durable.storage.base import (
    STATS_BUCKETS,
    STATS_SHARDS,
    ActiveCounts,
    SlotHeld,
    TaskCounts,
    add_to_stats_ring,
)
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
        with translated("add_stats"):
            self._record_stats_task(task_id)
            add_to_stats_ring(
                self, task_id, shard_of(shard_key, STATS_SHARDS), bucket, window, totals
            )

    def _stats_add_totals(
        self, task_id: str, shard: int, bucket: int, totals: Mapping[str, int]
    ) -> None:
        self._stats_update(task_id, shard, bucket % STATS_BUCKETS, {}, totals)

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

    def _stats_try_add(
        self,
        task_id: str,
        shard: int,
        bucket: int,
        window: Mapping[str, int],
        totals: Mapping[str, int],
    ) -> SlotHeld | None:
        """`ADD` the amounts, guarded by the slot holding `bucket`; what the slot held when
        the guard failed, None when added."""
        prefix = _tables.STATS_BUCKET_PREFIX
        period = _tables.STATS_PERIOD
        try:
            self._stats_update(
                task_id,
                shard,
                bucket % STATS_BUCKETS,
                {prefix + name: amount for name, amount in window.items()},
                totals,
                condition=("#p = :p", {"#p": period}, {":p": {"N": str(bucket)}}),
            )
        except (PynamoDBException, ClientError) as exc:
            if response_code(exc) != CONDITION_FAILED:
                raise
            item = _failed_item(exc)
            held = item.get(period)
            return SlotHeld(
                period=None if held is None else int(held["N"]),
                names=frozenset(
                    name.removeprefix(prefix) for name in item if name.startswith(prefix)
                ),
            )
        return None

    def _stats_roll(
        self,
        task_id: str,
        shard: int,
        bucket: int,
        held: SlotHeld,
        window: Mapping[str, int],
        totals: Mapping[str, int],
    ) -> bool:
        """Start the slot's bucket with this add's amounts (and add its totals), guarded by
        the slot still holding `held.period`; False when another writer rolled it first."""
        prefix = _tables.STATS_BUCKET_PREFIX
        names = {"#p": _tables.STATS_PERIOD}
        values: dict[str, Any] = {":p": {"N": str(bucket)}}
        sets = ["#p = :p"]
        for index, (name, amount) in enumerate(sorted(window.items())):
            names[f"#s{index}"] = prefix + name
            values[f":s{index}"] = {"N": str(amount)}
            sets.append(f"#s{index} = :s{index}")
        removes = []
        for index, name in enumerate(sorted(held.names - set(window))):
            names[f"#r{index}"] = prefix + name
            removes.append(f"#r{index}")
        if held.period is None:
            condition = "attribute_not_exists(#p)"
        else:
            condition = "#p = :held"
            values[":held"] = {"N": str(held.period)}
        try:
            self._stats_update(
                task_id,
                shard,
                bucket % STATS_BUCKETS,
                {},
                totals,
                condition=(condition, names, values),
                sets=sets,
                removes=removes,
            )
        except (PynamoDBException, ClientError) as exc:
            if response_code(exc) != CONDITION_FAILED:
                raise
            return False
        return True

    def _stats_update(
        self,
        task_id: str,
        shard: int,
        slot: int,
        adds: Mapping[str, int],
        totals: Mapping[str, int],
        *,
        condition: tuple[str, dict[str, str], dict[str, Any]] | None = None,
        sets: list[str] | None = None,
        removes: list[str] | None = None,
    ) -> None:
        """One `UpdateItem` of the slot's item: `ADD` each of `adds` (attribute names) and
        of `totals` (counter names), then the given `SET`s and `REMOVE`s, under `condition`
        (its expression, names and values); the item comes back with a failed condition."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        amounts = {attribute: amount for attribute, amount in adds.items()}
        amounts.update(
            {_tables.STATS_TOTAL_PREFIX + name: amount for name, amount in totals.items()}
        )
        clauses = []
        if amounts:
            parts = []
            for index, (attribute, amount) in enumerate(sorted(amounts.items())):
                names[f"#a{index}"] = attribute
                values[f":a{index}"] = {"N": str(amount)}
                parts.append(f"#a{index} :a{index}")
            clauses.append("ADD " + ", ".join(parts))
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if removes:
            clauses.append("REMOVE " + ", ".join(removes))
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {
                "pk": {"S": _tables.stats_pk(task_id, shard)},
                "sk": {"S": _tables.stats_slot_sk(slot)},
            },
            "UpdateExpression": " ".join(clauses),
        }
        if condition is not None:
            expression, condition_names, condition_values = condition
            names.update(condition_names)
            values.update(condition_values)
            request["ConditionExpression"] = expression
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = values
        self._models.connection.dispatch("UpdateItem", request)
        self._wrote()

    def read_stats(
        self, task_ids: Collection[str], since_bucket: int, until_bucket: int | None = None
    ) -> list[TaskCounts]:
        last = until_bucket if until_bucket is not None else math.inf
        keys = [key for task_id in task_ids for key in _keys_of_task(task_id)]
        # The requests go out at once, on the listings' pool (100 keys each).
        pool = shard_query_pool()
        chunks = [
            pool.submit(self._batch_get, keys[start : start + _BATCH_GET])
            for start in range(0, len(keys), _BATCH_GET)
        ]
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for chunk in chunks:
            for item in chunk.result():
                items[item["pk"]["S"], item["sk"]["S"]] = item
        found: list[TaskCounts] = []
        for task_id in task_ids:
            window: dict[str, int] = {}
            totals: dict[str, int] = {}
            for key in _keys_of_task(task_id):
                slot_item = items.get(key)
                if slot_item is None:
                    continue
                _add_counters(totals, slot_item, _tables.STATS_TOTAL_PREFIX)
                held = slot_item.get(_tables.STATS_PERIOD)
                if held is not None and since_bucket <= int(held["N"]) <= last:
                    _add_counters(window, slot_item, _tables.STATS_BUCKET_PREFIX)
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


def _keys_of_task(task_id: str) -> list[tuple[str, str]]:
    """The keys (pk, sk) of a task's counter items: one per shard and ring slot."""
    return [
        (_tables.stats_pk(task_id, shard), _tables.stats_slot_sk(slot))
        for shard in range(STATS_SHARDS)
        for slot in range(STATS_BUCKETS)
    ]


def _add_counters(into: dict[str, int], item: Mapping[str, Any], prefix: str) -> None:
    for attribute, value in item.items():
        if attribute.startswith(prefix):
            name = attribute.removeprefix(prefix)
            into[name] = into.get(name, 0) + int(value["N"])


def _failed_item(exc: BaseException) -> dict[str, Any]:
    """The item a write whose condition failed sent back (`ReturnValuesOnConditionCheckFailure`);
    empty when there was none. PynamoDB's error drops it: botocore's, its cause, keeps it."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        item = response.get("Item") if isinstance(response, dict) else None
        if isinstance(item, dict):
            return dict(item)
        seen = getattr(seen, "cause", None) or seen.__cause__
    return {}
