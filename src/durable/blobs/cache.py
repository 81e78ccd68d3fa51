"""A blob store that keeps the blobs it read, so that a value read again costs no request.

The run page polls a live run's timeline every 1.5 s, and each poll decodes every value of
the log: a step output too large for a DynamoDB item is a blob (`durable.values`), which
would be an S3 GET at every poll. The client reads values through this wrapper, so each
blob is fetched once per process.

Why this is correct: a blob key is never reused for other content (`durable.blobs.base`;
`ValueCodec` names a value's blob by its run, its slot and a digest of its bytes), so the
bytes once read under a key are the bytes under it for as long as anything refers to it.
Only what `get` returned is kept, never what was `put` (a put that failed, or whose answer
was lost, may or may not have stored anything). The blobs kept are bounded in bytes, least
recently used dropped first; a blob larger than the bound is not kept. Each wrapper keeps
the blobs of the one store it wraps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from durable.blobs.base import BlobStore

DEFAULT_MAX_BYTES = 32 * 1024 * 1024


class CachedBlobs:
    """`BlobStore` over another, keeping what it read (up to `max_bytes` in all)."""

    def __init__(self, blobs: BlobStore, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._blobs = blobs
        self._max_bytes = max_bytes
        self._held: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        # Held while the dict changes, never across a read of the store.
        self._lock = threading.Lock()

    @property
    def inner(self) -> BlobStore:
        """The store read from."""
        return self._blobs

    def __len__(self) -> int:
        return len(self._held)

    @property
    def held_bytes(self) -> int:
        """The size of the blobs kept, in bytes."""
        return self._bytes

    def put(self, key: str, data: bytes) -> None:
        self._blobs.put(key, data)

    def get(self, key: str) -> bytes:
        with self._lock:
            data = self._held.get(key)
            if data is not None:
                self._held.move_to_end(key)
                return data
        data = self._blobs.get(key)
        self._keep(key, data)
        return data

    def _keep(self, key: str, data: bytes) -> None:
        if len(data) > self._max_bytes:
            return
        with self._lock:
            previous = self._held.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous)
            self._held[key] = data
            self._bytes += len(data)
            while self._bytes > self._max_bytes:
                _, evicted = self._held.popitem(last=False)
                self._bytes -= len(evicted)
