"""The inbox on DynamoDB: events waiting for their run (`INBOX#<id>`), and the inbox ids of
events sent with an event id (`EVENTID#<sha256>`), both under the run's key.

- `put_inbox` checks that the run exists, then makes one conditional put (never overwrites).
- `claim_event_id` is one conditional put; on a repeat, the inbox id on record is read.
- `list_inbox` reads strongly consistent; `delete_inbox` deletes with the batch writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import TYPE_CHECKING

from durable.errors import ConflictError, RunNotFoundError
from durable.records import InboxEvent, RunRecord
from durable.storage import _tables
from durable.storage.dynamodb.codecs import inbox_event
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import translated


class DynamoInbox(DynamoTable):
    """The inbox items: `put_inbox`, `claim_event_id`, `list_inbox`, `delete_inbox`."""

    if TYPE_CHECKING:  # the run family's (`durable.storage.dynamodb.runs`)

        def get_run(self, run_id: str) -> RunRecord | None: ...

        def _require(self, run_id: str) -> RunRecord: ...

    def put_inbox(self, event: InboxEvent) -> None:
        inbox_model = self._models.inbox
        # A read, then one conditional put. Not a transaction with a condition check on the
        # run item: that would make the worker's own writes to the run item fail with
        # TransactionConflict while an event is being stored. Only finished runs are ever deleted,
        # an hour at least after they ended (`durable.services.sweeper.purge_expired`), so a run
        # seen unfinished here cannot vanish before the put lands. A finished one can (a late
        # callback): it is read again after the put, and the event taken back if the run was purged
        # meanwhile, so that nothing is left behind.
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
            with translated("put_inbox"):
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
            with translated("claim_event_id"):
                stored = m.get(item.pk, item.sk, consistent_read=True)
            return str(stored.inbox_id)
        return inbox_id

    def list_inbox(self, run_id: str) -> list[InboxEvent]:
        inbox_model = self._models.inbox
        with translated("list_inbox"):
            items = inbox_model.query(
                _tables.run_pk(run_id),
                inbox_model.sk.startswith(_tables.INBOX_PREFIX),
                consistent_read=True,
                page_size=self._page_size,
            )
            return [inbox_event(item) for item in items]

    def delete_inbox(self, run_id: str, inbox_ids: Collection[str]) -> None:
        """Batch deletes (25 keys a request); a key that is gone already costs nothing more."""
        pk = _tables.run_pk(run_id)
        with translated("delete_inbox"):
            self._batch_delete((pk, _tables.inbox_sk(inbox_id)) for inbox_id in sorted(inbox_ids))
