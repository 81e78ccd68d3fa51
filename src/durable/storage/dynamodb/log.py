"""The checkpoint log on DynamoDB: one item a slot (`RUN#<id>`, `CP#<seq:010d>`).

- `append_checkpoint` is exactly one conditional put (the fence drawn in
  `durable.storage.dynamodb`). It does not check that the run exists (that would take a
  second read or a transaction on the hot path); the worker only appends to runs it has
  leased.
- `load_history` reads strongly consistent: one Query over the slots after `after_seq`.
"""

from __future__ import annotations

from durable.records import Checkpoint
from durable.storage import _tables
from durable.storage.dynamodb.codecs import checkpoint_record, error_map
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import translated


class DynamoRunLog(DynamoTable):
    """The log items: `append_checkpoint`, `load_history`."""

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
            error=error_map(checkpoint.error),
            cp_wake_at=checkpoint.wake_at,
            inbox_id=checkpoint.inbox_id,
            started_at=checkpoint.started_at,
            input=checkpoint.input,
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
        with translated("load_history"):
            items = cp_model.query(
                _tables.run_pk(run_id),
                slots,
                consistent_read=True,
                page_size=self._page_size,
            )
            return [checkpoint_record(item) for item in items]
