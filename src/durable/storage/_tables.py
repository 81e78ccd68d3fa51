"""The one DynamoDB table behind `DynamoDBRunStore`: its layout, and its models bound to it.

Layout (single table, `pk` hash key, `sk` range key):

    pk                       sk                  item
    RUN#<run_id>             RUN                 the run record (head item)
    RUN#<run_id>             CP#<seq:010d>       one checkpoint, the log slot `seq`
    RUN#<run_id>             INBOX#<inbox_id>    one event waiting to be consumed
    RUN#<run_id>             EVENTID#<sha256>    the inbox id of an event sent with an event id
    RUN#<run_id>             TAG#<tag>           one tag of the run (in `by-task`, see below)
    IDEM#<task_id>#<key>     IDEM                the run created under an idempotency key
                                                 (and when that claim expires, if it does)
    TABLE#CONFIG             CONFIG              the layout version and the index shard count
    PURGE#<k>                PURGE               who purges expiry shard k, until when
    STATS#<task>#<s>         SLOT#<slot>         a task's counters, shard s, ring slot `slot`
    STATS#TASKS              <task_id>           a task that has counters (read by the metrics)
    BULK#<job_id>            BULK                a bulk job and its lease (no index)
    RATE#<queue>#<key>       SLOT#<slot>         a rate window's count: ring slot `slot`
                                                 holds window `w` (its start budget's use `n`)
    RATE#<queue>#<key>       HEAD                the window a search for room starts at
    DEBOUNCE#<task>#<key>    DEBOUNCE            the run still pending for a debounce key

Rate windows (`durable.storage.admission`, `durable.services.admission`): a queue with a
`RateLimit(limit, period)` numbers fixed windows of `period` since the epoch; per queue and
concurrency key, a ring of `RATE_RING` (128) slot items holds one window's count each
(`slot = w % 128`), so the items are bounded (129 per queue and key, about 60 bytes each)
without any expiry: a slot is reused by the window 128 periods later, and a window pushed
out of its slot (a delayed trigger 128 periods ahead) counts as full for ever, so no window
admits more than `limit` runs. Debounce items: one per (task, key) ever debounced, naming
the run pending for it (a run id, about 100 bytes); none is deleted (bounded by the keys).
None of these items carries an index attribute.

    QUEUE#<queue>#<key>      SLOTS               a queue's slot holders under a concurrency key
                                                 (`<key>` empty: runs triggered without one)
    QUEUE#<queue>#<key>      WAIT#<999-p>#<run>  a run waiting for one of those slots, in
                                                 start order (priority p, then run id)
    QUEUE#<queue>            KEY#<key>           a key the queue has been used under

The queue items (`durable.storage.dynamodb.slots`, `durable.services.slots`) are in no
index either: a slot is acquired and released by one conditional `UpdateItem` of the
key's `SLOTS` item, and the next runs to start are one `Query` of its partition.

The counter items of a task's shard (`durable.storage.dynamodb.stats`, `durable.services.
stats`) are a ring of `STATS_BUCKETS` (8) items, one per time bucket slot of 10 minutes
(`slot = bucket % STATS_BUCKETS`), one number attribute per counter: `p` the number of the
bucket the slot holds (its period), `b_<name>` a counter of that bucket, and `t_<name>`
the slot's share of the lifetime totals (never cleared: a task's totals are the sum over
its shards' and slots' items). The ring keeps the last 8 buckets (80 minutes) whatever the
age of the table, so the items are bounded (tasks x 4 shards x 8 slots, each at most 127
bucket counters + 5 totals: 1.6 KB with 10-digit amounts, 3.5 KB with 38-digit ones; 0.1
to 0.4 KB for a busy task, by `bench/metrics_scale.py`) and need no expiry. A counter
write touches one slot's item only, so it is billed by that item's size, not by the
ring's. They carry no index key: no index, no purge, no listing sees them. The task is
escaped as in `idempotency_pk`, so `STATS#TASKS` (no second '#') cannot be a task's key.

Global secondary indexes. Their hash keys are sharded by run: `k = shard_of(run_id, shards)`
(`durable.storage._shards`), so the runs of the table, of one task or in one status spread
over `shards` keys of each index, and a listing queries every shard and merges:

    index         hash key                         range key     projection
    by-task-v2    task_pk   = <escaped task>#<k>   created_key   keys only
    by-status-v2  status_pk = <status>#<k>         created_key   keys and task_id
    all-runs-v2   all_pk    = RUN#<k>              created_key   keys only
    due-v2        due_pk    = WAKE#<k> | TIMER#<k> wake_at       keys only
    expiry-v2     expiry_pk = EXPIRE#<k>           expires_at    keys only

`created_key` is the run id, which sorts by creation time; the task id is escaped as in
`idempotency_pk`. Every run item carries all five hash keys from its creation on, and only
`status_pk` ever changes (with the status). `due` and `expiry` are sparse through their
range key: `due` holds exactly the runs with a `wake_at` (an unfinished run that needs an
invocation at that time, or a finished one whose end's follow-ups are pending), `expiry`
those with an `expires_at` (set when a run ends with a retention: the runs to purge).
`due` has two key spaces: `WAKE#<k>`, the runs the overdue sweep reads (`due_runs`), and
`TIMER#<k>`, runs whose far `wake_at` is parked with no message sent (`wake_parked`,
`parked_timers`: the sweeper hands them off, `durable.services.timers`). `due_pk` is the
one hash key that changes besides `status_pk`: parking and un-parking move the entry from
one key space to the other (a delete and a put in the index, like a new `wake_at`).
Checkpoint, inbox and idempotency items carry none of these attributes: they are in no index.

Tags, with no index of their own: a tag item (`RUN#<run_id>`, `TAG#<tag>`) carries the
`by-task` keys, `task_pk = TAG#<escaped tag>#<k>` (the run's shard) and `created_key = <run
id>`. No task's `task_pk` has two '#' (a task id is escaped), so a tag's keys and a task's
never meet; "the runs tagged X" is a `by-task` query on each shard's `TAG#X#<k>`, merged
newest first like a task's listing. A tag costs 1 write and 1 index write when its run is
created (the same transaction as the run item) and 1 + 1 when the run is purged (it is in
the run's partition, which `delete_run` deletes whole); nothing in between, since a tag
item never changes.

Minimal index writes: DynamoDB writes an index only when a key or a projected attribute of
the item in it changes. Only keys are projected (and `task_id`, which never changes, for
the task-and-status listing), so a lease renewal or a heartbeat (`lease_expires`), a
checkpoint count, a result or an error writes no index at all; a status change writes
`by-status` (a delete from the old key and a put to the new one), a new `wake_at` writes
`due`. Listings and sweeps read the run items of a page with one `BatchGetItem`.

Why `DEFAULT_SHARDS = 64`: a DynamoDB partition takes about 1,000 writes a second, and all
the items under one GSI key share one partition. Index writes of a run of one invocation
(`bench/index_writes.py` counts 9): `all-runs` and `by-task` 1 each (its creation, and 1
more at its purge); `due` 2 (its first `wake_at` set, then cleared at its end: a lease
keeps an earlier `wake_at`); `by-status` 5 (a put at creation, then a delete and a put at
each change). The hottest keys are a status's: every invocation enters RUNNING and leaves
it (2 writes on `RUNNING#<k>`), and each run enters and leaves QUEUED (2 on `QUEUED#<k>`).
At 10,000 runs a second of one invocation each, that is 20,000 writes a second on one
status's keys: 313 on each of 64 shards (31% of a partition). A run that sleeps twice
has three invocations: 60,000 a second on the RUNNING keys, 940 a second on each of 64,
at the limit. So 64 carries 10,000 runs a second of up to three invocations each;
`by-task` holds 20,000 writes a second for one busy task (313 per shard) and `due` 20,000
(313 per shard, plus 2 for each sweep that meets a run still running after its lease's
first expiry). Runs with more invocations, or a higher rate, need a table made with more
shards (`create_table(shards=...)`, `durable migrate --shards`). The price is on reads: a
listing page or a sweep queries every shard (a few read units each).

The count is fixed per table: `create_table(shards=...)` writes it in the config item, which
a store reads once per process; a table without one (created from `template.yaml`) uses
`DEFAULT_SHARDS`. A table made by the first layout (unsharded indexes, all attributes
projected) has none of the `-v2` indexes: the store raises `TableLayoutError` on it, and
`durable migrate` brings it to this layout.

Timestamps are stored as PynamoDB's fixed-width UTC strings
(`2030-01-01T00:00:00.000000+0000`), which sort as they compare, so range conditions on
`wake_at`, `lease_expires` and `expires_at` are plain string comparisons.

No native DynamoDB TTL: it would expire the run item alone and orphan the run's log, inbox
and idempotency claim. A worker's purger deletes an expired run's items together
(`DynamoDBRunStore.delete_run`, `durable.services.purge`), finding them through the `expiry` index,
one shard at a time under the shard's lease item (`PURGE#<k>`).

PynamoDB keeps the table name on the model class, so `make_models` builds (once, cached) one
set of subclasses per (table, region, endpoint); the attributes and indexes live on the
bases (`durable.storage._items`), and PynamoDB copies the indexes onto every subclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from pynamodb.connection import Connection
from pynamodb.exceptions import PutError
from pynamodb.models import MetaProtocol

from durable.aws import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_POOL_CONNECTIONS,
    READ_TIMEOUT_SECONDS,
    RETRY_ATTEMPTS,
)
from durable.storage._items import (
    BatchItem,
    BatchResultItem,
    CallbackItem,
    CheckpointItem,
    EventIdItem,
    IdempotencyItem,
    InboxItem,
    PurgeLeaseItem,
    RunItem,
    TableConfigItem,
    TagItem,
)
from durable.storage.slots import waiter_order

RUN_SK = "RUN"
IDEM_SK = "IDEM"
CHECKPOINT_PREFIX = "CP#"
INBOX_PREFIX = "INBOX#"
EVENT_ID_PREFIX = "EVENTID#"
TAG_PREFIX = "TAG#"
CONFIG_PK = "TABLE#CONFIG"
CONFIG_SK = "CONFIG"
# The layout this code reads and writes: 2 is the sharded one described above (1, the first,
# had no config item).
LAYOUT_VERSION = 2
DEFAULT_SHARDS = 64


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


MAX_SEQ = 9_999_999_999  # the last slot `checkpoint_sk` can write (ten digits)


def checkpoint_sk(seq: int) -> str:
    return f"{CHECKPOINT_PREFIX}{seq:010d}"


def inbox_sk(inbox_id: str) -> str:
    return f"{INBOX_PREFIX}{inbox_id}"


def event_id_sk(event_id_hash: str) -> str:
    return f"{EVENT_ID_PREFIX}{event_id_hash}"


PURGE_LEASE_SK = "PURGE"

STATS_TASKS_PK = "STATS#TASKS"
STATS_TOTAL_PREFIX = "t_"  # a slot's share of a lifetime total: t_<name>
STATS_BUCKET_PREFIX = "b_"  # a counter of the bucket the slot holds: b_<name>
STATS_PERIOD = "p"  # the number of the bucket the slot holds


def stats_pk(task_id: str, shard: int) -> str:
    return f"STATS#{escape_key_part(task_id)}#{shard}"


def stats_slot_sk(slot: int) -> str:
    """The sort key of ring slot `slot`'s item under a task's shard (`stats_pk`)."""
    return f"SLOT#{slot}"


BULK_JOB_SK = "BULK"

RATE_HEAD_SK = "HEAD"
DEBOUNCE_SK = "DEBOUNCE"


def rate_pk(scope: str) -> str:
    """The partition of a scope's rate windows (`durable.storage.admission.rate_scope`:
    a queue name and a concurrency key, neither of which may hold a '#')."""
    return f"RATE#{scope}"


def rate_slot_sk(slot: int) -> str:
    return f"SLOT#{slot}"


def debounce_pk(task_id: str, key: str) -> str:
    return f"DEBOUNCE#{escape_key_part(task_id)}#{key}"


def bulk_job_pk(job_id: str) -> str:
    return f"BULK#{job_id}"


SLOTS_SK = "SLOTS"
WAITER_PREFIX = "WAIT#"
QUEUE_KEY_PREFIX = "KEY#"


def queue_pk(queue: str, key: str | None) -> str:
    """The partition of a queue's slots and waiters under a concurrency key."""
    return f"QUEUE#{escape_key_part(queue)}#{escape_key_part(key or '')}"


