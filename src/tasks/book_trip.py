"""`book-trip`: a saga. Reserve a flight, a hotel and a car, then charge the card.

Each reservation step names its undo with `compensate=`. If the run fails for good (no car
at the destination, the card cannot be charged), the engine runs the compensations of the
steps that completed, newest first, each as a checkpointed step of its own
(`compensate:reserve-hotel`, then `compensate:reserve-flight`), and the run ends FAILED
with the original error. Nothing is left booked, and the history shows every cancellation.

`NoCarsAvailable` is listed as non-retryable on the car step: no retry will put a rental
car in Venice, so the saga unwinds at once instead of retrying the task.

The charge shows `ctx.step_id`: `run_id:charge:3`, the same on every attempt and replay of
that step, handed to the payment provider as the idempotency key. If an attempt dies after
the provider charged but before the step recorded it, the next attempt sends the same key
and gets the same charge back; the card is charged once.

On success the run fires `send-itinerary` with `ctx.trigger` and completes without waiting
for it: the email is a child run with its own retries (`parent_run_id` links them, and
cancelling the trip's run would cancel it too).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from durable import Context, RetryPolicy, task
from tasks.fakes import GOOD_CARD, NoCarsAvailable, mail, payments, travel

RESERVE_RETRY = RetryPolicy(max_attempts=3, min_delay=timedelta(seconds=1))


class TripIn(BaseModel):
    trip_id: str = Field(min_length=1)
    email: str = Field(min_length=3)
    origin: str = Field(min_length=1)
    destination: str = Field(min_length=1)
    nights: int = Field(default=3, ge=1, le=60)
    card_token: str = GOOD_CARD


class Reservation(BaseModel):
    id: str
    kind: str
    what: str
    price_cents: int


class ItineraryIn(BaseModel):
    trip_id: str
    email: str
    lines: list[str]


class TripOut(BaseModel):
    trip_id: str
    reservations: list[Reservation]
    total_cents: int
    charge_id: str
    itinerary_run_id: str


def reserve_flight(trip: TripIn) -> Reservation:
    return Reservation.model_validate(
        travel.reserve_flight(trip.trip_id, trip.origin, trip.destination)
    )


def reserve_hotel(trip: TripIn) -> Reservation:
    return Reservation.model_validate(
        travel.reserve_hotel(trip.trip_id, trip.destination, trip.nights)
    )


def reserve_car(trip: TripIn) -> Reservation:
    return Reservation.model_validate(
        travel.reserve_car(trip.trip_id, trip.destination, trip.nights)
    )


def cancel(reservation: Reservation) -> str:
    """The compensation of every reservation step: it gets the step's result."""
    status: str = travel.cancel(reservation.id)["status"]
    return status


def charge_card(ctx: Context, amount_cents: int, card_token: str) -> dict[str, Any]:
    # The step's id is stable across attempts: a retried charge cannot charge twice.
    return payments.charge(
        amount_cents=amount_cents,
        currency="eur",
        source=card_token,
        idempotency_key=ctx.step_id,
    )


@task(id="book-trip", retry=RetryPolicy(max_attempts=2))
def book_trip(ctx: Context, payload: TripIn) -> TripOut:
    flight = ctx.step(
        "reserve-flight", reserve_flight, payload, retry=RESERVE_RETRY, compensate=cancel
    )
    hotel = ctx.step(
        "reserve-hotel", reserve_hotel, payload, retry=RESERVE_RETRY, compensate=cancel
    )
    car = ctx.step(
        "reserve-car",
        reserve_car,
        payload,
        retry=RetryPolicy(max_attempts=3, non_retryable=(NoCarsAvailable,)),
        compensate=cancel,
    )
    reservations = [flight, hotel, car]
    total = sum(reservation.price_cents for reservation in reservations)
    charge: dict[str, Any] = ctx.step(
        "charge", charge_card, ctx, total, payload.card_token, retry=RetryPolicy(max_attempts=3)
    )
    itinerary = ItineraryIn(
        trip_id=payload.trip_id,
        email=payload.email,
        lines=[reservation.what for reservation in reservations],
    )
    itinerary_run_id = ctx.trigger("send-itinerary", itinerary)
    return TripOut(
        trip_id=payload.trip_id,
        reservations=reservations,
        total_cents=total,
        charge_id=charge["id"],
        itinerary_run_id=itinerary_run_id,
    )


@task(id="send-itinerary", retry=RetryPolicy(max_attempts=5))
def send_itinerary(ctx: Context, payload: ItineraryIn) -> str:
    body = "\n".join([f"Your trip {payload.trip_id}:", *payload.lines])
    sent: dict[str, Any] = ctx.step(
        "send-email", mail.send, to=payload.email, subject="Your itinerary", body=body
    )
    return str(sent["id"])
