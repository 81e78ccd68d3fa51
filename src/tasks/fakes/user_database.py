"""A fake users table: unknown users get a saved card that fails its first charge."""

from __future__ import annotations

from typing import Any

from tasks.fakes.base import Fake
from tasks.fakes.payment_provider import FLAKY_CARD, GOOD_CARD


class FakeUserDatabase(Fake):
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