def waiter_sk(priority: int, run_id: str) -> str:
    return f"{WAITER_PREFIX}{waiter_order(priority, run_id)}"


def queue_keys_pk(queue: str) -> str:
    """The partition listing a queue's keys: one '#', which no slots partition has."""
    return f"QUEUE#{escape_key_part(queue)}"


def queue_key_sk(key: str | None) -> str:
    return f"{QUEUE_KEY_PREFIX}{escape_key_part(key or '')}"


def queue_key_of(sk: str) -> str | None:
    """The concurrency key a `queue_key_sk` names (None: runs without one)."""
    key = sk.removeprefix(QUEUE_KEY_PREFIX).replace("%23", "#").replace("%25", "%")
    return key or None


def purge_lease_pk(shard: int) -> str:
    return f"PURGE#{shard}"


def escape_key_part(value: str) -> str:
    """`value` without '#', so that a key joined with '#' can be split one way only."""
    return value.replace("%", "%25").replace("#", "%23")


def idempotency_pk(task_id: str, key: str) -> str:
    # Escape '#' in the task id so that ("a#b", "c") and ("a", "b#c") never share an item.
    return f"IDEM#{escape_key_part(task_id)}#{key}"


def tag_sk(tag: str) -> str:
    return f"{TAG_PREFIX}{tag}"


