"""A fake CSV export that the import example reads rows from."""

from __future__ import annotations

from typing import Any

from tasks.fakes.base import Fake


class FakeRowExport(Fake):
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
