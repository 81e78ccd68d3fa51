"""`ctx.logger`: a Powertools logger bound to the run, silent while the run replays.

A replayed step does not log twice (as in Trigger.dev): lines logged by task code during
replay are dropped, so each line appears once per real execution.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

from aws_lambda_powertools import Logger


class _Run(Protocol):
    """The run's keys a run logger writes on every line."""

    @property
    def id(self) -> str: ...

    @property
    def task_id(self) -> str: ...

    @property
    def attempt(self) -> int: ...


class _RunView(Protocol):
    """What a run logger reads from its context."""

    @property
    def run(self) -> _Run: ...

    @property
    def is_replaying(self) -> bool: ...

    @property
    def current_step(self) -> str | None: ...


@lru_cache(maxsize=1)
def library_logger() -> Logger:
    """The Powertools logger of the durable runtime (service from POWERTOOLS_SERVICE_NAME)."""
    return Logger(service="durable")


class RunLogger:
    """Logs with run_id, task_id, attempt and step keys; drops lines during replay."""

    def __init__(self, ctx: _RunView) -> None:
        self._ctx = ctx

    def _keys(self) -> dict[str, Any]:
        run = self._ctx.run
        keys: dict[str, Any] = {
            "run_id": run.id,
            "task_id": run.task_id,
            "attempt": run.attempt,
        }
        if self._ctx.current_step is not None:
            keys["step"] = self._ctx.current_step
        return keys

    def _emit(self, level: str, message: str, **kwargs: Any) -> None:
        if self._ctx.is_replaying and self._ctx.current_step is None:
            return
        getattr(library_logger(), level)(message, stacklevel=4, **self._keys(), **kwargs)

    def debug(self, message: str, **kwargs: Any) -> None:
        self._emit("debug", message, **kwargs)

    def info(self, message: str, **kwargs: Any) -> None:
        self._emit("info", message, **kwargs)

    def warning(self, message: str, **kwargs: Any) -> None:
        self._emit("warning", message, **kwargs)

    def error(self, message: str, **kwargs: Any) -> None:
        self._emit("error", message, **kwargs)

    def exception(self, message: str, **kwargs: Any) -> None:
        self._emit("exception", message, **kwargs)