def tag_index_pk(tag: str, shard: int) -> str:
    """A tag's `by-task` hash key in shard `shard`: two '#', which no task's key has."""
    return f"{TAG_PREFIX}{escape_key_part(tag)}#{shard}"


def all_runs_pk(shard: int) -> str:
    return f"RUN#{shard}"


def task_pk(task_id: str, shard: int) -> str:
    return f"{escape_key_part(task_id)}#{shard}"


def status_pk(status: str, shard: int) -> str:
    return f"{status}#{shard}"


def due_pk(shard: int) -> str:
    return f"WAKE#{shard}"


TIMER_PREFIX = "TIMER#"


def timer_pk(shard: int) -> str:
    """A parked run's `due_pk` (`durable.storage.timers`)."""
    return f"{TIMER_PREFIX}{shard}"


def due_key(shard: int, parked: bool) -> str:
    """The `due_pk` of a run of shard `shard`, parked or not."""
    return timer_pk(shard) if parked else due_pk(shard)


def expiry_pk(shard: int) -> str:
    return f"EXPIRE#{shard}"


def batch_sk(task_attempt: int, position: int) -> str:
    return f"BATCH#{task_attempt:04d}#{position:08d}"


def batch_result_sk(task_attempt: int, position: int, index: int) -> str:
    return f"{batch_sk(task_attempt, position)}#R#{index:08d}"


