"""Parked timers on DynamoDB (`durable.storage.timers`): the `due` index's `TIMER#<k>` keys.

- `parked_timers` queries `TIMER#<k>` of every shard, one after another, merged by
  (`wake_at`, run id), then reads the runs with one consistent `BatchGetItem`, as
  `due_runs` reads `WAKE#<k>` (`durable.storage._listings`).
- `set_timer_parked` is one conditional `UpdateItem` of `due_pk` alone: on the key space
  it leaves, and on `wake_at` and `wake_token` as the caller read them.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import PynamoDBException

from durable.records import RunRecord
from durable.storage import _tables
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import (
    CONDITION_FAILED,
    index_of_this_layout,
    response_code,
    translated,
)


class DynamoParkedTimers(DynamoTable):
    """`parked_timers`, `set_timer_parked`."""

    def parked_timers(
        self, before: datetime, limit: int = 100, after: RunRecord | None = None
    ) -> list[RunRecord]:
        with translated("parked_timers"), index_of_this_layout(self.table_name):
            return self._index_reader().parked_timers(before, limit, after)

    def set_timer_parked(
        self,
        run_id: str,
        parked: bool,
        *,
        wake_at: datetime | None,
        wake_token: str | None,
    ) -> bool:
        m = self._models.run
        shard = self.shard_of(run_id)
        condition = m.due_pk == _tables.due_key(shard, not parked)
        condition &= m.wake_at.does_not_exist() if wake_at is None else m.wake_at == wake_at
        if wake_token is None:
            condition &= m.wake_token.does_not_exist()
        else:
            condition &= m.wake_token == wake_token
        item = m(_tables.run_pk(run_id), _tables.RUN_SK)
        action = m.due_pk.set(_tables.due_key(shard, parked))
        with translated("set_timer_parked"):
            try:
                item.update(actions=[action], condition=condition)
            except PynamoDBException as exc:
                if response_code(exc) == CONDITION_FAILED:
                    return False  # moved on, or gone (`due_pk` then does not exist)
                raise
        self._wrote()
        return True
