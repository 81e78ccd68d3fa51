"""A fake warehouse table that the import example upserts rows into."""

from __future__ import annotations

from typing import Any

from durable.testing import SimulatedCrash
from tasks.fakes.base import Fake


class FakeDataWarehouse(Fake):
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