# Above any child index a batch can have (`batch_result_sk` pads indexes to 8 digits).
LAST_BATCH_INDEX = 99_999_999


def callback_pk(token_hash: str) -> str:
    return f"CALLBACK#{token_hash}"


CALLBACK_SK = "CALLBACK"


@dataclass(frozen=True, slots=True)
class TableModels:
    """The model classes bound to one table."""

    table_name: str
    region: str
    endpoint_url: str | None
    run: type[RunItem]
    checkpoint: type[CheckpointItem]
    inbox: type[InboxItem]
    idempotency: type[IdempotencyItem]
    event_id: type[EventIdItem]
    callback: type[CallbackItem]
    batch: type[BatchItem]
    batch_result: type[BatchResultItem]
    config: type[TableConfigItem]
    purge_lease: type[PurgeLeaseItem]
    tag: type[TagItem]
    connection: Connection  # shared by every model above; transactions use it too


def _meta(table_name: str, region: str, endpoint_url: str | None) -> MetaProtocol:
    """A PynamoDB `Meta` class (a class made here, which PynamoDB types by a protocol)."""
    meta = type(
        "Meta",
        (),
        {
            "table_name": table_name,
            "region": region,
            "host": endpoint_url,
            "billing_mode": "PAY_PER_REQUEST",
            # botocore's standard retry mode, with the budget and timeouts every client of
            # the runtime shares (see `durable.aws`); PynamoDB's batch writer resends the
            # keys DynamoDB leaves unprocessed up to `max_retry_attempts - 1` times.
            "max_retry_attempts": RETRY_ATTEMPTS - 1,
            "connect_timeout_seconds": CONNECT_TIMEOUT_SECONDS,
            "read_timeout_seconds": READ_TIMEOUT_SECONDS,
            "max_pool_connections": MAX_POOL_CONNECTIONS,
        },
    )
    return cast(MetaProtocol, meta)


