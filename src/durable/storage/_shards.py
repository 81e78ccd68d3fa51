"""Index shards: which shard a run is in, merging the shards of a query, listing cursors.

Each index key of the table ends in a shard number (see `durable.storage._tables`), derived
from the run id alone, so that every process puts a run in the same shard:

    shard_of(run_id, shards) = int(sha256(run_id)[:8 hex digits], 16) % shards

(never Python's `hash`, which differs between processes). A query over an index is one
query per shard, each read lazily in the index's order, and `ShardMerge` merges them:

    shard 0: r9 r4 r1          ShardMerge (newest first)
    shard 1: r8 r7 r2    ───►  r9 r8 r7 r6 r4 | r2 r1 ...   (ties, if any, by shard)
    shard 2: r6                                 ^ a page of 5 ends: cursor(after=r4, done={2})

A listing page consumes the merged runs in order, so when it stops after run `r`, every
shard has been read down to `r` (anything newer in a shard came out before `r`). Its cursor
therefore carries one position that holds for every shard, the last run id consumed, and the
shards read to their end, which the next page does not query again. It also names the
listing it belongs to (filters and shard count): a cursor of another listing is an
`InputError`, as is any cursor that does not decode.

A merge must see the head of every shard before it yields anything, so the first read of
each shard is one round trip that `first_reads_at_once` makes for all shards concurrently;
whatever a shard yields after its first page is read lazily by the merge, as it needs it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, wait
from dataclasses import dataclass
from itertools import chain, groupby
from typing import Any, Generic, TypeVar

from durable.errors import InputError

T = TypeVar("T")
_CURSOR_VERSION = 1


def shard_of(run_id: str, shards: int) -> int:
    """The index shard of a run: stable across processes and Python versions."""
    return int(hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:8], 16) % shards


class _Descending:
    """A sort key that orders the other way round (heapq only pops the smallest)."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.key < self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and bool(self.key == other.key)

    __hash__ = None  # type: ignore[assignment]  # unhashable, as __eq__ is defined


class ShardMerge(Generic[T]):
    """Merges per-shard streams, each sorted by `sort_key`, into one sorted stream.

    Lazy: it holds the head of each shard's stream and reads a shard's next entry only when
    its head is taken. `exhausted` names the shards whose stream has ended.
    """

    def __init__(
        self,
        streams: Mapping[int, Iterator[T]],
        sort_key: Callable[[T], Any],
        *,
        descending: bool = False,
    ) -> None:
        self._streams = dict(streams)
        self._sort_key = sort_key
        self._descending = descending
        self._heap: list[tuple[Any, int, T]] = []
        self.exhausted: set[int] = set()
        for shard in sorted(self._streams):
            self._advance(shard)

    def _advance(self, shard: int) -> None:
        for entry in self._streams[shard]:
            key = self._sort_key(entry)
            # (key, shard) is unique while each shard has one entry in the heap: entries
            # themselves are never compared.
            heapq.heappush(
                self._heap, (_Descending(key) if self._descending else key, shard, entry)
            )
            return
        self.exhausted.add(shard)

    @property
    def more(self) -> bool:
        """Whether an entry is left in any shard."""
        return bool(self._heap)

    def take(self, count: int) -> list[T]:
        """The next `count` entries in order (fewer when the shards run out)."""
        taken: list[T] = []
        while self._heap and len(taken) < count:
            _key, shard, entry = heapq.heappop(self._heap)
            taken.append(entry)
            self._advance(shard)
        return taken


def first_reads_at_once(
    open_streams: Mapping[int, Callable[[], Iterator[T]]], executor: Executor | None
) -> dict[int, Iterator[T]]:
    """Each shard's stream (`open_streams[shard]()`) with its first entry read already.

    The first reads run on `executor`, all at once (one after another without one); the
    rest of each stream is left to be read lazily by whoever iterates it. Should any shard
    fail, every read is waited for and the error of the lowest such shard is raised: the
    error a sequential read would have met first.
    """
    if executor is None:
        return {shard: _first_read(open_stream) for shard, open_stream in open_streams.items()}
    futures = {
        shard: executor.submit(_first_read, open_stream)
        for shard, open_stream in open_streams.items()
    }
    wait(futures.values())
    return {shard: future.result() for shard, future in sorted(futures.items())}


def _first_read(open_stream: Callable[[], Iterator[T]]) -> Iterator[T]:
    """The stream `open_stream` opens, its first entry read already (for a query, the
    request that fetches its first page), then the rest of it."""
    stream = open_stream()
    for first in stream:
        return chain((first,), stream)
    return iter(())


def sorted_within_ties(
    entries: Iterable[T], range_key: Callable[[T], Any], tie_key: Callable[[T], Any]
) -> Iterator[T]:
    """`entries` (sorted by `range_key`, as an index returns them) with each run of equal
    range keys sorted by `tie_key`: DynamoDB does not promise an order among index items
    with equal keys, and a merge needs each stream fully sorted."""
    for _key, group in groupby(entries, key=range_key):
        yield from sorted(group, key=tie_key)


def per_shard_page(limit: int, shards: int, cap: int | None) -> int:
    """How many index entries to ask each shard for at a time: a little more than its share
    of `limit`, so that most listings read one page per shard."""
    share = -(-limit // shards) + 1
    return max(2, min(share, cap) if cap else share)


@dataclass(frozen=True, slots=True)
class ListingCursor:
    """Where a run listing stopped: after run `after` in every shard but the `done` ones."""

    after: str
    done: frozenset[int]

    def encode(self, listing: Mapping[str, Any]) -> str:
        body = {
            "v": _CURSOR_VERSION,
            "l": dict(listing),
            "a": self.after,
            "d": sorted(self.done),
        }
        raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str, listing: Mapping[str, Any], shards: int) -> ListingCursor:
        """The cursor `cursor` of the listing `listing`; `InputError` if it is not one."""
        invalid = InputError(f"invalid cursor {cursor[:40]!r}")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            body = json.loads(raw)
        except (binascii.Error, ValueError) as exc:
            raise invalid from exc
        if not isinstance(body, dict) or body.get("v") != _CURSOR_VERSION:
            raise invalid
        after, done = body.get("a"), body.get("d")
        if body.get("l") != dict(listing):
            raise InputError("this cursor belongs to another listing (other filters or table)")
        if not isinstance(after, str) or not after or not isinstance(done, list):
            raise invalid
        if not all(isinstance(shard, int) and 0 <= shard < shards for shard in done):
            raise invalid
        return cls(after=after, done=frozenset(done))
