"""A fake pricing service for the batch and catalog examples."""

from __future__ import annotations

import zlib
from typing import Any

from tasks.fakes.base import Fake, ServiceUnavailable, take_one


class UnknownSku(Exception):
    """The pricing service does not sell this SKU (any SKU starting `discontinued`)."""


class FakePricingService(Fake):
    """Prices line items: a deterministic unit price per SKU."""

    name = "pricing"

    def quote(self, sku: str, quantity: int) -> dict[str, Any]:
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            failed = take_one(state, "fail_next")
        if failed:
            raise ServiceUnavailable("pricing service is unavailable (simulated outage)")
        if sku.startswith("discontinued"):
            raise UnknownSku(f"no price for {sku!r}: it is not sold any more")
        unit_cents = 100 + zlib.crc32(sku.encode()) % 4900
        return {
            "sku": sku,
            "quantity": quantity,
            "unit_cents": unit_cents,
            "total_cents": unit_cents * quantity,
        }

    def fail_next(self, times: int = 1) -> None:
        with self._state.edit() as state:
            state["fail_next"] = times

    @property
    def calls(self) -> int:
        return int(self._state.read().get("calls", 0))
