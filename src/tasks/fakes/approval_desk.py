"""A fake ticketing system for approval requests."""

from __future__ import annotations

from typing import Any

from tasks.fakes.base import Fake


class FakeApprovalDesk(Fake):
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
