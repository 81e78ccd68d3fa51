"""The plumbing every fake shares: where their files live, a JSON state file read and changed
under an exclusive `flock`, records kept a file each, countdown knobs, and the `Fake` base class.

Each fake keeps its state in `<fakes dir>/<name>.json`; its busiest records (payments,
orders) in `<fakes dir>/<records name>/`, a file each, so that a call costs the same however
many there are. Files rather than memory, because `durable dev` runs each invocation in its
own process; the lock, because concurrent invocations must not lose each other's updates.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class ServiceUnavailable(Exception):
    """A transient failure injected by a fake (think HTTP 503). Worth retrying."""


def fakes_dir() -> Path:
    """Where the fakes keep their state: `$DURABLE_FAKES_DIR`, else `.durable/fakes`; in a
    Lambda function (deployed, or in `sam local`'s container), where only /tmp is writable,
    `/tmp/durable-fakes`."""
    configured = os.environ.get("DURABLE_FAKES_DIR")
    if configured:
        return Path(configured)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return Path(tempfile.gettempdir()) / "durable-fakes"
    return Path(".durable") / "fakes"


class _StateFile:
    """One fake's JSON state, read and changed under an exclusive file lock."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def path(self) -> Path:
        return fakes_dir() / f"{self.name}.json"

    @contextmanager
    def _locked(self) -> Iterator[Path]:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        return data

    def read(self) -> dict[str, Any]:
        with self._locked() as path:
            return self._load(path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the fake's lock (to read its records consistently)."""
        with self._locked():
            yield

    @contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """The state to change in place; saved when the block ends without an exception."""
        with self._locked() as path:
            state = self._load(path)
            yield state
            # Write-then-rename: a reader never sees a half-written file.
            _write_json(path, state)


def _write_json(path: Path, value: Any) -> None:
    """Write-then-rename: a reader never sees a half-written file."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value, separators=(",", ":")))
    os.replace(temporary, path)


class Records:
    """A fake's records, a file each (`<fakes dir>/<fake>/<hash of key>.json`), so reading
    or writing one never costs more as the others pile up. Used under the fake's lock."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def directory(self) -> Path:
        return fakes_dir() / self.name

    def _path(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(self._path(key).read_text())
        except FileNotFoundError:
            return None
        return record

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_json(self._path(key), record)

    def all(self) -> list[dict[str, Any]]:
        if not self.directory.is_dir():
            return []
        return [json.loads(path.read_text()) for path in self.directory.glob("*.json")]

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def take_one(state: dict[str, Any], knob: str) -> bool:
    """Consume one unit of a countdown knob; True if there was one."""
    remaining = int(state.get(knob, 0))
    if remaining <= 0:
        return False
    state[knob] = remaining - 1
    return True


class Fake:
    """Base of the fakes: a named state file and `reset()`."""

    name = "fake"

    def __init__(self) -> None:
        self._state = _StateFile(self.name)

    def reset(self) -> None:
        """Forget every record, count and knob."""
        with self._state.edit() as state:
            state.clear()
