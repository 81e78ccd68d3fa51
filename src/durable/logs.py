"""Run logging: `ctx.logger`, and the task's standard `logging` stamped with the run.

A replayed step does not log twice (as in Trigger.dev): lines logged by task code during
replay are dropped, so each line appears once per real execution.

- `ctx.logger` (`RunLogger`) is the library's Powertools logger with the run's keys on
  every line: `run_id`, `task_id`, `attempt`, and `step` inside a step.
- The task's own `logging.getLogger(__name__)` lines, while a run executes
  (`bind_run_logging`, by the executor for the attempt): `RunLogHandler` on the
  root logger stamps them with the same keys plus `logger` (the logger's name) and writes
  them through the library logger's handler, so they are the same Powertools JSON on the
  same stream. Outside a run it writes nothing; during a replay (outside a step) it drops
  them, as `ctx.logger` does.
- `run_logging` (by the executor around each attempt) adds that handler to the root
  logger once, and lowers the root to Powertools' level (`POWERTOOLS_LOG_LEVEL`, INFO)
  while attempts run, so that the task's INFO lines get there. The root's other handlers
  (Lambda's own, pytest's) meanwhile get exactly the records they got before.

Every line of a run thus carries its `run_id`: the run's logs are read back by filtering
on it (`durable.runlogs`), with no write per line anywhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
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


# -- the task's standard logging --------------------------------------------------------

# The run executing in this thread or asyncio task (None outside runs).
_current_run: ContextVar[_RunView | None] = ContextVar("durable_run_log_scope", default=None)


def bind_run_logging(view: _RunView) -> None:
    """Stamp the standard logging records made from now on in the current context (the
    executor's: one per attempt, see `durable.executor`) with `view`'s run."""
    _current_run.set(view)


def _is_library(record: logging.LogRecord) -> bool:
    return record.name == "durable" or record.name.startswith("durable.")


def _stamp(record: logging.LogRecord) -> bool:
    """Give a record made inside a run the run's keys; False to drop it (outside a run, or
    replayed code). The library's own records pass only as `ctx.logger` made them."""
    view = _current_run.get()
    if view is None:
        return False
    if _is_library(record):
        return getattr(record, "run_id", None) is not None
    if getattr(record, "run_id", None) is not None:
        return True  # stamped by an earlier handler
    if view.is_replaying and view.current_step is None:
        return False
    run = view.run
    record.run_id = run.id
    record.task_id = run.task_id
    record.attempt = run.attempt
    step = view.current_step
    if step is not None:
        record.step = step
    record.logger = record.name
    return True


class RunLogHandler(logging.Handler):
    """On the root logger: the task's records of a run, through the library's handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _is_library(record) and _stamp(record)

    def emit(self, record: logging.LogRecord) -> None:
        library_logger().registered_handler.handle(record)


class RunLogCapture(logging.Handler):
    """On the root logger: every record of a run (`ctx.logger`'s and the task's), as the
    decoded Powertools JSON, handed to `sink` (the test kit's memory log source)."""

    def __init__(self, sink: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self._sink = sink

    def filter(self, record: logging.LogRecord) -> bool:
        return _stamp(record)

    def emit(self, record: logging.LogRecord) -> None:
        self._sink(json.loads(library_logger().registered_formatter.format(record)))


class _AsBefore(logging.Filter):
    """On the root's other handlers while runs execute: only the records that reached them
    with the root at its own level (the root's level decides for loggers without one)."""

    def __init__(self, root_level: int) -> None:
        super().__init__()
        self.root_level = root_level

    def filter(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None and logger.parent is not None:  # up to the root
            if logger.level:
                return record.levelno >= logger.level
            logger = logger.parent
        return record.levelno >= self.root_level


class _RootLevel:
    """The root logger lowered to Powertools' level while at least one attempt runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.saved: int | None = None
        self.filters: list[tuple[logging.Handler, logging.Filter]] = []


_root_level = _RootLevel()


@contextlib.contextmanager
def run_logging() -> Iterator[None]:
    """While an attempt runs: `RunLogHandler` on the root logger (added once per process),
    and the root at Powertools' level (`POWERTOOLS_LOG_LEVEL`, INFO by default) so that the
    task's INFO lines reach it; the root's other handlers get what they got before."""
    state, root = _root_level, logging.getLogger()
    with state.lock:
        if not any(isinstance(handler, RunLogHandler) for handler in root.handlers):
            root.addHandler(RunLogHandler())
        state.active += 1
        level = library_logger().log_level
        if state.active == 1 and root.level > level:
            state.saved = root.level
            for handler in root.handlers:
                if not isinstance(handler, RunLogHandler | RunLogCapture):
                    keep: logging.Filter = _AsBefore(root.level)
                    handler.addFilter(keep)
                    state.filters.append((handler, keep))
            root.setLevel(level)
    try:
        yield
    finally:
        with state.lock:
            state.active -= 1
            if state.active == 0 and state.saved is not None:
                for handler, keep in state.filters:
                    handler.removeFilter(keep)
                state.filters.clear()
                root.setLevel(state.saved)
                state.saved = None
