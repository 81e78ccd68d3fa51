"""A fake warehouse of business numbers: deterministic figures for any day."""

from __future__ import annotations

import zlib

from tasks.fakes.base import Fake, ServiceUnavailable, take_one


class FakeMetricsSource(Fake):
    """A warehouse of business numbers: deterministic figures for any day."""

    name = "metrics"

    def daily_numbers(self, day: str) -> dict[str, int]:
        """Orders, revenue and sign-ups for `day` (ISO date)."""
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            failed = take_one(state, "fail_next")
        if failed:
            raise ServiceUnavailable("metrics warehouse is unavailable (simulated outage)")
        seed = zlib.crc32(day.encode())
        orders = 50 + seed % 200
        return {
            "orders": orders,
            "revenue_cents": orders * (1500 + seed % 1000),
            "signups": 5 + (seed >> 8) % 40,
        }

    def fail_next(self, times: int = 1) -> None:
        with self._state.edit() as state:
            state["fail_next"] = times

    @property
    def calls(self) -> int:
        return int(self._state.read().get("calls", 0))
