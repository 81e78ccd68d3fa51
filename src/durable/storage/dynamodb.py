"""`DynamoDBRunStore`: the `RunStore` port on one DynamoDB table, through PynamoDB.

Behaves exactly like `MemoryRunStore` (both pass `tests/contract`); the table layout is in
`durable.storage._tables`. Every state change is one conditional write, so DynamoDB itself
arbitrates between racing invocations:

    worker A                          DynamoDB                          worker B
    load_history -> 7 entries                                           load_history -> 7 entries
    put CP#0000000008  ─────────────► attribute_not_exists(sk): ok
                                      attribute_not_exists(sk): fails ◄─ put CP#0000000008
                                                                        ConflictError: B stops

- `create_run` with an idempotency key is one transaction (run item + claim item, both
  `attribute_not_exists`); when it is cancelled, the claim is read back and its run returned.
  It is the only transaction: transactions touch only items no worker writes yet, so they
  never make a worker's own write fail with `TransactionConflict`.
- `put_inbox` checks that the run exists, then makes one conditional put (never overwrites).
- `append_checkpoint` is exactly one conditional put. It does not check that the run exists
  (that would take a second read or a transaction on the hot path); the worker only appends
  to runs it has leased.
- `acquire_lease` and `update_run` are one conditional `UpdateItem` returning the new item;
  only when the condition fails is the run read again, to tell "no such run" from "conflict".
- The index hash keys of a run (sharded, see `_tables`) are written when it is created;
  `update_run` writes `status_pk` with the status and nothing else of the keys, so an
  update changes only the indexes whose attributes it changes.
- `delete_run` reads the run (a Query, as for the log), deletes its
  log and inbox with PynamoDB's batch writer (25 keys a request, unprocessed keys resent), then
  its idempotency claim (conditional on naming this run), and the run item last, so a
  purge cut short leaves the run in the expiry index and the next purge finishes it. One
  more pass then catches an event put meanwhile (see `put_inbox`).
- Listings (`list_runs`, `due_runs`, `expired_runs`, in `durable.storage._listings`)
  query every shard of an index, merge them (`durable.storage._shards`), then read the
  runs of the page with one consistent `BatchGetItem`, keeping the index's order; a run
  deleted meanwhile, or no longer matching (another status, no longer due), is left out.
  A listing queries its shards concurrently (about one round trip, whatever the count);
  due and expired runs query them one after another.
  The indexes are eventually consistent in AWS: a run created a moment ago may be missing
  for a moment.
  `get_run`, `load_history` and `list_inbox` read strongly consistent.
- The shard count is the table's (its config item, read once per store; `DEFAULT_SHARDS`
  without one). A table of the first layout lacks the indexes: a listing raises
  `TableLayoutError`, which says to run `durable migrate`.

Nothing but `durable.errors` escapes: PynamoDB and botocore errors are translated here.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from durable.aws import endpoint_url, region_name
from durable.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    ConflictError,
    DurableError,
    InfrastructureError,
    InputError,
    RunNotFoundError,
    TableLayoutError,
)
from durable.records import (
    TERMINAL_STATUSES,
    BatchItemResult,
    BatchRecord,
    Checkpoint,
    CheckpointKind,
    ErrorInfo,
    InboxEvent,
    RunRecord,
    RunStatus,
)
from durable.serialization import loads
from durable.settings import Settings
from durable.storage import _shards, _tables
from durable.storage._listings import IndexReader, shard_query_pool
from durable.storage._tables import (
    CheckpointItem,
    ErrorMap,
    InboxItem,
    RunItem,
    TableModels,
    make_models,
)
from durable.storage.base import RunPage, token_key

_CONDITION_FAILED = "ConditionalCheckFailedException"
_LIVE_STATUSES = sorted(str(status) for status in RunStatus if status not in TERMINAL_STATUSES)
# Fields `update_run` may change: every RunRecord field but the key.
_INDEXES = (
    _tables.TASK_INDEX,
    _tables.STATUS_INDEX,
    _tables.ALL_RUNS_INDEX,
    _tables.DUE_INDEX,
    _tables.EXPIRY_INDEX,
)
_UPDATABLE = frozenset(field.name for field in fields(RunRecord)) - {"run_id"}
# A transaction cancelled only because it raced another transaction may simply be retried
# (botocore retries throttling and 5xx, not TransactionConflict): this many tries in all,
# the n-th after n times this pause.
_TRANSACTION_ATTEMPTS = 5
_CONFLICT_BACKOFF = 0.02


class DynamoDBRunStore:
    """Runs, logs and inboxes in one DynamoDB table (see `durable.storage._tables`).

    `page_size` caps the items per query request (DynamoDB's own cap is 1 MB); the store
    always pages through to the end, so it only matters for tests and tuning.
    """

    def __init__(
        self,
        table_name: str,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        page_size: int | None = None,
    ) -> None:
        self._models: TableModels = make_models(table_name, region, endpoint_url)
        self._page_size = page_size
        self._lock = threading.Lock()
        self._index_shards: int | None = None
        self.writes = 0  # successful write requests, counted for tests and benchmarks

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDBRunStore:
        return cls(
            settings.table_name,
            region=region_name(settings),
            endpoint_url=endpoint_url(settings, "dynamodb"),
        )

    @property
    def table_name(self) -> str:
        return self._models.table_name

    @property
    def index_shards(self) -> int:
        """How many shards each index key has: the table's config item says, read once."""
        if self._index_shards is None:
            config_model = self._models.config
            with _translated("read the table's config"):
                try:
                    config = config_model.get(
                        _tables.CONFIG_PK, _tables.CONFIG_SK, consistent_read=True
                    )
                except config_model.DoesNotExist:
                    config = None
            if config is None:
                shards = _tables.DEFAULT_SHARDS
            elif int(config.layout) != _tables.LAYOUT_VERSION:
                raise TableLayoutError(
                    self.table_name,
                    f"layout {int(config.layout)}, this version of durable reads "
                    f"{_tables.LAYOUT_VERSION}",
                )
            else:
                shards = int(config.index_shards)
            self._index_shards = shards
        return self._index_shards

    def shard_of(self, run_id: str) -> int:
        """The index shard of a run in this table."""
        return _shards.shard_of(run_id, self.index_shards)

    def _wrote(self) -> None:
        with self._lock:
            self.writes += 1

    # -- runs ---------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> tuple[RunRecord, bool]:
        item = self._run_item(run)
        run_model = self._models.run
        if run.idempotency_key is None:
            self._save_new(
                item, run_model.pk.does_not_exist(), "create_run", f"run {run.run_id} exists"
            )
            return run, True

        idem_model = self._models.idempotency
        claim = idem_model(
            pk=_tables.idempotency_pk(run.task_id, run.idempotency_key),
            sk=_tables.IDEM_SK,
            run_id=run.run_id,
        )
        with _translated("create_run"):
            for attempt in range(1, _TRANSACTION_ATTEMPTS + 1):
                try:
                    with TransactWrite(connection=self._models.connection) as transaction:
                        transaction.save(item, condition=run_model.pk.does_not_exist())
                        transaction.save(claim, condition=idem_model.pk.does_not_exist())
                except TransactWriteError as exc:
                    codes = _cancellation_codes(exc)
                    if not codes:
                        raise  # not cancelled: throttled, 5xx... (translated: infrastructure)
                    existing = self._claimed_run(claim.pk)
                    if existing is not None:
                        return existing, False
                    if codes[:1] == ["ConditionalCheckFailed"]:
                        raise ConflictError(f"run {run.run_id} exists") from exc
                    # Raced a transaction that did not commit (TransactionConflict: botocore
                    # does not retry those), or the claim that stopped this one was purged
                    # with its expired run since: try again, the key may be free now.
                    if attempt < _TRANSACTION_ATTEMPTS:
                        continue
                    raise InfrastructureError(f"run {run.run_id} was not created: {exc}") from exc
                self._wrote()
                return run, True
        raise AssertionError("unreachable")  # pragma: no cover

    def _claimed_run(self, claim_pk: str) -> RunRecord | None:
        """The run an idempotency claim points to, if the claim exists."""
        idem_model = self._models.idempotency
        try:
            claim = idem_model.get(claim_pk, _tables.IDEM_SK, consistent_read=True)
        except idem_model.DoesNotExist:
            return None
        return self.get_run(claim.run_id)

    def get_run(self, run_id: str) -> RunRecord | None:
        run_model = self._models.run
        with _translated("get_run"):
            try:
                item = run_model.get(_tables.run_pk(run_id), _tables.RUN_SK, consistent_read=True)
            except run_model.DoesNotExist:
                return None
        return _run_record(item)

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
        ]
        # A wake_at at or before the lease's expiry stays: the sweeper meets the run by then
        # anyway (and follows a live lease, `durable.sweeper`), and the due index is not
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
        status_key = None
        if changes.get("status") is not None:
            status_key = _tables.status_pk(str(RunStatus(changes["status"])), self.shard_of(run_id))
        actions = _update_actions(m, changes, status_key) or [m.run_id.set(run_id)]
        return self._conditional_update(run_id, actions, condition, "did not match")

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
        with _translated("update_run"):
            try:
                item.update(actions=actions, condition=condition)
            except PynamoDBException as exc:
                if _response_code(exc) == _CONDITION_FAILED:
                    return None
                raise
        self._wrote()
        return _run_record(item)

    def _save_new(self, item: Model, condition: Condition, operation: str, taken: str) -> None:
        """One conditional put; `ConflictError(taken)` when the condition fails."""
        with _translated(operation):
            try:
                item.save(condition=condition)
            except PynamoDBException as exc:
                if _response_code(exc) == _CONDITION_FAILED:
                    raise ConflictError(taken) from exc
                raise
        self._wrote()

    def _require(self, run_id: str) -> RunRecord:
        run = self.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    def _run_item(self, run: RunRecord) -> RunItem:
        item = self._models.run(_tables.run_pk(run.run_id), _tables.RUN_SK)
        for name in _UPDATABLE | {"run_id"}:
            value = _attribute_value(name, getattr(run, name))
            if value is not None:
                setattr(item, name, value)
        # Every index hash key, from the start: the sparse indexes (due, expiry) take the
        # run in or out through their range keys alone.
        shard = self.shard_of(run.run_id)
        item.created_key = run.run_id
        item.all_pk = _tables.all_runs_pk(shard)
        item.task_pk = _tables.task_pk(run.task_id, shard)
        item.status_pk = _tables.status_pk(str(RunStatus(run.status)), shard)
        item.due_pk = _tables.due_pk(shard)
        item.expiry_pk = _tables.expiry_pk(shard)
        return item

    # -- the log ------------------------------------------------------------------------

    def append_checkpoint(self, run_id: str, checkpoint: Checkpoint) -> None:
        cp_model = self._models.checkpoint
        item = cp_model(
            _tables.run_pk(run_id),
            _tables.checkpoint_sk(checkpoint.seq),
            seq=checkpoint.seq,
            kind=str(checkpoint.kind),
            op=checkpoint.op,
            name=checkpoint.name,
            task_attempt=checkpoint.task_attempt,
            at=checkpoint.at,
            step_attempt=checkpoint.step_attempt,
            value=checkpoint.value,
            error=_error_map(checkpoint.error),
            cp_wake_at=checkpoint.wake_at,
            inbox_id=checkpoint.inbox_id,
        )
        self._save_new(
            item,
            cp_model.sk.does_not_exist(),
            "append_checkpoint",
            f"run {run_id}: log slot {checkpoint.seq} is taken",
        )

    def load_history(self, run_id: str, after_seq: int = 0) -> list[Checkpoint]:
        cp_model = self._models.checkpoint
        # The slots after `after_seq`: a range within the CP# prefix (a bare `sk >` would
        # run on into the run's other items, EVENTID#, INBOX#, ...).
        slots = cp_model.sk.between(
            _tables.checkpoint_sk(after_seq + 1), _tables.checkpoint_sk(_tables.MAX_SEQ)
        )
        with _translated("load_history"):
            items = cp_model.query(
                _tables.run_pk(run_id),
                slots,
                consistent_read=True,
                page_size=self._page_size,
            )
            return [_checkpoint(item) for item in items]

    # -- inbox --------------------------------------------------------------------------

    def put_inbox(self, event: InboxEvent) -> None:
        inbox_model = self._models.inbox
        # A read, then one conditional put. Not a transaction with a condition check on the
        # run item: that would make the worker's own writes to the run item fail with
        # TransactionConflict while an event is being stored. Only finished runs are ever
        # deleted, an hour at least after they ended (`durable.sweeper.purge_expired`), so a
        # run seen unfinished here cannot vanish before the put lands. A finished one can
        # (a late callback): it is read again after the put, and the event taken back if the
        # run was purged meanwhile, so that nothing is left behind.
        run = self._require(event.run_id)
        item = inbox_model(
            _tables.run_pk(event.run_id),
            _tables.inbox_sk(event.inbox_id),
            run_id=event.run_id,
            inbox_id=event.inbox_id,
            name=event.name,
            data=event.data,
            received_at=event.received_at,
        )
        self._save_new(
            item,
            inbox_model.sk.does_not_exist(),
            "put_inbox",
            f"run {event.run_id}: inbox event {event.inbox_id} exists",
        )
        if run.status.is_terminal and self.get_run(event.run_id) is None:
            with _translated("put_inbox"):
                item.delete()
                raise RunNotFoundError(event.run_id)

    def claim_event_id(self, run_id: str, event_id: str, inbox_id: str) -> str:
        """One conditional put beside the run's inbox; on a repeat, the id on record."""
        self._require(run_id)
        m = self._models.event_id
        digest = hashlib.sha256(event_id.encode("utf-8")).hexdigest()
        item = m(_tables.run_pk(run_id), _tables.event_id_sk(digest), inbox_id=inbox_id)
        try:
            self._save_new(item, m.sk.does_not_exist(), "claim_event_id", "claimed")
        except ConflictError:
            with _translated("claim_event_id"):
                stored = m.get(item.pk, item.sk, consistent_read=True)
            return str(stored.inbox_id)
        return inbox_id

    def list_inbox(self, run_id: str) -> list[InboxEvent]:
        inbox_model = self._models.inbox
        with _translated("list_inbox"):
            items = inbox_model.query(
                _tables.run_pk(run_id),
                inbox_model.sk.startswith(_tables.INBOX_PREFIX),
                consistent_read=True,
                page_size=self._page_size,
            )
            return [_inbox_event(item) for item in items]

    def delete_inbox(self, run_id: str, inbox_ids: Collection[str]) -> None:
        """Batch deletes (25 keys a request); a key that is gone already costs nothing more."""
        pk = _tables.run_pk(run_id)
        with _translated("delete_inbox"):
            self._batch_delete((pk, _tables.inbox_sk(inbox_id)) for inbox_id in sorted(inbox_ids))

    # -- listings (durable.storage._listings) ------------------------------------------

    def list_runs(
        self,
        *,
        task_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # A filter too long for a key is the caller's fault (caller_input).
        with _translated("list_runs", caller_input=True), _index_of_this_layout(self.table_name):
            # The shard queries run at once on the process's pool and share one botocore
            # client, which PynamoDB builds on first use, and building one is not thread
            # safe: it is built here, before they fan out (reading the shard count built
            # it already on any store that has read the table).
            _ = self._models.connection.client
            reader = self._index_reader(executor=shard_query_pool())
            return reader.list_runs(task_id, status, limit, cursor)

    def due_runs(
        self, before: datetime, limit: int = 100, after: RunRecord | None = None
    ) -> list[RunRecord]:
        with _translated("due_runs"), _index_of_this_layout(self.table_name):
            return self._index_reader().due_runs(before, limit, after)

    # -- retention ----------------------------------------------------------------------

    def expired_runs(
        self,
        before: datetime,
        limit: int = 100,
        *,
        shard: int | None = None,
        after: RunRecord | None = None,
    ) -> list[RunRecord]:
        with _translated("expired_runs"), _index_of_this_layout(self.table_name):
            return self._index_reader().expired_runs(before, limit, shard, after)

    def claim_purge_lease(self, shard: int, owner: str, now: datetime, until: datetime) -> bool:
        m = self._models.purge_lease
        lease = m(_tables.purge_lease_pk(shard), _tables.PURGE_LEASE_SK)
        free = m.pk.does_not_exist() | (m.lease_until <= now) | (m.owner == owner)
        with _translated("claim_purge_lease"):
            try:
                lease.update(actions=[m.owner.set(owner), m.lease_until.set(until)], condition=free)
            except PynamoDBException as exc:
                if _response_code(exc) == _CONDITION_FAILED:
                    return False
                raise
        self._wrote()
        return True

    def release_purge_lease(self, shard: int, owner: str) -> None:
        m = self._models.purge_lease
        lease = m(_tables.purge_lease_pk(shard), _tables.PURGE_LEASE_SK)
        with _translated("release_purge_lease"):
            try:
                lease.delete(condition=m.owner == owner)
            except PynamoDBException as exc:
                if _response_code(exc) == _CONDITION_FAILED:
                    return  # expired and taken by another purger, or released already
                raise
        self._wrote()

    def _index_reader(self, executor: Executor | None = None) -> IndexReader:
        """The index queries; with `executor`, a listing's shards are queried at once."""
        return IndexReader(
            self._models.run,
            self.index_shards,
            self._page_size,
            self._runs_in_order,
            executor=executor,
        )

    def _runs_in_order(self, run_ids: list[str]) -> list[RunRecord]:
        """The runs `run_ids` name, read consistently in one `BatchGetItem` (PynamoDB sends
        100 keys a request and resends what DynamoDB leaves unprocessed), in that order;
        a run deleted since is left out."""
        m = self._models.run
        found = {
            str(item.run_id): _run_record(item)
            for item in m.batch_get(
                [(_tables.run_pk(run_id), _tables.RUN_SK) for run_id in run_ids],
                consistent_read=True,
            )
        }
        return [found[run_id] for run_id in run_ids if run_id in found]

    def delete_run(self, run_id: str) -> int:
        pk = _tables.run_pk(run_id)
        m = self._models.run
        with _translated("delete_run"):
            # A Query rather than a GetItem: the purge needs no other read permission.
            heads = list(m.query(pk, m.sk == _tables.RUN_SK, consistent_read=True))
            run = _run_record(heads[0]) if heads else None
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

    def put_callback(self, token: str, run_id: str, name: str, expires_at: datetime | None) -> None:
        item = self._models.callback(
            _tables.callback_pk(token_key(token)),
            _tables.CALLBACK_SK,
            run_id=run_id,
            name=name,
            expires_at=expires_at,
            completed=False,
        )
        with _translated("put_callback"):
            item.save()
        self._wrote()

    def claim_callback(self, token: str, now: datetime, outcome: str = "") -> str:
        """One conditional update: pending and not expired -> completed, with its outcome."""
        m = self._models.callback
        item = m(_tables.callback_pk(token_key(token)), _tables.CALLBACK_SK)
        condition = (
            m.pk.exists()
            & (m.completed == False)  # noqa: E712 - a PynamoDB condition, not a comparison
            & (m.expires_at.does_not_exist() | (m.expires_at > now))
        )
        try:
            item.update(
                actions=[m.completed.set(True), m.outcome.set(outcome)], condition=condition
            )
        except PynamoDBException as exc:
            if _response_code(exc) != _CONDITION_FAILED:
                with _translated("claim_callback"):
                    raise
            with _translated("claim_callback"):
                found = m.count(item.pk, m.sk == _tables.CALLBACK_SK, consistent_read=True)
            if found == 0:
                raise CallbackNotFoundError("no callback has this token") from None
            raise CallbackAlreadyCompletedError(
                "this callback was completed already, or it expired"
            ) from None
        self._wrote()
        return str(item.run_id)

    def callback_outcome(self, token: str) -> tuple[str, str] | None:
        m = self._models.callback
        with _translated("callback_outcome"):
            try:
                item = m.get(
                    _tables.callback_pk(token_key(token)), _tables.CALLBACK_SK, consistent_read=True
                )
            except m.DoesNotExist:
                return None
        if not item.completed:
            return None
        return str(item.run_id), str(item.outcome or "")

    # -- fan-out ------------------------------------------------------------------------

    def create_batch(self, batch: BatchRecord) -> BatchRecord:
        m = self._models.batch
        item = m(
            _tables.run_pk(batch.run_id),
            _tables.batch_sk(batch.task_attempt, batch.position),
            run_id=batch.run_id,
            position=batch.position,
            task_attempt=batch.task_attempt,
            total=batch.total,
            calls=batch.calls,
            max_concurrency=batch.max_concurrency,
            tolerated_failures=batch.tolerated_failures,
            first_success=batch.first_success,
            succeeded=0,
            failed=0,
        )
        try:
            item.save(condition=m.sk.does_not_exist())
        except PynamoDBException as exc:
            if _response_code(exc) != _CONDITION_FAILED:
                with _translated("create_batch"):
                    raise
            existing = self.get_batch(batch.run_id, batch.task_attempt, batch.position)
            assert existing is not None
            return existing
        self._wrote()
        return batch

    def get_batch(self, run_id: str, task_attempt: int, position: int) -> BatchRecord | None:
        m = self._models.batch
        with _translated("get_batch"):
            try:
                item = m.get(
                    _tables.run_pk(run_id),
                    _tables.batch_sk(task_attempt, position),
                    consistent_read=True,
                )
            except m.DoesNotExist:
                return None
        return BatchRecord(
            run_id=item.run_id,
            position=int(item.position),
            task_attempt=int(item.task_attempt),
            total=int(item.total),
            calls=item.calls,
            max_concurrency=int(item.max_concurrency),
            tolerated_failures=int(item.tolerated_failures),
            first_success=bool(item.first_success),
            succeeded=int(item.succeeded),
            failed=int(item.failed),
        )

    def record_batch_result(
        self, run_id: str, task_attempt: int, position: int, item: BatchItemResult
    ) -> tuple[BatchRecord, bool]:
        """One transaction: the child's result item (once) and the batch's counters."""
        batch_model = self._models.batch
        result_model = self._models.batch_result
        pk = _tables.run_pk(run_id)
        result = result_model(
            pk,
            _tables.batch_result_sk(task_attempt, position, item.index),
            index=item.index,
            child_run_id=item.run_id,
            ok=item.ok,
            result=item.result,
            error=_error_map(item.error),
        )
        counters = batch_model(pk, _tables.batch_sk(task_attempt, position))
        counter = batch_model.succeeded if item.ok else batch_model.failed
        with _translated("record_batch_result"):
            for attempt in range(1, _TRANSACTION_ATTEMPTS + 1):
                try:
                    with TransactWrite(connection=self._models.connection) as transaction:
                        transaction.save(result, condition=result_model.sk.does_not_exist())
                        transaction.update(
                            counters, actions=[counter.add(1)], condition=batch_model.sk.exists()
                        )
                except TransactWriteError as exc:
                    codes = _cancellation_codes(exc)
                    if not codes:
                        raise  # throttled, 5xx...: infrastructure
                    if codes[:1] == ["ConditionalCheckFailed"]:
                        batch = self.get_batch(run_id, task_attempt, position)
                        if batch is not None:
                            return batch, False  # this child's end was recorded before
                    if codes[1:2] == ["ConditionalCheckFailed"]:
                        raise ConflictError(f"run {run_id} has no batch at {position}") from exc
                    # Sibling children ending at once conflict on the counters: not a lost
                    # batch, only a race (botocore does not retry it). Try again.
                    if attempt < _TRANSACTION_ATTEMPTS:
                        time.sleep(_CONFLICT_BACKOFF * attempt)
                        continue
                    raise InfrastructureError(
                        f"batch result of run {run_id} not recorded: {exc}"
                    ) from exc
                break
        self._wrote()
        batch = self.get_batch(run_id, task_attempt, position)
        assert batch is not None
        return batch, True

    def list_batch_results(
        self,
        run_id: str,
        task_attempt: int,
        position: int,
        *,
        start: int = 0,
        limit: int | None = None,
    ) -> list[BatchItemResult]:
        """One Query from index `start` (the sort key holds the index), `limit` items."""
        m = self._models.batch_result
        first = _tables.batch_result_sk(task_attempt, position, max(start, 0))
        last = _tables.batch_result_sk(task_attempt, position, _tables.LAST_BATCH_INDEX)
        page_size = self._page_size if limit is None else min(limit, self._page_size or limit)
        with _translated("list_batch_results"):
            items = m.query(
                _tables.run_pk(run_id),
                m.sk.between(first, last),
                consistent_read=True,
                limit=limit,
                page_size=page_size,
            )
            return [
                BatchItemResult(
                    index=int(entry.index),
                    run_id=entry.child_run_id,
                    ok=bool(entry.ok),
                    result=entry.result,
                    error=_error_info(entry.error),
                )
                for entry in items
            ]

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

    def _batch_delete(self, keys: Iterable[tuple[str, str]]) -> int:
        """Delete items by key with PynamoDB's batch writer (25 a request; it resends what
        DynamoDB leaves unprocessed, with backoff); how many it deleted."""
        cp_model = self._models.checkpoint
        deleted = 0
        with cp_model.batch_write() as batch:
            for pk, sk in keys:
                batch.delete(cp_model(pk, sk))
                deleted += 1
        with self._lock:
            self.writes += -(-deleted // 25)  # one request per 25 keys
        return deleted

    def clear(self) -> int:
        """Delete every item of the table but its config; how many (tests that share one
        table: the table keeps its shard count)."""
        m = self._models.checkpoint
        with _translated("clear"):
            items = m.scan(attributes_to_get=["pk", "sk"])
            return self._batch_delete(
                (item.pk, item.sk) for item in items if item.pk != _tables.CONFIG_PK
            )

    def _delete_claim(self, task_id: str, key: str, run_id: str) -> int:
        """Delete the claim on (task_id, key) if it still names `run_id`; 1 if it did."""
        idem_model = self._models.idempotency
        claim = idem_model(_tables.idempotency_pk(task_id, key), _tables.IDEM_SK)
        try:
            claim.delete(condition=idem_model.run_id == run_id)
        except PynamoDBException as exc:
            if _response_code(exc) == _CONDITION_FAILED:
                return 0  # gone already, or a later run's claim on the same key
            raise
        self._wrote()
        return 1


# -- translation between records and items ---------------------------------------------


@contextmanager
def _translated(operation: str, *, caller_input: bool = False) -> Iterator[None]:
    """Turn whatever PynamoDB or botocore raises into a `DurableError`.

    A request DynamoDB rejects as invalid is not worth repeating: with `caller_input` it is
    the caller's fault (a cursor from another listing, say) and becomes an `InputError`,
    otherwise a plain `DurableError`. Everything else (throttling, 5xx, timeouts, a
    transaction cancelled by a conflict) is an `InfrastructureError`: retried by
    redelivery, never a task's failure.
    """
    try:
        yield
    except DurableError:
        raise
    except (PynamoDBException, BotoCoreError, ClientError) as exc:
        code = _response_code(exc)
        if code == "ValidationException":
            if caller_input:
                raise InputError(f"DynamoDB rejected {operation}") from exc
            raise DurableError(f"DynamoDB rejected {operation}: {exc}") from exc
        raise InfrastructureError(f"DynamoDB {operation} failed: {exc}") from exc


def _response_code(exc: Exception) -> str | None:
    """DynamoDB's error code behind a PynamoDB or botocore error; None when there was no
    answer (a timeout, a dropped connection: PynamoDB's own `cause_response_code` then
    raises AttributeError)."""
    cause = getattr(exc, "cause", None) or exc
    response = getattr(cause, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else None


def _cancellation_codes(exc: TransactWriteError) -> list[str | None]:
    """Why each action of a cancelled transaction failed; empty when it was not cancelled."""
    return [reason.code if reason else None for reason in exc.cancellation_reasons or []]


@contextmanager
def _index_of_this_layout(table_name: str) -> Iterator[None]:
    """Turn DynamoDB's answer to a query on an index the table lacks (a table of the first
    layout) into `TableLayoutError`, which says what to do."""
    try:
        yield
    except (PynamoDBException, ClientError) as exc:
        message = str(getattr(exc, "cause", None) or exc)
        names_an_index = any(name in message for name in _INDEXES)
        # AWS answers ValidationException ("The table does not have the specified index"),
        # moto ResourceNotFoundException ("Invalid index").
        missing = _response_code(exc) in ("ValidationException", "ResourceNotFoundException")
        if missing and names_an_index:
            raise TableLayoutError(table_name, "an index of this version is missing") from exc
        raise


def _attribute_value(name: str, value: Any) -> Any:
    """A `RunRecord` field value as its attribute takes it; None means 'absent'."""
    if value is None:
        return None
    if name == "status":
        return str(RunStatus(value))
    if name == "error":
        return _error_map(value)
    if name == "tags":
        return dict(value) if value else None
    return value


def _update_actions(
    m: type[RunItem], changes: Mapping[str, Any], status_key: str | None
) -> list[Action]:
    """The update's actions: each change, and the status index's key with a new status.

    No other index key is written: the hash keys never change, and the sparse indexes
    (due, expiry) follow `wake_at` and `expires_at` themselves, their range keys.
    """
    actions: list[Action] = []
    for name, value in changes.items():
        attribute = getattr(m, name)
        stored = _attribute_value(name, value)
        actions.append(attribute.remove() if stored is None else attribute.set(stored))
    if status_key is not None:
        actions.append(m.status_pk.set(status_key))
    return actions


def _error_map(error: ErrorInfo | None) -> ErrorMap | None:
    if error is None:
        return None
    return ErrorMap(  # type: ignore[no-untyped-call]
        type_name=error.type,
        message=error.message,
        traceback=error.traceback,
        non_retryable=error.non_retryable or None,
    )


def _error_info(error: ErrorMap | None) -> ErrorInfo | None:
    if error is None:
        return None
    return ErrorInfo(
        type=error.type_name,
        message=error.message,
        traceback=error.traceback,
        non_retryable=bool(error.non_retryable),
    )


def _run_record(item: RunItem) -> RunRecord:
    tags = item.tags
    return RunRecord(
        run_id=item.run_id,
        task_id=item.task_id,
        status=RunStatus(item.status),
        payload=item.payload,
        created_at=item.created_at,
        updated_at=item.updated_at,
        attempt=int(item.attempt),
        started_at=item.started_at,
        finished_at=item.finished_at,
        result=item.result,
        error=_error_info(item.error),
        idempotency_key=item.idempotency_key,
        task_version=item.task_version,
        code_version=item.code_version,
        wake_at=item.wake_at,
        wake_token=item.wake_token,
        waiting_for=item.waiting_for,
        lease_owner=item.lease_owner,
        lease_expires=item.lease_expires,
        checkpoints=int(item.checkpoints),
        cancel_requested=bool(item.cancel_requested),
        parent_run_id=item.parent_run_id,
        tags={str(key): str(value) for key, value in tags.attribute_values.items()} if tags else {},
        expires_at=item.expires_at,
        batch_slot=item.batch_slot,
        crash_streak=int(item.crash_streak or 0),
    )


def _checkpoint(item: CheckpointItem) -> Checkpoint:
    return Checkpoint(
        seq=int(item.seq),
        kind=CheckpointKind(item.kind),
        op=int(item.op),
        name=item.name,
        task_attempt=int(item.task_attempt),
        at=item.at,
        step_attempt=int(item.step_attempt),
        value=item.value,
        error=_error_info(item.error),
        wake_at=item.cp_wake_at,
        inbox_id=item.inbox_id,
    )


def _inbox_event(item: InboxItem) -> InboxEvent:
    return InboxEvent(
        run_id=item.run_id,
        inbox_id=item.inbox_id,
        name=item.name,
        data=item.data,
        received_at=item.received_at,
    )
