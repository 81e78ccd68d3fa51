"""In-memory `BlobStore`."""

from __future__ import annotations

from durable.errors import DurableError


class MemoryBlobStore:
    """A dictionary of bytes."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self._blobs[key] = data

    def get(self, key: str) -> bytes:
        try:
            return self._blobs[key]
        except KeyError:
            raise DurableError(f"blob {key!r} is missing") from None
