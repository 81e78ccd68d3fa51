"""`durable.storage._shards`: the merge of per-shard streams and the listing cursor, alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from durable.errors import InputError
from durable.storage._shards import ListingCursor, ShardMerge, per_shard_page, sorted_within_ties

LISTING = {"task": "orders", "status": None, "shards": 3}


class Counted:
    """A stream that counts how many entries were read from it."""

    def __init__(self, entries: list[str]) -> None:
        self.entries = entries
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        for entry in self.entries:
            self.read += 1
            yield entry


def test_the_merge_is_in_order_lazy_and_knows_the_shards_that_ran_out() -> None:
    streams = {0: Counted(["r9", "r4", "r1"]), 1: Counted(["r8", "r7", "r2"]), 2: Counted(["r6"])}

    merge = ShardMerge({k: iter(s) for k, s in streams.items()}, str, descending=True)
    first = merge.take(5)

    assert first == ["r9", "r8", "r7", "r6", "r4"]
    assert merge.exhausted == {2}  # shard 2 gave its one run and ended
    assert [streams[0].read, streams[1].read] == [3, 3]  # each one ahead, no more
    assert merge.more
    assert merge.take(10) == ["r2", "r1"]
    assert not merge.more and merge.exhausted == {0, 1, 2}


def test_ties_come_out_by_shard() -> None:
    merge = ShardMerge({1: iter([(5, "b")]), 0: iter([(5, "a")])}, lambda e: e[0])

    assert merge.take(2) == [(5, "a"), (5, "b")]


def test_equal_range_keys_are_sorted_by_the_tie_key() -> None:
    entries = [(1, "z"), (1, "a"), (2, "c"), (2, "b"), (3, "a")]

    assert list(sorted_within_ties(entries, lambda e: e[0], lambda e: e[1])) == [
        (1, "a"),
        (1, "z"),
        (2, "b"),
        (2, "c"),
        (3, "a"),
    ]


def test_a_page_asks_each_shard_for_a_little_more_than_its_share() -> None:
    assert per_shard_page(50, 64, None) == 2
    assert per_shard_page(1000, 64, None) == 17
    assert per_shard_page(1000, 64, 5) == 5


def test_a_cursor_round_trips_for_its_listing_only() -> None:
    cursor = ListingCursor(after="run_000042", done=frozenset({2}))
    text = cursor.encode(LISTING)

    assert ListingCursor.decode(text, LISTING, 3) == cursor
    with pytest.raises(InputError, match="another listing"):
        ListingCursor.decode(text, {**LISTING, "task": "refunds"}, 3)
    with pytest.raises(InputError, match="another listing"):
        ListingCursor.decode(text, {**LISTING, "shards": 4}, 4)
    with pytest.raises(InputError):
        ListingCursor.decode(text[:-3], LISTING, 3)
    with pytest.raises(InputError):  # a shard the table does not have
        ListingCursor.decode(ListingCursor("run_1", frozenset({7})).encode(LISTING), LISTING, 3)
