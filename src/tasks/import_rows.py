"""`import-rows`: a long step that heartbeats its progress and resumes from it.

`copy-rows` copies an export into the warehouse in batches. After each batch it calls
`ctx.heartbeat({"next_row": n})`, which does two things:

- It renews the step's `heartbeat_timeout` (30 s). An attempt that stops heartbeating (its
  invocation died, or Lambda cut it off at its time limit) is not waited for until the
  whole invocation lease runs out: the sweeper picks the run up 30 s after the last
  heartbeat, and the attempt counts as failed (`HeartbeatTimeout`) against the step's
  retry budget.
- It records the details in the run's log. The next attempt reads them from
  `ctx.heartbeat_details` and starts at `next_row` instead of row 0, so an import longer
  than one invocation gets through in a few attempts, each doing new work.

The rows of the batch that was being written when an attempt died are written again; the
warehouse upserts by row id, so that is harmless. The result says where the last attempt
started (`resumed_from`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from durable import Context, RetryPolicy, task
from tasks.fakes import exports, warehouse

HEARTBEAT_TIMEOUT = timedelta(seconds=30)
COPY_RETRY = RetryPolicy(max_attempts=5, min_delay=timedelta(seconds=1))


class ImportIn(BaseModel):
    source: str = Field(min_length=1)
    table: str = Field(default="customers", min_length=1)
    batch_size: int = Field(default=100, ge=1, le=10_000)


class Copied(BaseModel):
    rows: int
    resumed_from: int


class ImportOut(BaseModel):
    source: str
    table: str
    rows: int
    resumed_from: int


def copy_rows(ctx: Context, source: str, table: str, batch_size: int) -> Copied:
    """Copy every row from `source`, starting where an earlier attempt last heartbeated."""
    details: dict[str, Any] = ctx.heartbeat_details or {}
    start = int(details.get("next_row", 0))
    total = exports.count(source)
    for offset in range(start, total, batch_size):
        rows = exports.read(source, offset, batch_size)
        warehouse.upsert(table, rows)
        ctx.heartbeat({"next_row": offset + len(rows)})
    return Copied(rows=total, resumed_from=start)


@task(id="import-rows")
def import_rows(ctx: Context, payload: ImportIn) -> ImportOut:
    copied = ctx.step(
        "copy-rows",
        copy_rows,
        ctx,
        payload.source,
        payload.table,
        payload.batch_size,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry=COPY_RETRY,
    )
    return ImportOut(
        source=payload.source,
        table=payload.table,
        rows=copied.rows,
        resumed_from=copied.resumed_from,
    )
