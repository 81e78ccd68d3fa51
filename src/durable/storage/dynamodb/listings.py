"""Listings on DynamoDB: `list_runs` (the client's, the dashboard's), `due_runs` (the sweeper's).

Listings (and `expired_runs`, in `retention`), in `durable.storage._listings`, query every
shard of an index, merge them (`durable.storage._shards`), then read the runs of the page
with one consistent `BatchGetItem`, keeping the index's order; a run deleted meanwhile, or
no longer matching (another status, no longer due), is left out. A listing queries its
shards concurrently (about one round trip, whatever the count); due and expired runs query
them one after another. The indexes are eventually consistent in AWS: a run created a
moment ago may be missing for a moment.

A table of the first layout lacks the indexes: a listing raises `TableLayoutError`, which
says to run `durable migrate`.
"""

from __future__ import annotations

from datetime import datetime

from durable.records import RunRecord, RunStatus
from durable.storage._listings import shard_query_pool
from durable.storage.base import RunPage
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import index_of_this_layout, translated


class DynamoListings(DynamoTable):
    """The run listings over the sharded indexes: `list_runs`, `due_runs`."""

    def list_runs(
        self,
        *,
        task_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        tag: str | None = None,
        finished_after: datetime | None = None,
        finished_before: datetime | None = None,
    ) -> RunPage:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # A filter too long for a key is the caller's fault (caller_input).
        with translated("list_runs", caller_input=True), index_of_this_layout(self.table_name):
            # The shard queries run at once on the process's pool and share one botocore
            # client, which PynamoDB builds on first use, and building one is not thread
            # safe: it is built here, before they fan out (reading the shard count built
            # it already on any store that has read the table).
            _ = self._models.connection.client
            reader = self._index_reader(executor=shard_query_pool())
            return reader.list_runs(
                task_id,
                status,
                limit,
                cursor,
                created_after=created_after,
                created_before=created_before,
                tag=tag,
                finished_after=finished_after,
                finished_before=finished_before,
            )

    def due_runs(
        self, before: datetime, limit: int = 100, after: RunRecord | None = None
    ) -> list[RunRecord]:
        with translated("due_runs"), index_of_this_layout(self.table_name):
            return self._index_reader().due_runs(before, limit, after)
