"""Local fakes of the outside services the example tasks call. None of them is a real service.

Each fake is deterministic and in-process, and keeps its state in a JSON file, one per fake,
under the directory named by `DURABLE_FAKES_DIR` (default: `<tmp>/durable-fakes`). They use
files rather than memory because `durable dev` runs each invocation in its own process. A
count such as "charged once" has to carry over from one invocation to the next, and an
end-to-end test can read it from its own process by pointing `DURABLE_FAKES_DIR` at the
same directory. Every read-modify-write holds an exclusive `flock`, so concurrent
invocations do not lose updates.

Knobs that inject failures are kept in the same files, so a test in another process can set
them too:

- `payments.fail_next(n)`, `metrics.fail_next(n)`: the next n calls raise `ServiceUnavailable`.
- `payments.crash_after_next_charge()`: the next charge is recorded, then the invocation dies
  (`durable.testing.SimulatedCrash`) before the step can checkpoint its result.
- `orders.crash_before_next_update()`: the next order update dies before writing anything.
- The card token `tok_flaky` (like Stripe's test cards) fails the first charge for each
  idempotency key; a URL with `?fail=N` fails its first N fetches.

`reset_all()` (or `reset()` on one fake) forgets everything.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from durable.testing import SimulatedCrash

FLAKY_CARD = "tok_flaky"  # the first charge per idempotency key fails, then it works
GOOD_CARD = "tok_visa"


class ServiceUnavailable(Exception):
    """A transient failure injected by a fake (think HTTP 503). Worth retrying."""


def fakes_dir() -> Path:
    """Where the fakes keep their state: `$DURABLE_FAKES_DIR`, else `<tmp>/durable-fakes`."""
    configured = os.environ.get("DURABLE_FAKES_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "durable-fakes"


class _StateFile:
    """One fake's JSON state, read and changed under an exclusive file lock."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def path(self) -> Path:
        return fakes_dir() / f"{self.name}.json"

    @contextmanager
    def _locked(self) -> Iterator[Path]:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        return data

    def read(self) -> dict[str, Any]:
        with self._locked() as path:
            return self._load(path)

    @contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """The state to change in place; saved when the block ends without an exception."""
        with self._locked() as path:
            state = self._load(path)
            yield state
            # Write-then-rename: a reader never sees a half-written file.
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(temporary, path)


def _take_one(state: dict[str, Any], knob: str) -> bool:
    """Consume one unit of a countdown knob; True if there was one."""
    remaining = int(state.get(knob, 0))
    if remaining <= 0:
        return False
    state[knob] = remaining - 1
    return True


class _Fake:
    """Base of the fakes: a named state file and `reset()`."""

    name = "fake"

    def __init__(self) -> None:
        self._state = _StateFile(self.name)

    def reset(self) -> None:
        """Forget every record, count and knob."""
        with self._state.edit() as state:
            state.clear()


class FakePaymentProvider(_Fake):
    """A Stripe-like payment API. Charges are deduplicated by idempotency key."""

    name = "payments"

    def charge(
        self, *, amount_cents: int, currency: str, source: str, idempotency_key: str
    ) -> dict[str, Any]:
        """Charge `source`; the same idempotency key always returns the same charge."""
        charge: dict[str, Any] | None = None
        crash = False
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            attempts: dict[str, int] = state.setdefault("attempts", {})
            attempts[idempotency_key] = attempts.get(idempotency_key, 0) + 1
            flaky = source == FLAKY_CARD and attempts[idempotency_key] == 1
            if not (_take_one(state, "fail_next") or flaky):
                charges: dict[str, dict[str, Any]] = state.setdefault("charges", {})
                charge = charges.get(idempotency_key)
                if charge is None:
                    charge = {
                        "id": f"ch_{len(charges) + 1:06d}",
                        "amount_cents": amount_cents,
                        "currency": currency,
                        "source": source,
                        "idempotency_key": idempotency_key,
                    }
                    charges[idempotency_key] = charge
                crash = _take_one(state, "crash_after_charge")
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
        charges: dict[str, dict[str, Any]] = self._state.read().get("charges", {})
        return sorted(charges.values(), key=lambda charge: str(charge["id"]))


class FakeOrderDatabase(_Fake):
    """An orders table. Any order id exists: unknown ids get a deterministic pending order."""

    name = "orders"

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
            orders: dict[str, dict[str, Any]] = state.setdefault("orders", {})
            order = orders.setdefault(order_id, self._new_order(order_id))
            return dict(order)

    def mark_paid(self, order_id: str, payment_id: str) -> dict[str, Any]:
        """Record the payment on the order."""
        return self._update(order_id, status="paid", payment_id=payment_id)

    def release(self, order_id: str) -> dict[str, Any]:
        """Release a paid order for shipping."""
        return self._update(order_id, status="released")

    def _update(self, order_id: str, **changes: Any) -> dict[str, Any]:
        with self._state.edit() as state:
            if _take_one(state, "crash_before_update"):
                crashed = True
            else:
                crashed = False
                state["updates"] = state.get("updates", 0) + 1
                orders: dict[str, dict[str, Any]] = state.setdefault("orders", {})
                order = orders.setdefault(order_id, self._new_order(order_id))
                order.update(changes)
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
        order: dict[str, Any] | None = self._state.read().get("orders", {}).get(order_id)
        return order

    @property
    def reads(self) -> int:
        return int(self._state.read().get("reads", 0))

    @property
    def updates(self) -> int:
        return int(self._state.read().get("updates", 0))


