"""The files that keep `durable dev`'s moto state: the journal, snapshots and the lock.

A journal or snapshot is a sequence of records, each framed as length, CRC-32, pickle. A
record cut short (a kill in the middle of a write) ends the reading: it was never
acknowledged. A snapshot ends with an `end` record, so a snapshot cut short is told apart
from a complete one, and is written to a temporary file renamed into place.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

_RECORD_HEADER = struct.Struct(">II")  # length, crc32


class StateDirectoryBusy(Exception):
    """Another server keeps its state in this directory."""


class Journal:
    """An append-only file of records, each synced to disk before `append` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 (kept open while serving)
        self._lock = threading.Lock()
        self.size = self._file.tell()

    def append(self, record: dict[str, Any]) -> None:
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            self._file.write(_RECORD_HEADER.pack(len(data), zlib.crc32(data)) + data)
            self._file.flush()
            os.fdatasync(self._file.fileno())
            self.size += _RECORD_HEADER.size + len(data)

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a journal or snapshot file, up to the first one cut short."""
    if not path.exists():
        return
    with open(path, "rb") as file:
        while True:
            header = file.read(_RECORD_HEADER.size)
            if len(header) < _RECORD_HEADER.size:
                return
            length, checksum = _RECORD_HEADER.unpack(header)
            data = file.read(length)
            if len(data) < length or zlib.crc32(data) != checksum:
                return  # cut short by a kill: never acknowledged
            yield pickle.loads(data)


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write a snapshot atomically (a temporary file renamed into place); returns the count."""
    temporary = path.with_suffix(".tmp")
    count = 0
    with open(temporary, "wb") as file:
        for record in records:
            data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
            file.write(_RECORD_HEADER.pack(len(data), zlib.crc32(data)) + data)
            count += 1
        end = pickle.dumps({"kind": "end"})
        file.write(_RECORD_HEADER.pack(len(end), zlib.crc32(end)) + end)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    sync_directory(path.parent)
    return count


def sync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def lock_state_directory(state_dir: Path) -> BinaryIO:
    """Hold the directory's lock file for as long as this process lives."""
    state_dir.mkdir(parents=True, exist_ok=True)
    holder: BinaryIO = open(state_dir / "moto.lock", "a+b")  # noqa: SIM115 (held until exit)
    try:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder.seek(0)
        owner = holder.read().decode(errors="replace").strip() or "another process"
        holder.close()
        raise StateDirectoryBusy(
            f"{state_dir} is in use by {owner}: is another `durable dev` running there? "
            "Stop it, or give this one another --state-dir"
        ) from None
    holder.truncate(0)
    holder.write(f"durable dev (moto pid {os.getpid()})".encode())
    holder.flush()
    return holder
