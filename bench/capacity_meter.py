"""What each AWS request does to the table and its indexes, measured in process on moto.

`AwsMeter` wraps botocore's `BaseClient._make_api_call` (PynamoDB and boto3 both go through
it). For every DynamoDB write it reads the item's image from moto's backend before and
after the call and works out, for the table and for each secondary index read from
`DescribeTable` (key schema and projection, never today's layout hard-coded):

- an index entry is written when the item enters the index (a put), leaves it (a delete),
  changes its index key (a delete plus a put: 2 writes) or changes an attribute the index
  projects (ALL: any; INCLUDE: the keys and the listed attributes; KEYS_ONLY: the keys);
- request units as DynamoDB bills on-demand: 1 write unit per KB of the larger of the
  before and after images (a delete: the old image; a write whose condition fails still
  costs), doubled inside a transaction; 1 read unit per 4 KB read strongly consistent,
  half eventually consistent (index reads always are), at least one unit per request;
- the partition key value each write and read lands on (the table's and the index's).

Each access is attributed to the top-level run whose id its table key names (children's ids
start with their parent's); the rest (the sweeper's index queries) to `unattributed`.
The meter also times each call, so that a worker invocation's own compute can be told from
the time moto takes to answer it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.capacity_model import Access, RunTrace
from bench.dynamodb_items import (
    TABLE,
    TableLayout,
    index_entry_writes,
    item_size,
    read_units,
    scalar,
    write_units,
)

RUN_ID = re.compile(r"run_[0-9a-f]{32}")
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


@dataclass
class Invocation:
    """The worker invocation in progress: when it started (modeled) and what it waited for."""

    modeled_start: float
    wall_start: float
    aws_seconds: float = 0.0  # time inside AWS calls (moto's, not modeled)
    requests: int = 0


@dataclass
class AwsMeter:
    """Counts and attributes every AWS request made while it is installed (see module doc)."""

    layout: TableLayout
    table_name: str
    backend: Any  # moto's DynamoDB backend for the region
    latency: float  # assumed seconds per AWS request in region (modeled time)
    traces: dict[str, RunTrace] = field(default_factory=dict)  # top-level run id -> trace
    unattributed: RunTrace = field(default_factory=lambda: RunTrace(runs=0))
    current: str | None = None  # the top-level run being driven
    invocation: Invocation | None = None
    base_time: float = 0.0  # modeled time of calls made outside an invocation

    def modeled_now(self) -> float:
        call = self.invocation
        if call is None:
            return self.base_time
        compute = time.perf_counter() - call.wall_start - call.aws_seconds
        return call.modeled_start + compute + call.requests * self.latency

    def _trace_for(self, text: str) -> RunTrace:
        """The trace of the top-level run `text` names, else the run being driven."""
        match = RUN_ID.search(text)
        if match is not None and match.group(0) in self.traces:
            return self.traces[match.group(0)]
        if self.current is not None:
            return self.traces[self.current]
        return self.unattributed

    # -- the hook -----------------------------------------------------------------------

    def record(
        self, service: str, operation: str, params: dict[str, Any], call: Callable[[], Any]
    ) -> Any:
        at = self.modeled_now()
        befores = self._images(operation, params) if service == "dynamodb" else []
        started = time.perf_counter()
        response: Any = None
        try:
            response = call()
            return response
        finally:
            elapsed = time.perf_counter() - started
            if self.invocation is not None:
                self.invocation.aws_seconds += elapsed
                self.invocation.requests += 1
            trace = self._trace_for(self._request_text(service, params))
            trace.requests[f"{service}.{operation}"] += 1
            if service == "dynamodb":
                self._dynamodb(operation, params, response, befores, at)

    def _request_text(self, service: str, params: dict[str, Any]) -> str:
        """The part of a request that names the run it is for, if any."""
        if service == "sqs":
            return str(params.get("MessageBody") or params.get("Entries") or "")
        if service == "dynamodb" and "KeyConditionExpression" in params:
            return str(params.get("ExpressionAttributeValues") or "")
        return str(
            params.get("Key")
            or params.get("Item")
            or params.get("TransactItems")
            or params.get("RequestItems")
            or ""
        )

    # -- DynamoDB --------------------------------------------------------------------------

    def _writes_of(
        self, operation: str, params: dict[str, Any]
    ) -> list[tuple[dict[str, Any], bool]]:
        """The table keys a write request touches, each with whether it is transactional."""
        table = self.layout.table
        keys: list[tuple[dict[str, Any], bool]] = []

        def key_of(body: dict[str, Any]) -> dict[str, Any]:
            source = body.get("Key") or body.get("Item") or {}
            return {name: source[name] for name in table.table_keys}

        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            keys.append((key_of(params), False))
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((_, body),) = entry.items()
                keys.append((key_of(body), True))
        elif operation == "BatchWriteItem":
            for request in params["RequestItems"].get(self.table_name, []):
                ((_, body),) = request.items()
                keys.append((key_of(body), False))
        return keys

    def _image(self, key: dict[str, Any]) -> dict[str, Any] | None:
        try:
            item = self.backend.get_item(self.table_name, key)
        except Exception:
            return None
        return None if item is None else dict(item.to_json()["Attributes"])

    def _images(self, operation: str, params: dict[str, Any]) -> list[dict[str, Any] | None]:
        if operation not in WRITE_OPERATIONS:
            return []
        return [self._image(key) for key, _ in self._writes_of(operation, params)]

    def _dynamodb(
        self,
        operation: str,
        params: dict[str, Any],
        response: Any,
        befores: list[dict[str, Any] | None],
        at: float,
    ) -> None:
        if operation in WRITE_OPERATIONS:
            writes = self._writes_of(operation, params)
            for (key, transactional), before in zip(writes, befores, strict=True):
                self._write(operation, key, before, self._image(key), transactional, at)
        elif operation == "GetItem":
            item = (response or {}).get("Item")
            self._read(
                TABLE,
                scalar(params["Key"][self.layout.table.hash_key]),
                item_size(item),
                bool(params.get("ConsistentRead")),
                operation,
                at,
            )
        elif operation == "Query":
            self._query(params, response or {}, at)
        elif operation == "Scan":
            size = sum(item_size(i) for i in (response or {}).get("Items", []))
            self._read(
                params.get("IndexName") or TABLE,
                "<scan>",
                size,
                bool(params.get("ConsistentRead")),
                operation,
                at,
            )

    def _write(
        self,
        operation: str,
        key: dict[str, Any],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        transactional: bool,
        at: float,
    ) -> None:
        table = self.layout.table
        pk = scalar(key[table.hash_key])
        trace = self._trace_for(pk)  # an index write belongs to the run whose item it copies
        units = write_units(max(item_size(before), item_size(after)))
        changed = before != after
        trace.accesses.append(
            Access(
                TABLE,
                pk,
                units * (2 if transactional else 1),
                0.0,
                int(changed),
                at,
                operation,
                shared=RUN_ID.search(pk) is None,
            )
        )
        for index in self.layout.indexes:
            for index_key, units, writes in index_entry_writes(index, before, after):
                trace.accesses.append(
                    Access(
                        index.name,
                        index_key,
                        units,
                        0.0,
                        writes,
                        at,
                        operation,
                        shared=RUN_ID.search(index_key) is None,
                    )
                )

    def _read(
        self, target: str, key: str, size: int, consistent: bool, operation: str, at: float
    ) -> None:
        trace = self._trace_for(key)
        trace.accesses.append(
            Access(
                target,
                key,
                0.0,
                read_units(size, consistent),
                0,
                at,
                operation,
                shared=RUN_ID.search(key) is None,
            )
        )

    def _query(self, params: dict[str, Any], response: dict[str, Any], at: float) -> None:
        index = self.layout.index(params.get("IndexName"))
        names = params.get("ExpressionAttributeNames", {})
        values = params.get("ExpressionAttributeValues", {})
        key = "<unknown>"
        for name, placeholder in re.findall(
            r"([#\w]+)\s*=\s*(:\w+)", params.get("KeyConditionExpression", "")
        ):
            if names.get(name, name) == index.hash_key and placeholder in values:
                key = scalar(values[placeholder])
        # Billed on the index entries read (before any filter), not on what is returned.
        size = 0
        for item in response.get("Items", []):
            full = self._image({k: item[k] for k in index.table_keys if k in item})
            size += item_size(index.entry(full) if full else item)
        returned, scanned = response.get("Count", 0), response.get("ScannedCount", 0)
        if returned and scanned > returned:
            size = size * scanned // returned
        consistent = index.name == TABLE and bool(params.get("ConsistentRead"))
        self._read(index.name, key, size, consistent, "Query", at)


@contextmanager
def metering(meter: AwsMeter) -> Iterator[AwsMeter]:
    """Route every botocore API call made inside the block through `meter.record`."""
    from botocore.client import BaseClient

    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private, untyped

    def metered(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        return meter.record(service, operation, params, lambda: original(client, operation, params))

    setattr(BaseClient, "_make_api_call", metered)  # noqa: B010
    try:
        yield meter
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010
