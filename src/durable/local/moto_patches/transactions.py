"""Patches 1 and 2: DynamoDB transactions all-or-nothing *and* isolated, without table copies.

1. One DynamoDB request at a time (`DynamoHandler.call_action` under a lock). The server
   is threaded; without it, a transaction's writes interleave with other requests, which
   then see half a transaction, and moto's own rollback (below) would put back a copy of
   the table taken before the transaction, erasing every write other threads made in the
   meantime. moto's work is pure Python under the GIL, so the lock costs no parallelism.
   With it, a transaction is all-or-nothing *and* isolated, as DynamoDB's are.

2. `TransactWriteItems` without the whole-table copies. moto deep-copies every table a
   transaction names before it starts, to restore on failure: O(table) per transaction,
   and the run store's `create_run` with an idempotency key is a transaction. Here the
   backup is per item: before each action, a deep copy of the one item it targets (or
   "absent"); on failure those items, and only those, are put back. The conditions, the
   order of checks, the errors (`TransactionCanceledException` with one reason per action,
   validation errors re-raised) are moto's, copied from its method. Not restored: stream
   records of the rolled-back writes (moto's rollback dropped those too, by restoring the
   whole table object; the dev stack's table has no stream).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from durable.local.moto_patches.originals import original, patch

_dynamodb_lock = threading.RLock()


def install() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    patch(DynamoHandler, "call_action", _serialized_call_action)
    patch(DynamoDBBackend, "transact_write_items", _transact_write_items)


# -- 1. one DynamoDB request at a time ---------------------------------------------------


def _serialized_call_action(self: Any) -> Any:
    from moto.dynamodb.responses import DynamoHandler

    with _dynamodb_lock:
        return original(DynamoHandler, "call_action")(self)


# -- 2. transactions with a per-item backup ----------------------------------------------


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's `DynamoDBBackend.transact_write_items`, backing up items, not tables."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    # (table, hash key, range key, the item before the transaction or None)
    backup: list[tuple[Any, Any, Any, Any]] = []
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    def back_up(table_name: str, key: dict[str, Any]) -> None:
        table = self.get_table(table_name)
        hash_key, range_key = self.get_keys_value(table, key)
        before = table.get_item(hash_key, range_key)
        backup.append((table, hash_key, range_key, copy.deepcopy(before)))

    def roll_back() -> None:
        for table, hash_key, range_key, before in reversed(backup):
            _restore(table, hash_key, range_key, before)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if op_type != "ConditionCheck":
                back_up(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression, expression_attribute_names, expression_attribute_values
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            roll_back()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore[arg-type]  # moto's tuple, copied as moto types it
        except Exception as e:
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore[arg-type]  # moto's tuple, copied as moto types it

    if any(code is not None for code, _, _ in errors):
        roll_back()
        raise TransactionCanceledException(errors)


def _restore(table: Any, hash_key: Any, range_key: Any, before: Any) -> None:
    """Put one item back as it was (`before`), or remove it if it did not exist."""
    if range_key is not None:
        partition = table.items[hash_key]
        if before is None:
            partition.pop(range_key, None)
        else:
            partition[range_key] = before
    elif before is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = before
