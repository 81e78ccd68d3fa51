"""The items of the one DynamoDB table, as PynamoDB models, and its global secondary indexes.

The layout these items take (their keys, which index holds what, and why) is in
`durable.storage._tables`, which also binds the models to a table (`make_models`). Here are
only the attributes: an item class per kind of item, the index classes the run item
declares, and `ErrorMap`, an `ErrorInfo` as a map attribute. The counter items (`STATS#...`)
have no model: their attributes are named by their counters (`t_<name>`, `b_<name>`, and
`p` the bucket a ring slot's item holds), so `durable.storage.dynamodb.stats` writes them with plain
`UpdateItem` requests.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

TASK_INDEX = "by-task-v2"
STATUS_INDEX = "by-status-v2"
ALL_RUNS_INDEX = "all-runs-v2"
DUE_INDEX = "due-v2"
EXPIRY_INDEX = "expiry-v2"
# What each index projects beyond the keys: what a query on it filters on.
STATUS_INDEX_INCLUDES = ("task_id",)


class ErrorMap(MapAttribute[str, Any]):
    """`ErrorInfo` as a DynamoDB map."""

    type_name = UnicodeAttribute(attr_name="type")
    message = UnicodeAttribute()
    traceback = UnicodeAttribute(null=True)
    non_retryable = BooleanAttribute(null=True)


class TaskIndex(GlobalSecondaryIndex["RunItem"]):
    class Meta:
        index_name = TASK_INDEX
        projection = KeysOnlyProjection()

    task_pk = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class StatusIndex(GlobalSecondaryIndex["RunItem"]):
    class Meta:
        index_name = STATUS_INDEX
        projection = IncludeProjection(list(STATUS_INDEX_INCLUDES))

    status_pk = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class AllRunsIndex(GlobalSecondaryIndex["RunItem"]):
    class Meta:
        index_name = ALL_RUNS_INDEX
        projection = KeysOnlyProjection()

    all_pk = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class DueIndex(GlobalSecondaryIndex["RunItem"]):
    class Meta:
        index_name = DUE_INDEX
        projection = KeysOnlyProjection()

    due_pk = UnicodeAttribute(hash_key=True)
    wake_at = UTCDateTimeAttribute(range_key=True)


class ExpiryIndex(GlobalSecondaryIndex["RunItem"]):
    class Meta:
        index_name = EXPIRY_INDEX
        projection = KeysOnlyProjection()

    expiry_pk = UnicodeAttribute(hash_key=True)
    expires_at = UTCDateTimeAttribute(range_key=True)


class RunItem(Model):
    """The head item of a run: every `RunRecord` field plus the index keys."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    run_id = UnicodeAttribute()
    task_id = UnicodeAttribute()
    status = UnicodeAttribute()
    payload = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    attempt = NumberAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    result = UnicodeAttribute(null=True)
    error = ErrorMap(null=True)
    idempotency_key = UnicodeAttribute(null=True)
    task_version = UnicodeAttribute()
    code_version = UnicodeAttribute()
    wake_at = UTCDateTimeAttribute(null=True)
    wake_token = UnicodeAttribute(null=True)
    waiting_for = UnicodeAttribute(null=True)
    lease_owner = UnicodeAttribute(null=True)
    lease_expires = UTCDateTimeAttribute(null=True)
    checkpoints = NumberAttribute()
    cancel_requested = BooleanAttribute()
    parent_run_id = UnicodeAttribute(null=True)
    # Old items have neither: read as no tags and no metadata. (`tags` was once an unused
    # map, never written: an empty one is left out.)
    tags = ListAttribute(of=UnicodeAttribute, null=True)
    metadata: MapAttribute[str, str] = MapAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)
    batch_slot = UnicodeAttribute(null=True)
    crash_streak = NumberAttribute(null=True)
    held_code = UnicodeAttribute(null=True)
    origin = UnicodeAttribute(null=True)
    idempotency_expires_at = UTCDateTimeAttribute(null=True)
    queue = UnicodeAttribute(null=True)
    concurrency_key = UnicodeAttribute(null=True)
    priority = NumberAttribute(null=True)
    start_by = UTCDateTimeAttribute(null=True)

    # Index keys, derived from the fields above by the store (see the layout above).
    created_key = UnicodeAttribute()
    all_pk = UnicodeAttribute()
    task_pk = UnicodeAttribute()
    status_pk = UnicodeAttribute()
    due_pk = UnicodeAttribute()
    expiry_pk = UnicodeAttribute()

    task_index = TaskIndex()
    status_index = StatusIndex()
    all_runs_index = AllRunsIndex()
    due_index = DueIndex()
    expiry_index = ExpiryIndex()


