"""Patches 15 and 16: an index query's sort and projection without moto's per-value costs.

Found by bench/dashboard_load.py (10,000 runs in `durable dev`'s table, one index shard):
moto answers an index query by collecting every item with the queried index key, sorting
them all, then projecting the page's items; both steps cost far more than the pass itself.

15. `Table.sorted_items` sorts on tuples of `DynamoType`s, whose comparisons compute both
    sides' `cast_value` (a `Decimal` for a number) at each of the n log n comparisons: the
    all-runs index of 10,000 runs took 150 ms to sort for every listing page. The patch
    sorts on the same attributes' `cast_value`s, computed once per item (a string's is
    its text, read directly). `DynamoType`
    orders by `cast_value` alone (`__lt__`), and key attributes are scalars of one type
    per attribute, so the order is the same.
16. `Item.project` converts the whole item to plain JSON (`to_regular_json`) once for each
    attribute it keeps: an INCLUDE index keeping ten attributes converts each item ten
    times (half of a `GET /metrics` with a thousand active runs). When every expression is
    a top-level name (how an index projects), the patch converts the item once and keeps
    the same attributes; any other projection goes to moto's own method.
"""

from __future__ import annotations

from typing import Any

from durable.local.moto_patches.originals import original, patch


def install() -> None:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    patch(Table, "sorted_items", _sorted_items)
    patch(Item, "project", _project)


def _sorted_items(
    self: Any, hash_key_attrs: list[str], range_key_attrs: list[str | None], items: list[Any]
) -> list[Any]:
    attrs = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
    items.sort(key=lambda item: tuple([_sort_value(item.attrs[name]) for name in attrs]))
    return items


def _sort_value(value: Any) -> Any:
    """`value.cast_value`, without its five type tests for a string or binary (the key of
    every index the project makes is a string)."""
    return value.value if value.type in ("S", "B") else value.cast_value


def _project(self: Any, projection_expressions: list[list[str]]) -> Any:
    from moto.dynamodb.models.dynamo_type import Item, serializer

    if not all(len(path) == 1 and "[" not in path[0] for path in projection_expressions):
        return original(Item, "project")(self, projection_expressions)
    regular = self.to_regular_json()
    kept = {path[0]: regular[path[0]] for path in projection_expressions if path[0] in regular}
    return Item(
        hash_key=self.hash_key,
        range_key=self.range_key,
        attrs=dict(serializer.serialize(kept)["M"]),
    )
