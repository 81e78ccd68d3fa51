"""A fake email API: each send sends one more message (not idempotent)."""

from __future__ import annotations

from typing import Any

from durable.testing import SimulatedCrash
from tasks.fakes.base import Fake, take_one


class FakeMailer(Fake):
    """An email API. Sending is not idempotent: each call sends one more message."""

    name = "mail"

    def send(self, *, to: str, subject: str, body: str) -> dict[str, Any]:
        """Send one message; its id. The `crash_after_next_send` knob dies after sending."""
        with self._state.edit() as state:
            messages: list[dict[str, Any]] = state.setdefault("messages", [])
            message = {"id": f"msg_{len(messages) + 1:06d}", "to": to, "subject": subject}
            messages.append({**message, "body": body})
            crash = take_one(state, "crash_after_send")
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
