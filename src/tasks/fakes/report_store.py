"""A fake bucket of reports by name."""

from __future__ import annotations

from typing import Any

from tasks.fakes.base import Fake


class FakeReportStore(Fake):
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
