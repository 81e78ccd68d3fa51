"""Local fakes of the outside services the example tasks call. None of them is a real service.

Each fake is deterministic and in-process, and keeps its state in a JSON file, one per fake,
under the directory named by `DURABLE_FAKES_DIR` (default: `.durable/fakes` in the working
directory, inside the state directory of a `durable dev` started there; `durable dev` sets
it to `<its state directory>/fakes` for its workers). The records of the busiest fakes
(payments, orders) are a file each, so a call costs the same with a million orders. They use
files rather than memory because `durable dev` runs each invocation in its own process. A
count such as "charged once" has to carry over from one invocation to the next, and an
end-to-end test can read it from its own process by pointing `DURABLE_FAKES_DIR` at the
same directory. Every read-modify-write holds an exclusive `flock`, so concurrent
invocations do not lose updates.

Knobs that inject failures are kept in the same files, so a test in another process can set
them too:

- `fail_next(n)` on `payments`, `metrics`, `extractor`, `ocr`, `llm` and `pricing`: the
  next n calls raise `ServiceUnavailable`.
- `carriers.take_down(name, ...)`: that carrier's quotes raise `ServiceUnavailable` until
  `carriers.reset()`.
- `payments.crash_after_next_charge()`: the next charge is recorded, then the invocation dies
  (`durable.testing.SimulatedCrash`) before the step can checkpoint its result.
  `mail.crash_after_next_send()` does the same after sending a message, and
  `warehouse.crash_after_batches(n)` after the n-th upsert from now.
- `orders.crash_before_next_update()`: the next order update dies before writing anything.
- The card token `tok_flaky` (like Stripe's test cards) fails the first charge for each
  idempotency key; a URL with `?fail=N` fails its first N fetches.
- Documents: the primary `extractor` refuses scanned images (`.png`, `.jpg`, ...) with
  `UnsupportedDocument`; `ocr` reads a document whose name contains `blurry` badly, and the
  `llm` is then less confident. Destinations in `CARLESS_DESTINATIONS` (Venice, Hydra) have
  no rental cars (`NoCarsAvailable`); `pricing` knows no SKU starting with `discontinued`
  (`UnknownSku`).

`reset_all()` (or `reset()` on one fake) forgets everything.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
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
    """Where the fakes keep their state: `$DURABLE_FAKES_DIR`, else `.durable/fakes`; in a
    Lambda function (deployed, or in `sam local`'s container), where only /tmp is writable,
    `/tmp/durable-fakes`."""
    configured = os.environ.get("DURABLE_FAKES_DIR")
    if configured:
        return Path(configured)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return Path(tempfile.gettempdir()) / "durable-fakes"
    return Path(".durable") / "fakes"


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
    def locked(self) -> Iterator[None]:
        """Hold the fake's lock (to read its records consistently)."""
        with self._locked():
            yield

    @contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """The state to change in place; saved when the block ends without an exception."""
        with self._locked() as path:
            state = self._load(path)
            yield state
            # Write-then-rename: a reader never sees a half-written file.
            _write_json(path, state)


def _write_json(path: Path, value: Any) -> None:
    """Write-then-rename: a reader never sees a half-written file."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value, separators=(",", ":")))
    os.replace(temporary, path)


class _Records:
    """A fake's records, a file each (`<fakes dir>/<fake>/<hash of key>.json`), so reading
    or writing one never costs more as the others pile up. Used under the fake's lock."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def directory(self) -> Path:
        return fakes_dir() / self.name

    def _path(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(self._path(key).read_text())
        except FileNotFoundError:
            return None
        return record

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_json(self._path(key), record)

    def all(self) -> list[dict[str, Any]]:
        if not self.directory.is_dir():
            return []
        return [json.loads(path.read_text()) for path in self.directory.glob("*.json")]

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


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

    def __init__(self) -> None:
        super().__init__()
        self._keys = _Records("payments-by-key")  # per key: attempts and the charge made

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
            if not (_take_one(state, "fail_next") or flaky):
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
                crash = _take_one(state, "crash_after_charge")
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


class FakeOrderDatabase(_Fake):
    """An orders table. Any order id exists: unknown ids get a deterministic pending order."""

    name = "orders"

    def __init__(self) -> None:
        super().__init__()
        self._orders = _Records("orders-by-id")

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
            if _take_one(state, "crash_before_update"):
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


class FakeMailer(_Fake):
    """An email API. Sending is not idempotent: each call sends one more message."""

    name = "mail"

    def send(self, *, to: str, subject: str, body: str) -> dict[str, Any]:
        """Send one message; its id. The `crash_after_next_send` knob dies after sending."""
        with self._state.edit() as state:
            messages: list[dict[str, Any]] = state.setdefault("messages", [])
            message = {"id": f"msg_{len(messages) + 1:06d}", "to": to, "subject": subject}
            messages.append({**message, "body": body})
            crash = _take_one(state, "crash_after_send")
        if crash:
            raise SimulatedCrash("simulated crash right after the mail was sent")
        return message

    def crash_after_next_send(self, times: int = 1) -> None:
        """The next `times` sends go out, then the invocation dies before the step records it."""
        with self._state.edit() as state:
            state["crash_after_send"] = times

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Messages sent (to one address, if given), oldest first."""
        sent: list[dict[str, Any]] = self._state.read().get("messages", [])
        return [message for message in sent if to is None or message["to"] == to]


# -- documents: the data-extraction agent's services -----------------------------------

SCANNED_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_VENDORS = ("Acme Corp", "Globex", "Initech", "Umbrella Ltd", "Stark Industries")


class UnsupportedDocument(Exception):
    """The primary extractor cannot read this kind of document (a scan). Not transient."""


def document_fields(url: str) -> dict[str, str]:
    """What the document at `url` says: deterministic made-up invoice fields."""
    seed = zlib.crc32(urlsplit(url).path.encode())
    return {
        "invoice_number": f"INV-{seed % 100000:05d}",
        "vendor": _VENDORS[seed % len(_VENDORS)],
        "total": f"{(seed >> 8) % 100000 / 100:.2f}",
    }


class FakeDocumentExtractor(_Fake):
    """The primary extraction service: reads PDFs well; scanned images are unsupported."""

    name = "extractor"

    def extract(self, document_url: str) -> dict[str, Any]:
        """The document's fields with the service's confidence."""
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            failed = _take_one(state, "fail_next")
        if failed:
            raise ServiceUnavailable("extraction service is unavailable (simulated outage)")
        if urlsplit(document_url).path.lower().endswith(SCANNED_SUFFIXES):
            raise UnsupportedDocument(f"{document_url}: scanned images are not supported")
        return {"fields": document_fields(document_url), "confidence": 0.97}

    def fail_next(self, times: int = 1) -> None:
        with self._state.edit() as state:
            state["fail_next"] = times

    @property
    def calls(self) -> int:
        return int(self._state.read().get("calls", 0))


class FakeOCRService(_Fake):
    """Turns a document into text. A document whose name says `blurry` reads badly."""

    name = "ocr"

    def process(self, document_url: str) -> dict[str, Any]:
        """The document's text, one `Label: value` line per field; `[illegible]` where unread."""
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            failed = _take_one(state, "fail_next")
        if failed:
            raise ServiceUnavailable("OCR service timed out (simulated)")
        blurry = "blurry" in urlsplit(document_url).path.lower()
        lines = []
        for key, value in document_fields(document_url).items():
            label = key.replace("_", " ").capitalize()
            unread = blurry and key != "invoice_number"
            lines.append(f"{label}: {value[:1]}[illegible]" if unread else f"{label}: {value}")
        return {"text": "\n".join(lines), "pages": 1}

    def fail_next(self, times: int = 1) -> None:
        with self._state.edit() as state:
            state["fail_next"] = times

    @property
    def calls(self) -> int:
        return int(self._state.read().get("calls", 0))


class FakeLLM(_Fake):
    """A language model that answers extraction prompts: it reads `Label: value` lines after
    the prompt's first line and answers JSON, less confident for each illegible value."""

    name = "llm"

    def generate(self, *, model: str, prompt: str) -> dict[str, Any]:
        """The completion: `{"model", "text"}`, where `text` is JSON fields + confidence."""
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            failed = _take_one(state, "fail_next")
        if failed:
            raise ServiceUnavailable("the model is overloaded (simulated)")
        fields: dict[str, str] = {}
        for line in prompt.splitlines()[1:]:
            label, separator, value = line.partition(":")
            if separator:
                fields[label.strip().lower().replace(" ", "_")] = value.strip()
        illegible = sum("[illegible]" in value for value in fields.values())
        confidence = round(max(0.05, 0.92 - 0.2 * illegible), 2)
        answer = {"fields": fields, "confidence": confidence}
        return {"model": model, "text": json.dumps(answer, sort_keys=True)}

    def fail_next(self, times: int = 1) -> None:
        with self._state.edit() as state:
            state["fail_next"] = times

    @property
    def calls(self) -> int:
        return int(self._state.read().get("calls", 0))


class FakeReviewQueue(_Fake):
    """A queue of review tickets for people. Each ticket carries the callback token that
    answers it (`POST /callbacks/{token}`), as a real review tool would store it."""

    name = "reviews"

    def submit(self, token: str, document_url: str, extraction: dict[str, Any]) -> dict[str, Any]:
        """Open a ticket asking a person to check `extraction`; the ticket."""
        with self._state.edit() as state:
            tickets: list[dict[str, Any]] = state.setdefault("tickets", [])
            ticket = {
                "id": f"rev-{len(tickets) + 1:04d}",
                "token": token,
                "document_url": document_url,
                "extraction": extraction,
            }
            tickets.append(ticket)
        return {"ticket_id": ticket["id"]}

    def tickets(self, document_url: str | None = None) -> list[dict[str, Any]]:
        """Tickets (for one document, if given), oldest first."""
        found: list[dict[str, Any]] = self._state.read().get("tickets", [])
        return [t for t in found if document_url is None or t["document_url"] == document_url]


class FakeDocumentStore(_Fake):
    """The documents table the agent writes its results to."""

    name = "documents"

    def save(
        self, document_url: str, fields: dict[str, str], source: str, reviewed_by: str | None
    ) -> dict[str, Any]:
        return self._set(
            document_url, status="processed", fields=fields, source=source, reviewed_by=reviewed_by
        )

    def mark_manual(self, document_url: str, reason: str) -> dict[str, Any]:
        """Leave the document to a person (the review timed out or broke)."""
        return self._set(document_url, status="needs_manual_handling", reason=reason)

    def mark_rejected(self, document_url: str, reviewer: str, comment: str) -> dict[str, Any]:
        return self._set(document_url, status="rejected", reviewed_by=reviewer, reason=comment)

    def _set(self, document_url: str, **fields: Any) -> dict[str, Any]:
        with self._state.edit() as state:
            state["updates"] = state.get("updates", 0) + 1
            documents: dict[str, dict[str, Any]] = state.setdefault("documents", {})
            document = documents.setdefault(document_url, {"url": document_url})
            document.update(fields)
            return dict(document)

    def document(self, document_url: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._state.read().get("documents", {}).get(document_url)
        return found

    @property
    def updates(self) -> int:
        return int(self._state.read().get("updates", 0))


# -- travel: the booking saga's services -----------------------------------------------

CARLESS_DESTINATIONS = frozenset({"Venice", "Hydra"})  # no car rental there


class NoCarsAvailable(Exception):
    """No rental car at the destination. Not transient: asking again will not help."""


class FakeTravelAgency(_Fake):
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


# -- batches and imports ---------------------------------------------------------------


class UnknownSku(Exception):
    """The pricing service does not sell this SKU (any SKU starting `discontinued`)."""


class FakePricingService(_Fake):
    """Prices line items: a deterministic unit price per SKU."""

    name = "pricing"

    def quote(self, sku: str, quantity: int) -> dict[str, Any]:
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            failed = _take_one(state, "fail_next")
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


class FakeRowExport(_Fake):
    """A CSV export to import from: `publish(source, rows)` makes one; unknown sources hold
    250 rows."""

    name = "exports"

    def publish(self, source: str, rows: int) -> None:
        with self._state.edit() as state:
            state.setdefault("sources", {})[source] = rows

    def count(self, source: str) -> int:
        return int(self._state.read().get("sources", {}).get(source, 250))

    def read(self, source: str, start: int, limit: int) -> list[dict[str, Any]]:
        """Rows `start` to `start + limit - 1` (fewer at the end)."""
        end = min(start + limit, self.count(source))
        return [
            {"id": f"{source}:{index}", "name": f"customer {index}", "score": index * 7 % 100}
            for index in range(start, end)
        ]


class FakeDataWarehouse(_Fake):
    """A warehouse table written by upsert on row id: writing a row twice keeps one copy."""

    name = "warehouse"

    def upsert(self, table: str, rows: list[dict[str, Any]]) -> int:
        """Write `rows`; how many. The `crash_after_batches` knob dies after writing."""
        with self._state.edit() as state:
            stored: dict[str, Any] = state.setdefault("tables", {}).setdefault(table, {})
            for row in rows:
                stored[str(row["id"])] = row
            state["rows_written"] = state.get("rows_written", 0) + len(rows)
            crash = False
            if "crash_after_batches" in state:
                state["crash_after_batches"] -= 1
                crash = state["crash_after_batches"] == 0
                if crash:
                    del state["crash_after_batches"]
        if crash:
            raise SimulatedCrash("simulated crash after a warehouse write")
        return len(rows)

    def crash_after_batches(self, batches: int) -> None:
        """The invocation dies right after the `batches`-th upsert from now."""
        with self._state.edit() as state:
            state["crash_after_batches"] = batches

    def row_count(self, table: str) -> int:
        """Distinct rows in `table`."""
        return len(self._state.read().get("tables", {}).get(table, {}))

    @property
    def rows_written(self) -> int:
        """Rows written, rewrites included."""
        return int(self._state.read().get("rows_written", 0))


# -- shipping: the carriers fastest-quote races ----------------------------------------

CARRIERS = ("swiftship", "parcelpost", "boxline")


class FakeCarriers(_Fake):
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


# The instances the example tasks use; tests read their state and turn their knobs.
payments = FakePaymentProvider()
orders = FakeOrderDatabase()
users = FakeUserDatabase()
website = FakeWebsite()
metrics = FakeMetricsSource()
reports = FakeReportStore()
approvals = FakeApprovalDesk()
mail = FakeMailer()
extractor = FakeDocumentExtractor()
ocr = FakeOCRService()
llm = FakeLLM()
reviews = FakeReviewQueue()
documents = FakeDocumentStore()
travel = FakeTravelAgency()
pricing = FakePricingService()
exports = FakeRowExport()
warehouse = FakeDataWarehouse()
carriers = FakeCarriers()

ALL_FAKES: tuple[_Fake, ...] = (
    payments,
    orders,
    users,
    website,
    metrics,
    reports,
    approvals,
    mail,
    extractor,
    ocr,
    llm,
    reviews,
    documents,
    travel,
    pricing,
    exports,
    warehouse,
    carriers,
)


def reset_all() -> None:
    """Forget the state of every fake."""
    for fake in ALL_FAKES:
        fake.reset()
