"""Whose turn it is at the dev moto: one request at a time, the stack's own first.

moto serves one request at a time, and AWS would never make an API call wait behind the
workers' calls: so the stack's own requests (the API, the poller, the sweeper) take their
turn before the worker processes', within a patience that keeps the workers from starving.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

# How long a worker's request lets the API's requests go first (see `TurnLock`).
BACKGROUND_PATIENCE_SECONDS = 0.05


class TurnLock:
    """One holder at a time, re-entrant; when it frees, a waiting urgent caller goes first.

    moto serves one request at a time, and AWS would never make an API call wait behind the
    workers' calls: so the stack's own requests (the API, the poller, the sweeper) take
    their turn before the worker processes' (`BACKGROUND_APP_ID` in their User-Agent),
    unless a worker's request has waited `BACKGROUND_PATIENCE_SECONDS` already: a burst of
    API calls delays the workers, never starves them. `with lock:` is an urgent turn.
    """

    def __init__(self) -> None:
        self._free = threading.Condition(threading.Lock())
        self._holder: int | None = None
        self._depth = 0
        self._urgent_waiting = 0
        self._overdue = 0  # background callers past their patience

    @contextlib.contextmanager
    def turn(self, urgent: bool) -> Iterator[None]:
        self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    def __enter__(self) -> None:
        self._acquire(True)

    def __exit__(self, *exc_info: object) -> None:
        self._release()

    def _acquire(self, urgent: bool) -> None:
        me = threading.get_ident()
        with self._free:
            if self._holder == me:
                self._depth += 1
                return
            if urgent:
                self._urgent_waiting += 1
                try:
                    while self._holder is not None or self._overdue:
                        self._free.wait()
                finally:
                    self._urgent_waiting -= 1
            else:
                patience = time.monotonic() + BACKGROUND_PATIENCE_SECONDS
                while self._holder is not None or self._urgent_waiting:
                    left = patience - time.monotonic()
                    if left <= 0:
                        break
                    self._free.wait(left)
                self._overdue += 1  # from now on, urgent callers let it go first
                try:
                    while self._holder is not None:
                        self._free.wait()
                finally:
                    self._overdue -= 1
            self._holder, self._depth = me, 1

    def _release(self) -> None:
        with self._free:
            self._depth -= 1
            if self._depth == 0:
                self._holder = None
                self._free.notify_all()