@lru_cache(maxsize=16)
def make_models(table_name: str, region: str, endpoint_url: str | None = None) -> TableModels:
    """Model classes for `table_name` in `region`, talking to `endpoint_url` when given.

    Cached: every store on the same table shares the classes and their connection.
    """

    class BoundRunItem(RunItem):
        Meta = _meta(table_name, region, endpoint_url)

    class BoundCheckpointItem(CheckpointItem):
        Meta = _meta(table_name, region, endpoint_url)

    class BoundInboxItem(InboxItem):
        Meta = _meta(table_name, region, endpoint_url)

    class BoundIdempotencyItem(IdempotencyItem):
        Meta = _meta(table_name, region, endpoint_url)

    class BoundEventIdItem(EventIdItem):
        Meta = _meta(table_name, region, endpoint_url)

    class BoundCallbackItem(CallbackItem):
        Meta = _meta(table_name, region, endpoint_url)

    class BoundBatchItem(BatchItem):
        Meta = _meta(table_name, region, endpoint_url)

    class BoundBatchResultItem(BatchResultItem):
        Meta = _meta(table_name, region, endpoint_url)

    class BoundTableConfigItem(TableConfigItem):
        Meta = _meta(table_name, region, endpoint_url)

    class BoundPurgeLeaseItem(PurgeLeaseItem):
        Meta = _meta(table_name, region, endpoint_url)

    class BoundTagItem(TagItem):
        Meta = _meta(table_name, region, endpoint_url)

    # One connection (one botocore client, shared by every thread; PynamoDB keeps only the
    # session per thread) for all the models: each client costs tens of milliseconds to
    # build, which a Lambda cold start pays. The run model's schema is
    # the table's (it declares the indexes), so its connection serves every item type.
    table_connection = BoundRunItem._get_connection()
    for model in (
        BoundCheckpointItem,
        BoundInboxItem,
        BoundIdempotencyItem,
        BoundEventIdItem,
        BoundCallbackItem,
        BoundBatchItem,
        BoundBatchResultItem,
        BoundTableConfigItem,
        BoundPurgeLeaseItem,
        BoundTagItem,
    ):
        model._connection = table_connection
    return TableModels(
        table_name=table_name,
        region=region,
        endpoint_url=endpoint_url,
        run=BoundRunItem,
        checkpoint=BoundCheckpointItem,
        inbox=BoundInboxItem,
        idempotency=BoundIdempotencyItem,
        event_id=BoundEventIdItem,
        callback=BoundCallbackItem,
        batch=BoundBatchItem,
        batch_result=BoundBatchResultItem,
        config=BoundTableConfigItem,
        purge_lease=BoundPurgeLeaseItem,
        tag=BoundTagItem,
        connection=table_connection.connection,
    )


def create_table(
    table_name: str,
    region: str,
    endpoint_url: str | None = None,
    *,
    shards: int = DEFAULT_SHARDS,
) -> None:
    """Create the table with its indexes (on-demand billing) unless it exists; waits for it.

    A table created here gets its config item, with `shards`. An existing table is left as
    it is: the shard count of a table is fixed once its runs are keyed by it (and a table
    of the first layout is `durable migrate`'s to change).
    """
    if shards < 1:
        raise ValueError("a table needs at least one index shard")
    models = make_models(table_name, region, endpoint_url)
    if models.run.exists():
        return
    # The run model carries every index, so its schema is the table's schema.
    models.run.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    config = models.config(CONFIG_PK, CONFIG_SK, layout=LAYOUT_VERSION, index_shards=shards)
    try:
        config.save(condition=models.config.pk.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
