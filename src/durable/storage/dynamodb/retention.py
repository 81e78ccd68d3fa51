"""Retention on DynamoDB: expired runs, deleting a run and all its items, the purge leases.

- `expired_runs` reads the expiry index as `durable.storage.dynamodb.listings` says.
- `delete_run` reads the run (a Query, as for the log), deletes its callbacks, then its log,
  inbox and every other item under its key with PynamoDB's batch writer (25 keys a request,
  unprocessed keys resent), then its idempotency claim (conditional on naming this run),
  and the run item last, so a purge cut short leaves the run in the expiry index and the
  next purge finishes it. One more pass then catches an event put meanwhile (see
  `durable.storage.dynamodb.inbox`).
- `claim_purge_lease` and `release_purge_lease` are one conditional write each, on the
  shard's lease item (`PURGE#<k>`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pynamodb.exceptions import PynamoDBException

from durable.errors import ConflictError
from durable.records import Checkpoint, CheckpointKind, RunRecord
from durable.serialization import loads
from durable.storage import _tables
from durable.storage.base import token_key
from durable.storage.dynamodb.codecs import run_record
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import (
    CONDITION_FAILED,
    index_of_this_layout,
    response_code,
    translated,
)


class DynamoRetention(DynamoTable):
    """Expired runs and their purge: `expired_runs`, `delete_run`, `claim_purge_lease`,
    `release_purge_lease`."""

    if TYPE_CHECKING:  # the log family's (`durable.storage.dynamodb.log`)

        def load_history(self, run_id: str, after_seq: int = 0) -> list[Checkpoint]: ...

    def expired_runs(
        self,
        before: datetime,
        limit: int = 100,
        *,
        shard: int | None = None,
        after: RunRecord | None = None,
    ) -> list[RunRecord]:
        with translated("expired_runs"), index_of_this_layout(self.table_name):
            return self._index_reader().expired_runs(before, limit, shard, after)

    def claim_purge_lease(self, shard: int, owner: str, now: datetime, until: datetime) -> bool:
        m = self._models.purge_lease
        lease = m(_tables.purge_lease_pk(shard), _tables.PURGE_LEASE_SK)
        free = m.pk.does_not_exist() | (m.lease_until <= now) | (m.owner == owner)
        with translated("claim_purge_lease"):
            try:
                lease.update(actions=[m.owner.set(owner), m.lease_until.set(until)], condition=free)
            except PynamoDBException as exc:
                if response_code(exc) == CONDITION_FAILED:
                    return False
                raise
        self._wrote()
        return True

    def release_purge_lease(self, shard: int, owner: str) -> None:
        m = self._models.purge_lease
        lease = m(_tables.purge_lease_pk(shard), _tables.PURGE_LEASE_SK)
        with translated("release_purge_lease"):
            try:
                lease.delete(condition=m.owner == owner)
            except PynamoDBException as exc:
                if response_code(exc) == CONDITION_FAILED:
                    return  # expired and taken by another purger, or released already
                raise
        self._wrote()

    def delete_run(self, run_id: str) -> int:
        pk = _tables.run_pk(run_id)
        m = self._models.run
        with translated("delete_run"):
            # A Query rather than a GetItem: the purge needs no other read permission.
            heads = list(m.query(pk, m.sk == _tables.RUN_SK, consistent_read=True))
            run = run_record(heads[0]) if heads else None
            if run is not None and not run.status.is_terminal:
                raise ConflictError(f"run {run_id} is {run.status}: only finished runs are deleted")
            # The run item goes last: until then the run stays in the expiry index, so a
            # delete cut short is finished by the next one.
            deleted = self._delete_callbacks(run_id)
            deleted += self._delete_partition_rest(pk)
            if run is None:
                return deleted
            if run.idempotency_key is not None:
                deleted += self._delete_claim(run.task_id, run.idempotency_key, run_id)
            response = self._models.connection.delete_item(
                self.table_name, pk, _tables.RUN_SK, return_values="ALL_OLD"
            )
            self._wrote()
            deleted += 1 if response.get("Attributes") else 0
            # An event put into the finished run after the first pass: its sender checks the
            # run again after the put, and finds it (so it keeps the event) only if that
            # check came before the delete above, in which case this pass sees the event.
            return deleted + self._delete_partition_rest(pk)

    def _delete_callbacks(self, run_id: str) -> int:
        """Delete the callbacks the run created (their tokens are in its log)."""
        return self._batch_delete(
            (_tables.callback_pk(token_key(loads(cp.value))), _tables.CALLBACK_SK)
            for cp in self.load_history(run_id)
            if cp.kind is CheckpointKind.CALLBACK_CREATED and cp.value is not None
        )

    def _delete_partition_rest(self, pk: str) -> int:
        """Delete every item under `pk` but the run item (its log and inbox); how many."""
        cp_model = self._models.checkpoint
        items = cp_model.query(
            pk,
            consistent_read=True,
            attributes_to_get=["pk", "sk"],
            page_size=self._page_size,
        )
        return self._batch_delete((item.pk, item.sk) for item in items if item.sk != _tables.RUN_SK)

    def _delete_claim(self, task_id: str, key: str, run_id: str) -> int:
        """Delete the claim on (task_id, key) if it still names `run_id`; 1 if it did."""
        idem_model = self._models.idempotency
        claim = idem_model(_tables.idempotency_pk(task_id, key), _tables.IDEM_SK)
        try:
            claim.delete(condition=idem_model.run_id == run_id)
        except PynamoDBException as exc:
            if response_code(exc) == CONDITION_FAILED:
                return 0  # gone already, or a later run's claim on the same key
            raise
        self._wrote()
        return 1
