"""Fan-out on DynamoDB: a batch item beside its run (`BATCH#<attempt>#<position>`) and one
result item a child (`BATCH#<attempt>#<position>#R#<index>`).

- `create_batch` is one conditional put; when the batch exists, the stored one is read.
- `record_batch_result` is one transaction: the child's result item (once) and the batch's
  counters. Siblings ending at once race on the counters; a lost race is tried again.
- `list_batch_results` is one Query from index `start`.
"""

from __future__ import annotations

import time

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from durable.errors import ConflictError, InfrastructureError
from durable.records import BatchItemResult, BatchRecord
from durable.storage import _tables
from durable.storage.dynamodb.codecs import error_info, error_map
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import (
    CONDITION_FAILED,
    CONFLICT_BACKOFF,
    TRANSACTION_ATTEMPTS,
    cancellation_codes,
    response_code,
    translated,
)


class DynamoBatches(DynamoTable):
    """The batch items: `create_batch`, `get_batch`, `record_batch_result`,
    `list_batch_results`."""

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
            if response_code(exc) != CONDITION_FAILED:
                with translated("create_batch"):
                    raise
            existing = self.get_batch(batch.run_id, batch.task_attempt, batch.position)
            assert existing is not None
            return existing
        self._wrote()
        return batch

    def get_batch(self, run_id: str, task_attempt: int, position: int) -> BatchRecord | None:
        m = self._models.batch
        with translated("get_batch"):
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
            error=error_map(item.error),
        )
        counters = batch_model(pk, _tables.batch_sk(task_attempt, position))
        counter = batch_model.succeeded if item.ok else batch_model.failed
        with translated("record_batch_result"):
            for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
                try:
                    with TransactWrite(connection=self._models.connection) as transaction:
                        transaction.save(result, condition=result_model.sk.does_not_exist())
                        transaction.update(
                            counters, actions=[counter.add(1)], condition=batch_model.sk.exists()
                        )
                except TransactWriteError as exc:
                    codes = cancellation_codes(exc)
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
                    if attempt < TRANSACTION_ATTEMPTS:
                        time.sleep(CONFLICT_BACKOFF * attempt)
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
        with translated("list_batch_results"):
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
                    error=error_info(entry.error),
                )
                for entry in items
            ]
