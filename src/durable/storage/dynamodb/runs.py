"""Runs on DynamoDB: creating, reading, leasing and updating the run item (`RUN#<id>`, `RUN`).

- `create_run` with an idempotency key or tags is one transaction: the run item
  (`attribute_not_exists`), its tag items (`TAG#<tag>`, in its new partition), and the
  claim item, written if there is none or the one there expired by the run's creation
  (`expires_at`, replaced atomically); when it is cancelled, the claim is read back and
  its run returned. Without either it is one conditional put.
  It is the only transaction: transactions touch only items no worker writes yet, so they
  never make a worker's own write fail with `TransactionConflict`.
- `acquire_lease` and `update_run` are one conditional `UpdateItem` returning the new item;
  only when the condition fails is the run read again, to tell "no such run" from "conflict".
- The index hash keys of a run (sharded, see `_tables`) are written when it is created;
  `update_run` writes `status_pk` with the status, `due_pk` with `wake_parked` (its key
  space, `durable.storage.timers`) and nothing else of the keys, so an update changes only
  the indexes whose attributes it changes.
- `get_run` reads strongly consistent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from durable.errors import ConflictError, InfrastructureError, RunNotFoundError
from durable.records import TERMINAL_STATUSES, RunRecord, RunStatus
from durable.storage import _tables
from durable.storage._items import RunItem, TagItem
from durable.storage.dynamodb.codecs import attribute_value, run_record
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import (
    CONDITION_FAILED,
    TRANSACTION_ATTEMPTS,
    cancellation_codes,
    response_code,
    translated,
)

_LIVE_STATUSES = sorted(str(status) for status in RunStatus if status not in TERMINAL_STATUSES)
# Fields `update_run` may change: every RunRecord field but the key.
# (Tags are fixed at creation: their items are in the index.)
_UPDATABLE = frozenset(field.name for field in fields(RunRecord)) - {"run_id", "tags"}
# Fields stored as an index key rather than an attribute of their own: `wake_parked` is
# the `due_pk` key space (`durable.storage.timers`).
_AS_KEYS = frozenset({"wake_parked"})


class DynamoRunRecords(DynamoTable):
    """The run items: `create_run`, `get_run`, `acquire_lease`, `update_run`."""

    def create_run(self, run: RunRecord) -> tuple[RunRecord, bool]:
        item = self._run_item(run)
        run_model = self._models.run
        tags = [self._tag_item(run, tag) for tag in run.tags]
        if run.idempotency_key is None and not tags:
            self._save_new(
                item, run_model.pk.does_not_exist(), "create_run", f"run {run.run_id} exists"
            )
            return run, True

        claim = None
        idem_model = self._models.idempotency
        if run.idempotency_key is not None:
            claim = idem_model(
                pk=_tables.idempotency_pk(run.task_id, run.idempotency_key),
                sk=_tables.IDEM_SK,
                run_id=run.run_id,
                expires_at=run.idempotency_expires_at,
            )
        with translated("create_run"):
            for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
                try:
                    with TransactWrite(connection=self._models.connection) as transaction:
                        transaction.save(item, condition=run_model.pk.does_not_exist())
                        for tag in tags:
                            transaction.save(tag)  # in the new run's partition: new too
                        if claim is not None:
                            # Free, or held by a claim that expired by this run's creation:
                            # replaced in the same step, so of two triggers racing after
                            # the expiry one wins and the other finds its run.
                            transaction.save(
                                claim,
                                condition=idem_model.pk.does_not_exist()
                                | (idem_model.expires_at <= run.created_at),
                            )
                except TransactWriteError as exc:
                    codes = cancellation_codes(exc)
                    if not codes:
                        raise  # not cancelled: throttled, 5xx... (translated: infrastructure)
                    if claim is not None:
                        existing = self._claimed_run(claim.pk, run)
                        if existing is not None:
                            return existing, False
                    if codes[:1] == ["ConditionalCheckFailed"]:
                        raise ConflictError(f"run {run.run_id} exists") from exc
                    # Raced a transaction that did not commit (TransactionConflict: botocore
                    # does not retry those), or the claim that stopped this one was purged
                    # with its expired run since (or expired since): try again, the key may
                    # be free now.
                    if attempt < TRANSACTION_ATTEMPTS:
                        continue
                    raise InfrastructureError(f"run {run.run_id} was not created: {exc}") from exc
                self._wrote()
                return run, True
        raise AssertionError("unreachable")  # pragma: no cover

    def _tag_item(self, run: RunRecord, tag: str) -> TagItem:
        return self._models.tag(
            _tables.run_pk(run.run_id),
            _tables.tag_sk(tag),
            task_pk=_tables.tag_index_pk(tag, self.shard_of(run.run_id)),
            created_key=run.run_id,
        )

    def _claimed_run(self, claim_pk: str, new: RunRecord) -> RunRecord | None:
        """The run an idempotency claim points to, if the claim exists and holds at `new`'s
        creation (an expired one is replaced on the next try)."""
        idem_model = self._models.idempotency
        try:
            claim = idem_model.get(claim_pk, _tables.IDEM_SK, consistent_read=True)
        except idem_model.DoesNotExist:
            return None
        if claim.expires_at is not None and claim.expires_at <= new.created_at:
            return None
        return self.get_run(claim.run_id)

    def get_run(self, run_id: str) -> RunRecord | None:
        run_model = self._models.run
        with translated("get_run"):
            try:
                item = run_model.get(_tables.run_pk(run_id), _tables.RUN_SK, consistent_read=True)
            except run_model.DoesNotExist:
                return None
        return run_record(item)

    def acquire_lease(self, run_id: str, owner: str, now: datetime, expires: datetime) -> RunRecord:
        m = self._models.run
        lease_free = (
            m.lease_owner.does_not_exist()
            | m.lease_expires.does_not_exist()
            | (m.lease_expires <= now)
        )
        condition = m.pk.exists() & m.status.is_in(*_LIVE_STATUSES) & lease_free
        actions: list[Action] = [
            m.status.set(str(RunStatus.RUNNING)),
            m.lease_owner.set(owner),
            m.lease_expires.set(expires),
            m.status_pk.set(_tables.status_pk(RunStatus.RUNNING, self.shard_of(run_id))),
            m.updated_at.set(now),
            m.started_at.set(m.started_at | now),  # if_not_exists: the first start stays
            m.crash_streak.add(1),  # the worker's persist sets it back to 0
            # Un-parked (`durable.storage.timers`): the lease's expiry is its wake-up now.
            m.due_pk.set(_tables.due_pk(self.shard_of(run_id))),
        ]
        # A wake_at at or before the lease's expiry stays: the sweeper meets the run by then
        # anyway (and follows a live lease, `durable.services.sweeper`), and the due index is not
        # written. Only when that does not hold is the run read, then wake_at moved too.
        leased = self._try_update(run_id, actions, condition & (m.wake_at <= expires))
        if leased is not None:
            return leased
        current = self._require(run_id)
        lease_taken = current.lease_owner is not None and (
            current.lease_expires is not None and current.lease_expires > now
        )
        if current.status.is_terminal or lease_taken:
            raise ConflictError(f"run {run_id} ({current.status}, lease {current.lease_owner})")
        return self._conditional_update(
            run_id, [*actions, m.wake_at.set(expires)], condition, "is leased or finished"
        )

    def update_run(
        self,
        run_id: str,
        changes: Mapping[str, Any],
        *,
        expect_owner: str | None = None,
        expect_status: Collection[RunStatus] | None = None,
        expect_waiting_for: str | None = None,
        expect_wake_by: datetime | None = None,
        expect_lease_until: datetime | None = None,
    ) -> RunRecord:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise TypeError(f"update_run cannot change {sorted(unknown)}")
        m = self._models.run
        condition = m.pk.exists()
        if expect_owner is not None:
            condition &= m.lease_owner == expect_owner
        if expect_status is not None:
            if not expect_status:
                # No status can match an empty set; DynamoDB rejects an empty IN list.
                self._require(run_id)
                raise ConflictError(f"run {run_id}: no status is expected")
            condition &= m.status.is_in(*sorted(str(status) for status in expect_status))
        if expect_waiting_for is not None:
            condition &= m.waiting_for == expect_waiting_for
        if expect_wake_by is not None:
            condition &= m.wake_at <= expect_wake_by
        if expect_lease_until is not None:
            condition &= m.lease_expires >= expect_lease_until
        actions = self._change_actions(run_id, changes) or [m.run_id.set(run_id)]
        return self._conditional_update(run_id, actions, condition, "did not match")

    def _change_actions(self, run_id: str, changes: Mapping[str, Any]) -> list[Action]:
        """The update's actions for `changes`, with the index keys that follow them: the
        status index's key with a new status, the due index's with `wake_parked`."""
        m = self._models.run
        status_key = None
        if changes.get("status") is not None:
            status_key = _tables.status_pk(str(RunStatus(changes["status"])), self.shard_of(run_id))
        actions = _update_actions(m, changes, status_key)
        if "wake_parked" in changes:
            parked = bool(changes["wake_parked"])
            actions.append(m.due_pk.set(_tables.due_key(self.shard_of(run_id), parked)))
        return actions

    def _conditional_update(
        self, run_id: str, actions: list[Action], condition: Condition, why: str
    ) -> RunRecord:
        updated = self._try_update(run_id, actions, condition)
        if updated is None:
            # Re-read only on conflict: was the run missing, or its state not as expected?
            current = self._require(run_id)
            raise ConflictError(
                f"run {run_id} ({current.status}, lease {current.lease_owner}) {why}"
            )
        return updated

    def _try_update(
        self, run_id: str, actions: list[Action], condition: Condition
    ) -> RunRecord | None:
        """One conditional `UpdateItem`: the run as stored after it, None if the condition
        did not hold."""
        m = self._models.run
        item = m(_tables.run_pk(run_id), _tables.RUN_SK)
        with translated("update_run"):
            try:
                item.update(actions=actions, condition=condition)
            except PynamoDBException as exc:
                if response_code(exc) == CONDITION_FAILED:
                    return None
                raise
        self._wrote()
        return run_record(item)

    def _require(self, run_id: str) -> RunRecord:
        run = self.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    def _run_item(self, run: RunRecord) -> RunItem:
        item = self._models.run(_tables.run_pk(run.run_id), _tables.RUN_SK)
        for name in (_UPDATABLE - _AS_KEYS) | {"run_id", "tags"}:
            value = attribute_value(name, getattr(run, name))
            if value is not None:
                setattr(item, name, value)
        # Every index hash key, from the start: the sparse indexes (due, expiry) take the
        # run in or out through their range keys alone.
        shard = self.shard_of(run.run_id)
        item.created_key = run.run_id
        item.all_pk = _tables.all_runs_pk(shard)
        item.task_pk = _tables.task_pk(run.task_id, shard)
        item.status_pk = _tables.status_pk(str(RunStatus(run.status)), shard)
        item.due_pk = _tables.due_key(shard, run.wake_parked)
        item.expiry_pk = _tables.expiry_pk(shard)
        return item


def _update_actions(
    m: type[RunItem], changes: Mapping[str, Any], status_key: str | None
) -> list[Action]:
    """The update's actions: each change, and the status index's key with a new status.

    No other index key is written here (`due_pk` follows `wake_parked`, `_change_actions`):
    the other hash keys never change, and the sparse indexes
    (due, expiry) follow `wake_at` and `expires_at` themselves, their range keys.
    """
    actions: list[Action] = []
    for name, value in changes.items():
        if name in _AS_KEYS:
            continue  # written by the caller, as its key
        attribute = getattr(m, name)
        stored = attribute_value(name, value)
        actions.append(attribute.remove() if stored is None else attribute.set(stored))
    if status_key is not None:
        actions.append(m.status_pk.set(status_key))
    return actions