class FakeUserDatabase(_Fake):
    """A users table. Unknown ids get a default user whose saved card is `tok_flaky`."""

    name = "users"

    def add(self, user_id: str, *, email: str, card_token: str = GOOD_CARD) -> None:
        with self._state.edit() as state:
            state.setdefault("users", {})[user_id] = {
                "id": user_id,
                "email": email,
                "card_token": card_token,
                "processed": False,
            }

    def get(self, user_id: str) -> dict[str, Any]:
        """The user; counts the fetch."""
        with self._state.edit() as state:
            fetches: dict[str, int] = state.setdefault("fetches", {})
            fetches[user_id] = fetches.get(user_id, 0) + 1
            user = state.setdefault("users", {}).setdefault(
                user_id,
                {
                    "id": user_id,
                    "email": f"{user_id}@example.com",
                    "card_token": FLAKY_CARD,
                    "processed": False,
                },
            )
            return dict(user)

    def mark_processed(self, user_id: str) -> None:
        with self._state.edit() as state:
            state.setdefault("users", {}).setdefault(user_id, {"id": user_id})["processed"] = True

    def fetches(self, user_id: str) -> int:
        return int(self._state.read().get("fetches", {}).get(user_id, 0))

    def processed(self, user_id: str) -> bool:
        return bool(self._state.read().get("users", {}).get(user_id, {}).get("processed", False))


class FakeWebsite(_Fake):
    """Serves a made-up page for any URL. A `fail=N` query parameter fails the first N fetches."""

    name = "website"

    def fetch(self, url: str) -> dict[str, Any]:
        """The page at `url`; raises ServiceUnavailable while the URL's failures last."""
        failures = int(parse_qs(urlsplit(url).query).get("fail", ["0"])[0])
        with self._state.edit() as state:
            fetches: dict[str, int] = state.setdefault("fetches", {})
            fetches[url] = fetches.get(url, 0) + 1
            count = fetches[url]
        if count <= failures:
            raise ServiceUnavailable(f"GET {url}: 503 (simulated failure {count} of {failures})")
        path = urlsplit(url).path or "/"
        html = f"<html><head><title>Fake page {path}</title></head><body>{url}</body></html>"
        return {"url": url, "status": 200, "title": f"Fake page {path}", "html": html}

    def fetches(self, url: str) -> int:
        return int(self._state.read().get("fetches", {}).get(url, 0))


class FakeMetricsSource(_Fake):
    """A warehouse of business numbers: deterministic figures for any day."""

    name = "metrics"

    def daily_numbers(self, day: str) -> dict[str, int]:
        """Orders, revenue and sign-ups for `day` (ISO date)."""
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            failed = _take_one(state, "fail_next")
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


class FakeReportStore(_Fake):
    """A bucket of reports by name. Storing the same name again overwrites it."""

    name = "reports"

    def put(self, name: str, body: str) -> dict[str, Any]:
        with self._state.edit() as state:
            state.setdefault("reports", {})[name] = body
            state["puts"] = state.get("puts", 0) + 1
        return {"name": name, "bytes": len(body.encode())}

    def get(self, name: str) -> str | None:
        body: str | None = self._state.read().get("reports", {}).get(name)
        return body

    def names(self) -> list[str]:
        return sorted(self._state.read().get("reports", {}))

    @property
    def puts(self) -> int:
        return int(self._state.read().get("puts", 0))


class FakeApprovalDesk(_Fake):
    """A ticketing system for approval requests: open, then approved, rejected or expired."""

    name = "approvals"

    def open(self, request_id: str, description: str, amount_cents: int) -> dict[str, Any]:
        return self._set(
            request_id,
            status="pending",
            description=description,
            amount_cents=amount_cents,
        )

    def approve(self, request_id: str, approver: str) -> dict[str, Any]:
        return self._set(request_id, status="approved", decided_by=approver)

    def reject(self, request_id: str, approver: str, comment: str) -> dict[str, Any]:
        return self._set(request_id, status="rejected", decided_by=approver, comment=comment)

    def expire(self, request_id: str) -> dict[str, Any]:
        return self._set(request_id, status="expired")

    def _set(self, request_id: str, **fields: Any) -> dict[str, Any]:
        with self._state.edit() as state:
            request = state.setdefault("requests", {}).setdefault(request_id, {"id": request_id})
            request.update(fields)
            return dict(request)

    def request(self, request_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._state.read().get("requests", {}).get(request_id)
        return found

    def status(self, request_id: str) -> str | None:
        found = self.request(request_id)
        return None if found is None else str(found["status"])


# The instances the example tasks use; tests read their state and turn their knobs.
payments = FakePaymentProvider()
orders = FakeOrderDatabase()
users = FakeUserDatabase()
website = FakeWebsite()
metrics = FakeMetricsSource()
reports = FakeReportStore()
approvals = FakeApprovalDesk()

ALL_FAKES: tuple[_Fake, ...] = (payments, orders, users, website, metrics, reports, approvals)


def reset_all() -> None:
    """Forget the state of every fake."""
    for fake in ALL_FAKES:
        fake.reset()
