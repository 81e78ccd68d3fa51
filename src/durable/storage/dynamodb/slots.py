"""Queue slots on DynamoDB (`QueueSlots`): items beside the runs, in no index.

Keys (`durable.storage._tables`): per (queue, concurrency key) one partition,
`QUEUE#<queue>#<key>` (`<key>` empty for runs without one), holding

- the slots item (`SLOTS`): `held`, how many hold a slot, and one attribute `h_<run id>`
  per holder, the instant it acquired (ISO 8601). At most `MAX_CONCURRENCY` (1,000)
  holders of 60 bytes: 60 KB, under DynamoDB's 400 KB;
- one item per waiting run, `WAIT#<999 - priority>#<run id>` (`waiter_order`), so a query
  in key order gives the waiting runs in start order: priority, then age;

and per queue, `QUEUE#<queue>` / `KEY#<key>`: a key the queue has been used under (for
`GET /queues`; written once per key and process, an unconditional put).

- `acquire_slot` is one `UpdateItem`: `SET h_<run> = :now ADD held :1` if
  `attribute_not_exists(h_<run>) AND (attribute_not_exists(held) OR held < :limit)`. It
  creates the item on a key's first use. When the condition fails DynamoDB sends the item
  back (`ReturnValuesOnConditionCheckFailure`): a run that holds a slot already has it.
- `release_slot` is one `UpdateItem`: `REMOVE h_<run> ADD held :-1` if `h_<run>` exists,
  returning the item either way (how many hold one).
- `drop_holder` is the same guarded by `h_<run> = :acquired_at`.
- `slot_holders` is one strongly consistent `GetItem`.
- `add_waiter` is one `PutItem`, `remove_waiter` one `DeleteItem` (both idempotent).
- `waiters` is one strongly consistent `Query` with `begins_with(sk, "WAIT#")` and a Limit;
  `count_waiters` the same with `Select=COUNT` (paged, stopping at `limit`); the waiters
  ahead of a run, `sk < <its key>` filtered on the prefix.
- `queue_keys` one `Query` of `QUEUE#<queue>`; `get_runs` one ordered `BatchGetItem`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException

from durable.records import RunRecord
from durable.storage import _tables
from durable.storage.dynamodb.stats import _failed_item
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import CONDITION_FAILED, response_code, translated
from durable.storage.slots import waiter_of

_HOLDER = "h_"


class DynamoQueueSlots(DynamoTable):
    """The slot and waiter items: `acquire_slot`, `release_slot`, `drop_holder`,
    `slot_holders`, `add_waiter`, `remove_waiter`, `waiters`, `count_waiters`,
    `queue_keys`, `get_runs`."""

    def acquire_slot(
        self, queue: str, key: str | None, run_id: str, limit: int, now: datetime
    ) -> bool:
        with translated("acquire_slot"):
            self._record_queue_key(queue, key)
            try:
                self._slots_update(
                    queue,
                    key,
                    "SET #h = :now ADD held :one",
                    {"#h": _HOLDER + run_id},
                    {
                        ":now": {"S": now.isoformat()},
                        ":one": {"N": "1"},
                        ":limit": {"N": str(limit)},
                    },
                    "attribute_not_exists(#h) AND (attribute_not_exists(held) OR held < :limit)",
                )
            except (PynamoDBException, ClientError) as exc:
                if response_code(exc) != CONDITION_FAILED:
                    raise
                return _HOLDER + run_id in _failed_item(exc)
        return True

    def release_slot(self, queue: str, key: str | None, run_id: str) -> tuple[bool, int]:
        with translated("release_slot"):
            try:
                item = self._slots_update(
                    queue,
                    key,
                    "REMOVE #h ADD held :minus",
                    {"#h": _HOLDER + run_id},
                    {":minus": {"N": "-1"}},
                    "attribute_exists(#h)",
                )
            except (PynamoDBException, ClientError) as exc:
                if response_code(exc) != CONDITION_FAILED:
                    raise
                return False, _held(_failed_item(exc))
        return True, _held(item)

    def drop_holder(self, queue: str, key: str | None, run_id: str, acquired_at: datetime) -> bool:
        with translated("drop_holder"):
            try:
                self._slots_update(
                    queue,
                    key,
                    "REMOVE #h ADD held :minus",
                    {"#h": _HOLDER + run_id},
                    {":minus": {"N": "-1"}, ":at": {"S": acquired_at.isoformat()}},
                    "#h = :at",
                )
            except (PynamoDBException, ClientError) as exc:
                if response_code(exc) != CONDITION_FAILED:
                    raise
                return False
        return True

    def slot_holders(self, queue: str, key: str | None) -> dict[str, datetime]:
        with translated("slot_holders"):
            response = self._models.connection.dispatch(
                "GetItem",
                {
                    "TableName": self.table_name,
                    "Key": _key(_tables.queue_pk(queue, key), _tables.SLOTS_SK),
                    "ConsistentRead": True,
                },
            )
        item = response.get("Item") or {}
        return {
            name.removeprefix(_HOLDER): datetime.fromisoformat(value["S"])
            for name, value in item.items()
            if name.startswith(_HOLDER)
        }

    def add_waiter(self, queue: str, key: str | None, run_id: str, priority: int) -> None:
        with translated("add_waiter"):
            self._record_queue_key(queue, key)
            item = _key(_tables.queue_pk(queue, key), _tables.waiter_sk(priority, run_id))
            item["run_id"] = {"S": run_id}
            request = {"TableName": self.table_name, "Item": item}
            self._models.connection.dispatch("PutItem", request)
        self._wrote()

    def remove_waiter(self, queue: str, key: str | None, run_id: str, priority: int) -> None:
        with translated("remove_waiter"):
            self._models.connection.dispatch(
                "DeleteItem",
                {
                    "TableName": self.table_name,
                    "Key": _key(_tables.queue_pk(queue, key), _tables.waiter_sk(priority, run_id)),
                },
            )
        self._wrote()

    def waiters(self, queue: str, key: str | None, limit: int) -> list[tuple[int, str]]:
        if limit < 1:
            return []
        request = self._waiters_query(queue, key)
        request["Limit"] = limit
        with translated("waiters"):
            response = self._models.connection.dispatch("Query", request)
        return [
            waiter_of(item["sk"]["S"].removeprefix(_tables.WAITER_PREFIX))
            for item in response.get("Items", [])
        ]

    def count_waiters(
        self,
        queue: str,
        key: str | None,
        limit: int,
        before: tuple[int, str] | None = None,
    ) -> int:
        request = self._waiters_query(queue, key, before)
        request["Select"] = "COUNT"
        count = 0
        with translated("count_waiters"):
            while count < limit:
                request["Limit"] = limit - count
                response = self._models.connection.dispatch("Query", request)
                count += int(response.get("Count", 0))
                last = response.get("LastEvaluatedKey")
                if not last:
                    break
                request["ExclusiveStartKey"] = last
        return min(count, limit)

    def queue_keys(self, queue: str, limit: int) -> list[str | None]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _tables.queue_keys_pk(queue)}},
            "Limit": limit,
        }
        with translated("queue_keys"):
            response = self._models.connection.dispatch("Query", request)
        return [_tables.queue_key_of(item["sk"]["S"]) for item in response.get("Items", [])][:limit]

    def get_runs(self, run_ids: Collection[str]) -> list[RunRecord]:
        with translated("get_runs"):
            return self._runs_in_order(list(dict.fromkeys(run_ids)))

    def _waiters_query(
        self, queue: str, key: str | None, before: tuple[int, str] | None = None
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":pk": {"S": _tables.queue_pk(queue, key)},
            ":w": {"S": _tables.WAITER_PREFIX},
        }
        if before is None:
            return {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :w)",
                "ExpressionAttributeValues": values,
                "ConsistentRead": True,
            }
        # Strictly ahead of that run: the waiters below its key (the slots item, which
        # sorts below them too, filtered out).
        values[":own"] = {"S": _tables.waiter_sk(*before)}
        return {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk < :own",
            "FilterExpression": "begins_with(sk, :w)",
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }

    def _slots_update(
        self,
        queue: str,
        key: str | None,
        expression: str,
        names: dict[str, str],
        values: dict[str, Any],
        condition: str,
    ) -> dict[str, Any]:
        """One conditional `UpdateItem` of the key's slots item; the item after it."""
        response = self._models.connection.dispatch(
            "UpdateItem",
            {
                "TableName": self.table_name,
                "Key": _key(_tables.queue_pk(queue, key), _tables.SLOTS_SK),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ReturnValues": "ALL_NEW",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        )
        self._wrote()
        attributes: dict[str, Any] = response.get("Attributes") or {}
        return attributes

    def _record_queue_key(self, queue: str, key: str | None) -> None:
        """Record that `queue` is used under `key` (once per store: an idempotent put)."""
        recorded: set[tuple[str, str | None]] = self.__dict__.setdefault("_queue_keys", set())
        if (queue, key) in recorded:
            return
        self._models.connection.dispatch(
            "PutItem",
            {
                "TableName": self.table_name,
                "Item": _key(_tables.queue_keys_pk(queue), _tables.queue_key_sk(key)),
            },
        )
        self._wrote()
        recorded.add((queue, key))


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _held(item: dict[str, Any]) -> int:
    held = item.get("held")
    return int(held["N"]) if held is not None else 0
