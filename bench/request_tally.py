"""AWS requests counted at botocore, with the DynamoDB request units they cost (`overhead.py`).

`counting_aws_requests()` wraps botocore's `BaseClient._make_api_call` (PynamoDB and boto3
both go through it) for the length of a block; its `Tally` counts every call, failed ones
too, by "service.Operation", and estimates request units from the item sizes on the wire
(`dynamodb_items`: 1 WRU per KB written, transactions double; 1 RRU per 4 KB read strongly
consistent, half eventually consistent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dynamodb_items import item_size, read_units, write_units


@dataclass
class Tally:
    """AWS requests seen, by "service.Operation", and the request units they cost."""

    calls: Counter[str] = field(default_factory=Counter)
    wru: float = 0.0
    rru: float = 0.0
    active: bool = True

    def record(self, service: str, operation: str, params: dict[str, Any], response: Any) -> None:
        if not self.active:
            return
        self.calls[f"{service}.{operation}"] += 1
        if service != "dynamodb":
            return
        response = response if isinstance(response, dict) else {}
        consistent = bool(params.get("ConsistentRead", False))
        if operation == "PutItem":
            self.wru += write_units(item_size(params["Item"]))
        elif operation in ("UpdateItem", "DeleteItem"):
            size = item_size(response.get("Attributes") or params.get("Key", {}))
            self.wru += write_units(size)
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                (body,) = entry.values()
                size = item_size(body.get("Item") or body.get("Key", {}))
                self.wru += 2 * write_units(size)
        elif operation == "GetItem":
            size = item_size(response.get("Item") or {})
            self.rru += read_units(size, consistent)
        elif operation == "Query":
            size = sum(item_size(item) for item in response.get("Items", []))
            self.rru += read_units(size, consistent)

    def total(self, service: str) -> int:
        return sum(n for name, n in self.calls.items() if name.startswith(service + "."))

    def writes(self) -> int:
        write_ops = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")
        return sum(self.calls[f"dynamodb.{op}"] for op in write_ops)

    def reads(self) -> int:
        return self.total("dynamodb") - self.writes()


@contextmanager
def counting_aws_requests() -> Iterator[Tally]:
    """Count every botocore API call made inside the block (failed ones too)."""
    from botocore.client import BaseClient

    tally = Tally()
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private, untyped

    def counted(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        response: Any = None
        try:
            response = original(client, operation, params)
            return response
        finally:
            tally.record(client.meta.service_model.service_name, operation, params, response)

    setattr(BaseClient, "_make_api_call", counted)  # noqa: B010 - mypy refuses a direct assignment
    try:
        yield tally
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010