class TableConfigItem(Model):
    """The table's layout version and index shard count (written by `create_table`)."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    layout = NumberAttribute()
    index_shards = NumberAttribute()


class PurgeLeaseItem(Model):
    """The lease of one expiry shard's purger (`durable.services.purge`): in no index."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    owner = UnicodeAttribute()
    lease_until = UTCDateTimeAttribute()


class CheckpointItem(Model):
    """One slot of a run's log."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    seq = NumberAttribute()
    kind = UnicodeAttribute()
    op = NumberAttribute()
    name = UnicodeAttribute()
    task_attempt = NumberAttribute()
    at = UTCDateTimeAttribute()
    step_attempt = NumberAttribute()
    value = UnicodeAttribute(null=True)
    error = ErrorMap(null=True)
    # Not `wake_at`: a checkpoint must never look like a run to the due index.
    cp_wake_at = UTCDateTimeAttribute(null=True)
    inbox_id = UnicodeAttribute(null=True)  # the inbox event the entry consumed, if any
    started_at = UTCDateTimeAttribute(null=True)  # a step attempt's start (absent in old logs)
    # A step attempt's argument preview: at most 4 KB (`step_input.MAX_INPUT_PREVIEW`), so
    # that an end item stays far below 400 KB beside its inline value and bounded error.
    input = UnicodeAttribute(null=True)


class InboxItem(Model):
    """An event delivered to a run, deleted once a log entry has consumed it."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    run_id = UnicodeAttribute()
    inbox_id = UnicodeAttribute()
    name = UnicodeAttribute()
    data = UnicodeAttribute()
    received_at = UTCDateTimeAttribute()


class IdempotencyItem(Model):
    """Claims (task_id, idempotency key) for the first run created under it, until
    `expires_at` when it has one (then a new run may replace the claim)."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    run_id = UnicodeAttribute()
    expires_at = UTCDateTimeAttribute(null=True)


class TagItem(Model):
    """One tag of a run, under the run's partition (`TAG#<tag>`): it carries the `by-task`
    index's keys, with a hash key no task has (`_tables.tag_index_pk`), so the index lists
    a tag's runs as it lists a task's."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    task_pk = UnicodeAttribute()
    created_key = UnicodeAttribute()


class EventIdItem(Model):
    """The inbox id an event sent with an `event_id` was given (a retried send reuses it)."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    inbox_id = UnicodeAttribute()


class CallbackItem(Model):
    """A callback, keyed by the hash of its token.

    Neither this item, nor the run's `waiting_for`, nor the inbox event that completes it
    hold the token: they hold its SHA-256. The one copy of the token is in the run's log
    (its CALLBACK_CREATED entry), because a replay must hand the same token back to the
    task code; views of the log redact it.
    """

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    run_id = UnicodeAttribute()
    name = UnicodeAttribute()
    expires_at = UTCDateTimeAttribute(null=True)
    completed = BooleanAttribute(default=False)
    outcome = UnicodeAttribute(null=True)  # the encoded data or error it was completed with


class BatchItem(Model):
    """A fan-out's definition and counters, beside its run's log."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    run_id = UnicodeAttribute()
    position = NumberAttribute()
    task_attempt = NumberAttribute()
    total = NumberAttribute()
    calls = UnicodeAttribute()
    max_concurrency = NumberAttribute()
    tolerated_failures = NumberAttribute()
    first_success = BooleanAttribute()
    succeeded = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)


class BatchResultItem(Model):
    """How one child of a fan-out ended."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    index = NumberAttribute()
    child_run_id = UnicodeAttribute()
    ok = BooleanAttribute()
    result = UnicodeAttribute(null=True)
    error = ErrorMap(null=True)
