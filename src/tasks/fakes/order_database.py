"""A fake orders table: any order id exists, created pending on first sight."""

from __future__ import annotations

import zlib
from typing import Any

from durable.testing import SimulatedCrash
from tasks.fakes.base import Fake, Records, take_one
from tasks.fakes.payment_provider import GOOD_CARD


class FakeOrderDatabase(Fake):
    """An orders table. Any order id exists: unknown ids get a deterministic pending order."""

    name = "orders"

    def __init__(self) -> None:
        super().__init__()
        self._orders = Records("orders-by-id")

    def reset(self) -> None:
        with self._state.edit() as state:
            state.clear()
            self._orders.clear()

    @staticmethod
    def _new_order(order_id: str) -> dict[str, Any]:
        return {
            "id": order_id,
            "amount_cents": 1000 + zlib.crc32(order_id.encode()) % 9000,
            "currency": "usd",
            "card_token": GOOD_CARD,
            "status": "pending",
            "payment_id": None,
        }

    def get(self, order_id: str) -> dict[str, Any]:
        """The order (created pending on first sight); counts the read."""
        with self._state.edit() as state:
            state["reads"] = state.get("reads", 0) + 1
            order = self._orders.get(order_id)
            if order is None:
                order = self._new_order(order_id)
                self._orders.put(order_id, order)
            return dict(order)

    def mark_paid(self, order_id: str, payment_id: str) -> dict[str, Any]:
        """Record the payment on the order."""
        return self._update(order_id, status="paid", payment_id=payment_id)

    def release(self, order_id: str) -> dict[str, Any]:
        """Release a paid order for shipping."""
        return self._update(order_id, status="released")

    def _update(self, order_id: str, **changes: Any) -> dict[str, Any]:
        with self._state.edit() as state:
            if take_one(state, "crash_before_update"):
                crashed = True
            else:
                crashed = False
                state["updates"] = state.get("updates", 0) + 1
                order = self._orders.get(order_id) or self._new_order(order_id)
                order.update(changes)
                self._orders.put(order_id, order)
        if crashed:
            # The knob's countdown is saved; the order is not touched.
            raise SimulatedCrash("simulated crash before the order update")
        return dict(order)

    def crash_before_next_update(self, times: int = 1) -> None:
        """The next `times` updates kill the invocation before writing anything."""
        with self._state.edit() as state:
            state["crash_before_update"] = times

    def order(self, order_id: str) -> dict[str, Any] | None:
        """The stored order, without counting a read."""
        with self._state.locked():
            return self._orders.get(order_id)

    @property
    def reads(self) -> int:
        return int(self._state.read().get("reads", 0))

    @property
    def updates(self) -> int:
        return int(self._state.read().get("updates", 0))
