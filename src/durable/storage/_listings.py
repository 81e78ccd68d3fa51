"""The read side of the sharded indexes: listings, due runs and expired runs.

Each query is one query per shard of an index (PynamoDB's own query, paged lazily, a few
entries per shard at a time), merged by `durable.storage._shards.ShardMerge`; the runs of a
page are then read from the table (`read_runs`: one consistent `BatchGetItem`) in the
merged order. A run changed since its index entry was read (another status, no longer due,
deleted) is left out, and the merge read further for as many others. PynamoDB errors pass
through: `DynamoDBRunStore` translates them.

A listing (`list_runs`, a dashboard page) reads the first page of every shard at once on
the reader's `executor`, so it costs about one round trip however many shards there are;
the store gives it `shard_query_pool()`, a bounded pool whose threads live as long as the
process. Due and expired runs (the sweeper, the purge) query their shards one after
another: those paths are counted and ordered call by call by the fault-injection suite,
and no one waits on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any

from pynamodb.indexes import GlobalSecondaryIndex

from durable.aws import MAX_POOL_CONNECTIONS
from durable.records import RunRecord, RunStatus
from durable.storage import _tables
from durable.storage._items import RunItem
from durable.storage._shards import (
    ListingCursor,
    ShardMerge,
    first_reads_at_once,
    per_shard_page,
    sorted_within_ties,
)
from durable.storage.base import (
    MAX_EXAMINED_PER_PAGE,
    RunPage,
    finished_within,
    run_id_bound,
)

ReadRuns = Callable[[list[str]], list[RunRecord]]
# The threads that query a listing's shards, shared by every listing of the process. Each
# holds one of the botocore client's connections while its query is out: no more of them
# than the client keeps (`MAX_POOL_CONNECTIONS`), or connections would be opened and thrown
# away. A table of 64 shards is read in two waves.
SHARD_QUERY_THREADS = MAX_POOL_CONNECTIONS
# How many entries a filtered listing reads at a time (one BatchGetItem of 100 at most).
_FILTERED_CHUNK = 100


@cache
def shard_query_pool() -> Executor:
    """The process's pool for listings' shard queries, made on first use. Its threads stay
    (idle between invocations in Lambda), so a listing starts none, and they share the
    store's botocore client (PynamoDB builds one per connection, not one per thread)."""
    return ThreadPoolExecutor(max_workers=SHARD_QUERY_THREADS, thread_name_prefix="shard-query")


def _created_range(
    m: type[RunItem], low: str | None, high: str | None, after: str | None
) -> tuple[Any, str | None]:
    """The key condition on `created_key` for ids in [low, high) and below the cursor's
    `after`; and the one id the condition lets through that must be skipped (`after`
    itself, when `between` takes both ends). `low` and `high` are prefixes
    (`run_id_bound`): no run id equals one, so `between` needs no skip for them."""
    upper, upper_excluded = high, None
    if after is not None and (upper is None or after < upper):
        upper, upper_excluded = after, after
    if low is None:
        return (m.created_key < upper if upper is not None else None), None
    if upper is None:
        return m.created_key >= low, None
    return m.created_key.between(low, upper), upper_excluded


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def run_id_of(pk: str) -> str:
    """The run id in a run item's key (an index that projects only keys has no `run_id`)."""
    return pk.removeprefix("RUN#")


