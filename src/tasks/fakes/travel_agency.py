"""The booking saga's fake travel agency: flights, hotels and cars."""

from __future__ import annotations

from typing import Any

from tasks.fakes.base import Fake

CARLESS_DESTINATIONS = frozenset({"Venice", "Hydra"})  # no car rental there


class NoCarsAvailable(Exception):
    """No rental car at the destination. Not transient: asking again will not help."""


class FakeTravelAgency(Fake):
    """Flights, hotels and cars. One active reservation per trip and kind: reserving again
    for the same trip returns the reservation already held (a retried step books nothing)."""

    name = "travel"

    _PRICES = {"flight": 32000, "hotel": 14000, "car": 6000}  # cents (hotels, cars: per day)

    def reserve_flight(self, trip_id: str, origin: str, destination: str) -> dict[str, Any]:
        return self._reserve(trip_id, "flight", f"{origin} -> {destination}", 1)

    def reserve_hotel(self, trip_id: str, destination: str, nights: int) -> dict[str, Any]:
        return self._reserve(trip_id, "hotel", f"hotel in {destination}", nights)

    def reserve_car(self, trip_id: str, destination: str, days: int) -> dict[str, Any]:
        if destination in CARLESS_DESTINATIONS:
            raise NoCarsAvailable(f"no rental cars in {destination}")
        return self._reserve(trip_id, "car", f"car in {destination}", days)

    def _reserve(self, trip_id: str, kind: str, what: str, units: int) -> dict[str, Any]:
        with self._state.edit() as state:
            reservations: dict[str, dict[str, Any]] = state.setdefault("reservations", {})
            for held in reservations.values():
                if (held["trip_id"], held["kind"], held["status"]) == (trip_id, kind, "active"):
                    return dict(held)
            reservation_id = f"{kind[:2].upper()}-{len(reservations) + 1:04d}"
            reservation: dict[str, Any] = {
                "id": reservation_id,
                "trip_id": trip_id,
                "kind": kind,
                "what": what,
                "price_cents": self._PRICES[kind] * units,
                "status": "active",
            }
            reservations[reservation_id] = reservation
            return dict(reservation)

    def cancel(self, reservation_id: str) -> dict[str, Any]:
        """Cancel a reservation (cancelling a cancelled one changes nothing)."""
        with self._state.edit() as state:
            reservation: dict[str, Any] = state.setdefault("reservations", {})[reservation_id]
            reservation["status"] = "cancelled"
            return dict(reservation)

    def reservations(self, trip_id: str) -> list[dict[str, Any]]:
        """The trip's reservations, in the order they were made."""
        held: dict[str, dict[str, Any]] = self._state.read().get("reservations", {})
        mine = [r for r in held.values() if r["trip_id"] == trip_id]
        return sorted(mine, key=lambda reservation: int(reservation["id"].split("-")[1]))
