"""Three fake parcel carriers that the fastest-quote example races."""

from __future__ import annotations

import zlib
from typing import Any

from tasks.fakes.base import Fake, ServiceUnavailable

CARRIERS = ("swiftship", "parcelpost", "boxline")


class FakeCarriers(Fake):
    """Three parcel carriers that quote a shipment: a deterministic price and delivery time
    per carrier, destination and weight. A carrier taken down answers ServiceUnavailable."""

    name = "carriers"

    def quote(self, carrier: str, destination: str, weight_grams: int) -> dict[str, Any]:
        if carrier not in CARRIERS:
            raise ValueError(f"unknown carrier {carrier!r}; the carriers are {CARRIERS}")
        with self._state.edit() as state:
            calls: dict[str, int] = state.setdefault("calls", {})
            calls[carrier] = calls.get(carrier, 0) + 1
            down = carrier in state.get("down", [])
        if down:
            raise ServiceUnavailable(f"{carrier} is not answering (simulated outage)")
        seed = zlib.crc32(f"{carrier}:{destination}".encode())
        return {
            "carrier": carrier,
            "price_cents": 400 + seed % 1600 + 50 * (weight_grams // 500),
            "days": 1 + seed % 5,
        }

    def take_down(self, *names: str) -> None:
        """These carriers fail every quote until `reset()`."""
        with self._state.edit() as state:
            state["down"] = sorted({*state.get("down", []), *names})

    def calls(self, carrier: str) -> int:
        """Quote requests `carrier` received, failed ones included."""
        return int(self._state.read().get("calls", {}).get(carrier, 0))
