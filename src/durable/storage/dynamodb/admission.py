"""Rate windows and debounce items on DynamoDB (`Admissions`, `durable.storage.admission`).

Keys (`durable.storage._tables`): `RATE#<queue>#<key>` / `SLOT#<slot>` holds one window's
count (`w` the window, `n` the places taken), `RATE#<queue>#<key>` / `HEAD` the head
window (`h`); `DEBOUNCE#<task>#<key>` / `DEBOUNCE` the pending run (`run_id`).

- `take_rate_place` is one `UpdateItem`: `ADD n 1` guarded by `w = :w AND n < :limit`.
  When the guard fails DynamoDB sends the slot back (`ReturnValuesOnConditionCheckFailure`,
  no read): a slot holding an older window (or none) is rolled over by one more write
  (`SET w = :w, n = 1`, guarded by the slot still holding what was seen; a racing roll
  makes the add try again); a full window, or a slot holding a newer one, is no room.
- `rate_head` is one consistent `GetItem`; `advance_rate_head` one `UpdateItem` guarded by
  the head being lower (a failed guard is fine: someone moved it further).
- `create_debounced_run` is one transaction: the run item (`attribute_not_exists`), its
  tag items, and the debounce item, guarded by it naming `previous` (or being absent).
- `replace_pending_run` is one conditional `UpdateItem` of the run item (QUEUED, no
  `started_at`, the `wake_token` given), reading the run only when the guard fails.
- `claimed_run` reads the idempotency claim, then its run (two consistent `GetItem`s).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from durable.errors import ConflictError, InfrastructureError, RunNotFoundError
from durable.records import RunRecord, RunStatus
from durable.storage import _tables
from durable.storage.admission import RATE_RING
from durable.storage.dynamodb.runs import DynamoRunRecords
from durable.storage.dynamodb.stats import _failed_item
from durable.storage.dynamodb.translation import (
    CONDITION_FAILED,
    TRANSACTION_ATTEMPTS,
    cancellation_codes,
    response_code,
    translated,
)

_ROLL_ATTEMPTS = 3  # a slot's rollover raced by other writers: the add is tried again


class DynamoAdmissions(DynamoRunRecords):
    """The rate window and debounce items, beside the runs (one class of the store)."""

    def take_rate_place(self, scope: str, window: int, limit: int) -> bool:
        key = {
            "pk": {"S": _tables.rate_pk(scope)},
            "sk": {"S": _tables.rate_slot_sk(window % RATE_RING)},
        }
        with translated("take_rate_place"):
            for _ in range(_ROLL_ATTEMPTS):
                seen = self._rate_update(
                    key,
                    "ADD #n :one",
                    "#w = :w AND #n < :limit",
                    {":one": {"N": "1"}, ":w": {"N": str(window)}, ":limit": {"N": str(limit)}},
                )
                if seen is None:
                    return True
                held = int(seen["w"]["N"]) if "w" in seen else None
                if held is not None and held >= window:
                    if held > window or int(seen.get("n", {"N": "0"})["N"]) >= limit:
                        return False
                    continue  # the window had room after all: a racing add, try again
                guard = "attribute_not_exists(#w)" if held is None else "#w = :held"
                values: dict[str, Any] = {":one": {"N": "1"}, ":w": {"N": str(window)}}
                if held is not None:
                    values[":held"] = {"N": str(held)}
                if self._rate_update(key, "SET #w = :w, #n = :one", guard, values) is None:
                    return True
        return False  # lost every race for the slot: no room this time

    def _rate_update(
        self, key: dict[str, Any], expression: str, condition: str, values: dict[str, Any]
    ) -> dict[str, Any] | None:
        """One guarded `UpdateItem` of a slot: None when written, else the item as found."""
        try:
            self._models.connection.dispatch(
                "UpdateItem",
                {
                    "TableName": self.table_name,
                    "Key": key,
                    "UpdateExpression": expression,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#w": "w", "#n": "n"},
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                },
            )
        except (PynamoDBException, ClientError) as exc:
            if response_code(exc) != CONDITION_FAILED:
                raise
            return _failed_item(exc)
        self._wrote()
        return None

    def rate_head(self, scope: str) -> int | None:
        with translated("rate_head"):
            response = self._models.connection.dispatch(
                "GetItem",
                {
                    "TableName": self.table_name,
                    "Key": {
                        "pk": {"S": _tables.rate_pk(scope)},
                        "sk": {"S": _tables.RATE_HEAD_SK},
                    },
                    "ConsistentRead": True,
                },
            )
        item = response.get("Item") or {}
        return int(item["h"]["N"]) if "h" in item else None

    def advance_rate_head(self, scope: str, window: int) -> None:
        with translated("advance_rate_head"):
            try:
                self._models.connection.dispatch(
                    "UpdateItem",
                    {
                        "TableName": self.table_name,
                        "Key": {
                            "pk": {"S": _tables.rate_pk(scope)},
                            "sk": {"S": _tables.RATE_HEAD_SK},
                        },
                        "UpdateExpression": "SET #h = :h",
                        "ConditionExpression": "attribute_not_exists(#h) OR #h < :h",
                        "ExpressionAttributeNames": {"#h": "h"},
                        "ExpressionAttributeValues": {":h": {"N": str(window)}},
                    },
                )
            except (PynamoDBException, ClientError) as exc:
                if response_code(exc) != CONDITION_FAILED:
                    raise
                return  # moved further by another trigger
        self._wrote()

    def debounced_run(self, task_id: str, key: str) -> str | None:
        model = self._models.idempotency
        with translated("debounced_run"):
            try:
                item = model.get(
                    _tables.debounce_pk(task_id, key), _tables.DEBOUNCE_SK, consistent_read=True
                )
            except model.DoesNotExist:
                return None
        return str(item.run_id)

    def create_debounced_run(self, run: RunRecord, key: str, previous: str | None) -> None:
        if run.idempotency_key is not None:
            raise ValueError("a debounced run has no idempotency key")
        model = self._models.idempotency
        pending = model(pk=_tables.debounce_pk(run.task_id, key), sk=_tables.DEBOUNCE_SK)
        pending.run_id = run.run_id
        guard = model.pk.does_not_exist() if previous is None else model.run_id == previous
        item = self._run_item(run)
        tags = [self._tag_item(run, tag) for tag in run.tags]
        with translated("create_debounced_run"):
            for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
                try:
                    with TransactWrite(connection=self._models.connection) as transaction:
                        transaction.save(pending, condition=guard)
                        transaction.save(item, condition=self._models.run.pk.does_not_exist())
                        for tag in tags:
                            transaction.save(tag)
                except TransactWriteError as exc:
                    codes = cancellation_codes(exc)
                    if not codes:
                        raise
                    if "ConditionalCheckFailed" in codes:
                        raise ConflictError(
                            f"debounce key {key!r} of {run.task_id} moved on, or run "
                            f"{run.run_id} exists"
                        ) from exc
                    if attempt < TRANSACTION_ATTEMPTS:
                        continue  # raced another transaction: try again
                    raise InfrastructureError(f"run {run.run_id} was not created: {exc}") from exc
                self._wrote()
                return

    def replace_pending_run(self, run_id: str, token: str, changes: Mapping[str, Any]) -> RunRecord:
        m = self._models.run
        condition = (
            m.pk.exists()
            & (m.status == str(RunStatus.QUEUED))
            & (m.wake_token == token)
            & m.started_at.does_not_exist()
        )
        updated = self._try_update(run_id, self._change_actions(run_id, changes), condition)
        if updated is not None:
            return updated
        current = self.get_run(run_id)
        if current is None:
            raise RunNotFoundError(run_id)
        raise ConflictError(f"run {run_id} is no longer pending ({current.status})")

    def claimed_run(self, task_id: str, key: str, at: datetime) -> RunRecord | None:
        model = self._models.idempotency
        with translated("claimed_run"):
            try:
                claim = model.get(
                    _tables.idempotency_pk(task_id, key), _tables.IDEM_SK, consistent_read=True
                )
            except model.DoesNotExist:
                return None
        if claim.expires_at is not None and claim.expires_at <= at:
            return None
        return self.get_run(str(claim.run_id))
