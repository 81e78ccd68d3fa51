"""A fake Stripe-like payment provider, and the test card tokens it knows."""

from __future__ import annotations

from typing import Any

from durable.testing import SimulatedCrash
from tasks.fakes.base import Fake, Records, ServiceUnavailable, take_one

FLAKY_CARD = "tok_flaky"  # the first charge per idempotency key fails, then it works
GOOD_CARD = "tok_visa"


class FakePaymentProvider(Fake):
    """A Stripe-like payment API. Charges are deduplicated by idempotency key."""

    name = "payments"

    def __init__(self) -> None:
        super().__init__()
        self._keys = Records("payments-by-key")  # per key: attempts and the charge made

    def reset(self) -> None:
        with self._state.edit() as state:
            state.clear()
            self._keys.clear()

    def charge(
        self, *, amount_cents: int, currency: str, source: str, idempotency_key: str
    ) -> dict[str, Any]:
        """Charge `source`; the same idempotency key always returns the same charge."""
        charge: dict[str, Any] | None = None
        crash = False
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            record = self._keys.get(idempotency_key) or {"attempts": 0, "charge": None}
            record["attempts"] += 1
            flaky = source == FLAKY_CARD and record["attempts"] == 1
            if not (take_one(state, "fail_next") or flaky):
                charge = record["charge"]
                if charge is None:
                    state["charged"] = state.get("charged", 0) + 1
                    charge = {
                        "id": f"ch_{state['charged']:06d}",
                        "amount_cents": amount_cents,
                        "currency": currency,
                        "source": source,
                        "idempotency_key": idempotency_key,
                    }
                    record["charge"] = charge
                crash = take_one(state, "crash_after_charge")
            self._keys.put(idempotency_key, record)
        if charge is None:
            raise ServiceUnavailable("payment provider is unavailable (simulated outage)")
        if crash:
            # The money has moved; the invocation dies before the step can record it.
            raise SimulatedCrash("simulated crash right after the payment provider charged")
        return dict(charge)

    def fail_next(self, times: int = 1) -> None:
        """The next `times` charge calls raise ServiceUnavailable."""
        with self._state.edit() as state:
            state["fail_next"] = times

    def crash_after_next_charge(self, times: int = 1) -> None:
        """The next `times` successful charges kill the invocation right after charging."""
        with self._state.edit() as state:
            state["crash_after_charge"] = times

    @property
    def calls(self) -> int:
        """Charge requests received, failed and duplicate ones included."""
        return int(self._state.read().get("calls", 0))

    @property
    def charges(self) -> list[dict[str, Any]]:
        """Distinct charges made (money actually moved), in order."""
        with self._state.locked():
            charges = [record["charge"] for record in self._keys.all() if record["charge"]]
        return sorted(charges, key=lambda charge: str(charge["id"]))
