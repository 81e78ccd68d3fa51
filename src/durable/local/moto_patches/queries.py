"""Patch 3: a base-table `Query` reads one partition.

3. moto collects and sorts every item of the table (`Table.all_items`) and then keeps those
   with the queried hash key: O(table log table) for every history load and inbox read.
   While a base-table query with a hash key runs, `Table.all_items` answers with that
   partition's items only, sorted as before; moto then filters them exactly as it did. An
   index query still looks at every item (a GSI has no partitions in moto), but without
   the first sort: moto sorts the matching items again by the index's keys and the primary
   key, which leaves no ties, so the order of its input cannot show. The indexes are
   sharded (`durable.storage._tables`): a listing or a sweep makes one index query per
   shard, each a pass over the table, which is why `durable dev` creates its table with
   few shards (`DEV_INDEX_SHARDS`).
"""

from __future__ import annotations

import threading
from typing import Any

from durable.local.moto_patches.originals import original, patch

_partition = threading.local()


def install() -> None:
    from moto.dynamodb.models.table import Table

    patch(Table, "query", _partition_query)
    patch(Table, "all_items", _all_items)


_UNSORTED = object()  # the hint of an index query: every item, in no particular order


def _partition_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    from moto.dynamodb.models.table import Table

    query = original(Table, "query")
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if not index_name and hash_key is None:
        return query(self, hash_key, *args, **kwargs)
    _partition.hint = (self, _UNSORTED if index_name else hash_key)
    try:
        return query(self, hash_key, *args, **kwargs)
    finally:
        _partition.hint = None


def _all_items(self: Any) -> list[Any]:
    from moto.dynamodb.models.table import Table

    hint = getattr(_partition, "hint", None)
    if hint is None or hint[0] is not self:
        return original(Table, "all_items")(self)  # type: ignore[no-any-return]  # moto's method is untyped
    _partition.hint = None  # once: the query's own call
    if hint[1] is _UNSORTED:
        if not self.range_key_attr:
            return list(self.items.values())
        return [item for partition in self.items.values() for item in partition.values()]
    partition = self.items.get(hint[1])
    if partition is None:
        return []
    if not self.range_key_attr:
        return [partition]
    return sorted(partition.values(), key=lambda item: item.range_key)
