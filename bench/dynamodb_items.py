"""DynamoDB items as DynamoDB bills and indexes them: sizes, request units, index writes.

Shared by the benchmarks that estimate what a run costs from the items it writes
(`capacity_meter.py`, `overhead.py`, `index_writes.py`). Self-contained, so that a script run
as `python bench/x.py` imports it as `dynamodb_items` and a module run as `python -m bench.x`
as `bench.dynamodb_items`.

- Item sizes as "Item sizes" in the DynamoDB guide counts them (the wire form:
  `{"S": "..."}` attribute values).
- Request units as DynamoDB bills on-demand: 1 write unit per KB, 1 read unit per 4 KB read
  strongly consistent (half eventually consistent), at least one unit per request.
- The table and its secondary indexes as `DescribeTable` tells them (`TableLayout`), and
  what an item write does to an index (`index_entry_writes`): an index entry is written
  when the item enters the index (a put), leaves it (a delete), changes its index key (a
  delete plus a put: 2 writes) or changes an attribute the index projects (ALL: any;
  INCLUDE: the keys and the listed attributes; KEYS_ONLY: the keys).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

TABLE = "table"  # the target name of the base table (indexes go by their index name)


def attribute_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value (see "Item sizes" in the DynamoDB guide)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "")
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "BS"):
        return sum(len(s.encode() if isinstance(s, str) else s) for s in inner)
    if kind == "NS":
        return sum(attribute_size({"N": n}) for n in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in inner)
    return len(str(inner))


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def scalar(value: dict[str, Any]) -> str:
    ((_, inner),) = value.items()
    return str(inner)


def write_units(size: int) -> float:
    return float(max(1, math.ceil(size / 1024)))


def read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


@dataclass(frozen=True, slots=True)
class IndexLayout:
    """The table or one secondary index, as DescribeTable tells it."""

    name: str  # TABLE for the base table
    hash_key: str
    range_key: str | None
    projection: str  # ALL | KEYS_ONLY | INCLUDE (the table: ALL)
    included: frozenset[str]
    table_keys: tuple[str, ...]

    def holds(self, image: dict[str, Any] | None) -> bool:
        if not image or self.hash_key not in image:
            return False
        return self.range_key is None or self.range_key in image

    def key(self, image: dict[str, Any]) -> tuple[str, str | None]:
        return scalar(image[self.hash_key]), (
            scalar(image[self.range_key]) if self.range_key else None
        )

    def entry(self, image: dict[str, Any]) -> dict[str, Any]:
        """The index entry of an item it holds: the attributes it projects."""
        if self.projection == "ALL":
            return image
        names = {self.hash_key, *self.table_keys}
        if self.range_key:
            names.add(self.range_key)
        if self.projection == "INCLUDE":
            names |= self.included
        return {name: value for name, value in image.items() if name in names}

    def describe(self) -> str:
        key = self.hash_key + (f" + {self.range_key}" if self.range_key else "")
        projection = self.projection
        if projection == "INCLUDE":
            projection += " " + ",".join(sorted(self.included))
        return f"{self.name} ({key}; {projection})"


@dataclass(frozen=True, slots=True)
class TableLayout:
    table: IndexLayout
    indexes: tuple[IndexLayout, ...]

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> TableLayout:
        def keys(schema: list[dict[str, str]]) -> tuple[str, str | None]:
            hash_key = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
            ranges = [k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"]
            return hash_key, ranges[0] if ranges else None

        table_hash, table_range = keys(description["KeySchema"])
        table_keys = (table_hash,) + ((table_range,) if table_range else ())
        table = IndexLayout(TABLE, table_hash, table_range, "ALL", frozenset(), table_keys)
        indexes = []
        for index in description.get("GlobalSecondaryIndexes", []) + description.get(
            "LocalSecondaryIndexes", []
        ):
            hash_key, range_key = keys(index["KeySchema"])
            projection = index.get("Projection", {})
            indexes.append(
                IndexLayout(
                    name=index["IndexName"],
                    hash_key=hash_key,
                    range_key=range_key,
                    projection=projection.get("ProjectionType", "ALL"),
                    included=frozenset(projection.get("NonKeyAttributes", [])),
                    table_keys=table_keys,
                )
            )
        return cls(table, tuple(indexes))

    def index(self, name: str | None) -> IndexLayout:
        if name is None:
            return self.table
        return next(index for index in self.indexes if index.name == name)


def index_entry_writes(
    index: IndexLayout, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> Iterator[tuple[str, float, int]]:
    """(partition key value, write units, items written) for one index and one item write."""
    was, now = index.holds(before), index.holds(after)
    if was and before is not None:
        old_key, old_entry = index.key(before), index.entry(before)
    if now and after is not None:
        new_key, new_entry = index.key(after), index.entry(after)
    if was and now:
        if old_key != new_key:
            yield old_key[0], write_units(item_size(old_entry)), 1
            yield new_key[0], write_units(item_size(new_entry)), 1
        elif old_entry != new_entry:
            size = max(item_size(old_entry), item_size(new_entry))
            yield new_key[0], write_units(size), 1
    elif was:
        yield old_key[0], write_units(item_size(old_entry)), 1
    elif now:
        yield new_key[0], write_units(item_size(new_entry)), 1
