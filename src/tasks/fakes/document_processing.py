"""The data-extraction agent's fake services: the primary extractor, OCR, a language
model, a review queue for people, and the documents table the results go to."""

from __future__ import annotations

import json
import zlib
from typing import Any
from urllib.parse import urlsplit

from tasks.fakes.base import Fake, ServiceUnavailable, take_one

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


class FakeDocumentExtractor(Fake):
    """The primary extraction service: reads PDFs well; scanned images are unsupported."""

    name = "extractor"

    def extract(self, document_url: str) -> dict[str, Any]:
        """The document's fields with the service's confidence."""
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            failed = take_one(state, "fail_next")
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


class FakeOCRService(Fake):
    """Turns a document into text. A document whose name says `blurry` reads badly."""

    name = "ocr"

    def process(self, document_url: str) -> dict[str, Any]:
        """The document's text, one `Label: value` line per field; `[illegible]` where unread."""
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            failed = take_one(state, "fail_next")
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


class FakeLLM(Fake):
    """A language model that answers extraction prompts: it reads `Label: value` lines after
    the prompt's first line and answers JSON, less confident for each illegible value."""

    name = "llm"

    def generate(self, *, model: str, prompt: str) -> dict[str, Any]:
        """The completion: `{"model", "text"}`, where `text` is JSON fields + confidence."""
        with self._state.edit() as state:
            state["calls"] = state.get("calls", 0) + 1
            failed = take_one(state, "fail_next")
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


class FakeReviewQueue(Fake):
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


class FakeDocumentStore(Fake):
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