class IndexReader:
    """Queries over every shard of the table's indexes (see `durable.storage._tables`).

    With an `executor`, a listing's first read of each shard runs on it, all at once;
    without one, one shard after another (the same pages, only slower).
    """

    def __init__(
        self,
        run_model: type[RunItem],
        shards: int,
        page_size: int | None,
        read_runs: ReadRuns,
        *,
        executor: Executor | None = None,
    ) -> None:
        self._m = run_model
        self._shards = shards
        self._page_size = page_size  # a cap on the entries per query request (tests)
        self._read_runs = read_runs
        self._executor = executor

    def list_runs(
        self,
        task_id: str | None,
        status: RunStatus | None,
        limit: int,
        cursor: str | None,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        tag: str | None = None,
        finished_after: datetime | None = None,
        finished_before: datetime | None = None,
    ) -> RunPage:
        """Newest first, `limit` a page; the cursor names the listing and where it stopped.

        A creation-time range is part of every shard query's key condition (the range key,
        `created_key`, is the run id, which sorts by creation time): never a filter. So is
        a finish-time range's end (a run finished before an instant was created before it);
        the finish times themselves, and a tag listing's task and status, are checked on
        the runs read, at most `MAX_EXAMINED_PER_PAGE` index entries a page.
        """
        m, shards = self._m, self._shards
        listing: dict[str, object] = {
            "task": task_id,
            "status": str(status) if status else None,
            "shards": shards,
        }
        if tag is not None:
            listing["tag"] = tag
        finished = finished_after is not None or finished_before is not None
        if finished:
            listing["finished"] = [_iso(finished_after), _iso(finished_before)]
            if status is not None and not status.is_terminal:
                return RunPage(runs=[], next_cursor=None)  # no run in it has finished
        low = run_id_bound(created_after) if created_after is not None else None
        high = run_id_bound(created_before) if created_before is not None else None
        if low is not None or high is not None:
            listing["created"] = [low, high]
        if finished_before is not None:
            # Created at or before its finish, so in a millisecond up to finished_before's.
            bound = run_id_bound(finished_before + timedelta(milliseconds=1))
            high = bound if high is None else min(high, bound)
        position = ListingCursor.decode(cursor, listing, shards) if cursor else None
        per_shard = per_shard_page(limit, shards, self._page_size)
        after = position.after if position else None
        upper = after if after is not None and (high is None or after < high) else high
        if low is not None and upper is not None and upper <= low:
            return RunPage(runs=[], next_cursor=None)  # an empty range (DynamoDB refuses it)
        key_condition, skip = _created_range(m, low, high, after)

        def shard_query(shard: int) -> Iterator[RunItem]:
            if tag is not None:
                # A tag's entries are its runs' tag items, in `by-task` under a key no task
                # has (`_tables.tag_index_pk`); task and status are checked on the runs.
                items = m.task_index.query(
                    _tables.tag_index_pk(tag, shard),
                    key_condition,
                    scan_index_forward=False,
                    page_size=per_shard,
                )
            elif status is not None:
                # by-status projects task_id, so the task filter needs no second index.
                items = m.status_index.query(
                    _tables.status_pk(str(status), shard),
                    key_condition,
                    filter_condition=(m.task_id == task_id) if task_id is not None else None,
                    scan_index_forward=False,
                    page_size=per_shard,
                )
            elif task_id is not None:
                items = m.task_index.query(
                    _tables.task_pk(task_id, shard),
                    key_condition,
                    scan_index_forward=False,
                    page_size=per_shard,
                )
            else:
                items = m.all_runs_index.query(
                    _tables.all_runs_pk(shard),
                    key_condition,
                    scan_index_forward=False,
                    page_size=per_shard,
                )
            if skip is None:
                return items
            return (item for item in items if item.created_key != skip)

        def matches(run: RunRecord) -> bool:
            # The item is newer than the index: keep only what still matches.
            return (
                (task_id is None or run.task_id == task_id)
                and (status is None or run.status is status)
                and finished_within(run, finished_after, finished_before)
            )

        done = position.done if position else frozenset()
        first_pages = first_reads_at_once(
            {shard: partial(shard_query, shard) for shard in range(shards) if shard not in done},
            self._executor,
        )
        merge = ShardMerge(first_pages, lambda item: item.created_key, descending=True)
        # A listing whose filters the runs read decide examines a bounded number of entries.
        budget = (
            MAX_EXAMINED_PER_PAGE if finished or (tag is not None and (task_id or status)) else None
        )
        runs: list[RunRecord] = []
        last: str | None = None
        examined = 0
        while len(runs) < limit and merge.more:
            want = limit - len(runs)
            if budget is not None:
                want = min(max(want, _FILTERED_CHUNK), budget - examined)
                if want <= 0:
                    break
            keys = [str(item.created_key) for item in merge.take(want)]
            examined += len(keys)
            last = keys[-1]
            for run in self._read_runs(keys):
                if not matches(run):
                    continue
                runs.append(run)
                if len(runs) == limit and run.run_id != last:
                    # Full before the chunk's end: continue right after this run. Shards
                    # the merge finished past it may still hold entries before it, so
                    # none is marked done.
                    next_position = ListingCursor(after=run.run_id, done=done)
                    return RunPage(runs=runs, next_cursor=next_position.encode(listing))
        if not merge.more or last is None:
            return RunPage(runs=runs, next_cursor=None)
        next_position = ListingCursor(after=last, done=done | frozenset(merge.exhausted))
        return RunPage(runs=runs, next_cursor=next_position.encode(listing))

    def due_runs(self, before: datetime, limit: int, after: RunRecord | None) -> list[RunRecord]:
        """By (`wake_at`, run id), after `after`'s, up to `before` included.

        `after` is the last run of the previous page as it was read: should its `wake_at`
        have moved between the index read and the item read, the next page starts from the
        moved one (a run in between waits for the next sweep; none is lost: it stays due).
        """

        return self._wake_ups(before, limit, after, parked=False)

    def parked_timers(
        self, before: datetime, limit: int, after: RunRecord | None
    ) -> list[RunRecord]:
        """Parked runs (`due` under `TIMER#<k>`, `durable.storage.timers`), as `due_runs`."""
        return self._wake_ups(before, limit, after, parked=True)

    def _wake_ups(
        self, before: datetime, limit: int, after: RunRecord | None, parked: bool
    ) -> list[RunRecord]:
        """The `due` index's runs of one key space (parked or not) due by `before`."""

        def still_there(run: RunRecord) -> bool:
            due = run.wake_at is not None and run.wake_at <= before
            return due and run.wake_parked is parked

        return self._runs_by_instant(
            self._m.due_index,
            _tables.timer_pk if parked else _tables.due_pk,
            "wake_at",
            before=before,
            limit=limit,
            after=after,
            keep=still_there,
            shards=list(range(self._shards)),
        )

    def expired_runs(
        self, before: datetime, limit: int, shard: int | None, after: RunRecord | None
    ) -> list[RunRecord]:
        """Finished runs by (`expires_at`, run id), up to `before` included; of one shard
        when `shard` is given, after `after`'s (as `due_runs`) when it is given."""

        def expired(run: RunRecord) -> bool:
            # Only finished runs are ever given an expiry; this makes sure of it.
            return (
                run.status.is_terminal and run.expires_at is not None and run.expires_at <= before
            )

        return self._runs_by_instant(
            self._m.expiry_index,
            _tables.expiry_pk,
            "expires_at",
            before=before,
            limit=limit,
            after=after,
            keep=expired,
            shards=[shard] if shard is not None else list(range(self._shards)),
        )

    def _runs_by_instant(
        self,
        index: GlobalSecondaryIndex[RunItem],
        hash_key: Callable[[int], str],
        instant: str,
        *,
        before: datetime,
        limit: int,
        after: RunRecord | None,
        keep: Callable[[RunRecord], bool],
        shards: list[int],
    ) -> list[RunRecord]:
        """Up to `limit` runs from a sparse index whose range key is the run attribute
        `instant` (`wake_at`, `expires_at`): by (instant, run id), oldest first, up to
        `before` included, after `after`'s; read from the table, those `keep` refuses left
        out."""
        at = getattr(self._m, instant)
        after_at = getattr(after, instant) if after is not None else None
        start = (after_at, after.run_id) if after is not None and after_at else None
        per_shard = per_shard_page(limit, len(shards), self._page_size)

        def shard_query(shard: int) -> Iterator[tuple[datetime, str]]:
            in_range = at <= before if start is None else at.between(start[0], before)
            items = index.query(
                hash_key(shard), in_range, scan_index_forward=True, page_size=per_shard
            )
            entries = ((getattr(item, instant), run_id_of(item.pk)) for item in items)
            # Those at `after`'s own instant were on earlier pages up to `after` itself.
            return (
                entry
                for entry in sorted_within_ties(entries, lambda e: e[0], lambda e: e[1])
                if start is None or entry > start
            )

        merge = ShardMerge({shard: shard_query(shard) for shard in shards}, lambda e: e)
        runs: list[RunRecord] = []
        while len(runs) < limit and merge.more:
            run_ids = [run_id for _at, run_id in merge.take(limit - len(runs))]
            runs.extend(run for run in self._read_runs(run_ids) if keep(run))
        return runs
