"""The `BlobStore` port: put and get bytes by key. Keys are never reused for other content."""

from __future__ import annotations

from typing import Protocol


class BlobStore(Protocol):
    """Stores large values by key."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...
