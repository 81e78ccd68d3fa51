"""What every record family of the DynamoDB store shares: the table handle.

`DynamoTable` holds the models bound to the table (`durable.storage._tables.make_models`),
the table's shard count (its config item, read once per store; `DEFAULT_SHARDS` without
one), the count of write requests, and the requests more than one family makes: a
conditional put, a batch delete, and the index reader with its ordered `BatchGetItem`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Executor

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from durable.errors import ConflictError, TableLayoutError
from durable.records import RunRecord
from durable.storage import _shards, _tables
from durable.storage._listings import IndexReader
from durable.storage._tables import TableModels, make_models
from durable.storage.dynamodb.codecs import run_record
from durable.storage.dynamodb.translation import CONDITION_FAILED, response_code, translated


class DynamoTable:
    """The table handle the record families share (`durable.storage.dynamodb`).

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

    @property
    def table_name(self) -> str:
        return self._models.table_name

    @property
    def index_shards(self) -> int:
        """How many shards each index key has: the table's config item says, read once."""
        if self._index_shards is None:
            config_model = self._models.config
            with translated("read the table's config"):
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

    def _save_new(self, item: Model, condition: Condition, operation: str, taken: str) -> None:
        """One conditional put; `ConflictError(taken)` when the condition fails."""
        with translated(operation):
            try:
                item.save(condition=condition)
            except PynamoDBException as exc:
                if response_code(exc) == CONDITION_FAILED:
                    raise ConflictError(taken) from exc
                raise
        self._wrote()

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
        with translated("clear"):
            items = m.scan(attributes_to_get=["pk", "sk"])
            return self._batch_delete(
                (item.pk, item.sk) for item in items if item.pk != _tables.CONFIG_PK
            )

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
            str(item.run_id): run_record(item)
            for item in m.batch_get(
                [(_tables.run_pk(run_id), _tables.RUN_SK) for run_id in run_ids],
                consistent_read=True,
            )
        }
        return [found[run_id] for run_id in run_ids if run_id in found]
