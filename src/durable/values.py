"""Encoded values: JSON text inline, or a reference to a blob when too large for an item.

Every payload, result, step result and event datum is stored as *encoded* text:
either JSON (which never starts with `@`) or `@blob:<key>`, whose JSON lives in the blob
store. DynamoDB items are capped at 400 KB, so anything over `inline_limit` (default
128 KiB) goes to the blob store: a run item holds a payload and a result of up to that
each, beside a bounded error (`records.MAX_ERROR_MESSAGE`, `records.MAX_TRACEBACK`) and
its small fields, and stays under the cap. Anything
over Lambda's 6 MB request limit is refused with `PayloadTooLargeError`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from durable.blobs.base import BlobStore
from durable.errors import PayloadTooLargeError
from durable.serialization import JsonData, dumps, loads

BLOB_PREFIX = "@blob:"
DEFAULT_INLINE_LIMIT = 128 * 1024
REQUEST_LIMIT = 6 * 1024 * 1024


class ValueCodec:
    """Encodes values for storage, offloading large ones to a blob store."""

    def __init__(
        self,
        blobs: BlobStore,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
        max_size: int = REQUEST_LIMIT,
    ) -> None:
        self._blobs = blobs
        self._inline_limit = inline_limit
        self._max_size = max_size

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    def over(self, blobs: BlobStore) -> ValueCodec:
        """The same codec on another blob store (a wrapper of this one's, say)."""
        return ValueCodec(blobs, inline_limit=self._inline_limit, max_size=self._max_size)

    def encode(self, value: Any, key_hint: str) -> str:
        """The stored form of `value`; `key_hint` names the blob (run id and slot)."""
        return self.encode_text(dumps(value), key_hint)

    def encode_text(self, text: str, key_hint: str) -> str:
        """The stored form of JSON text already serialized."""
        if len(text) <= self._inline_limit // 4:
            return text  # fast path: even at 4 bytes a character it fits
        data = text.encode("utf-8")
        if len(data) > self._max_size:
            raise PayloadTooLargeError(
                f"value is {len(data):,} bytes; the limit is {self._max_size:,} bytes"
            )
        if len(data) <= self._inline_limit:
            return text
        digest = hashlib.sha256(data).hexdigest()[:16]
        key = f"values/{key_hint}/{digest}.json"
        self._blobs.put(key, data)
        return BLOB_PREFIX + key

    def decode(self, stored: str) -> JsonData:
        """The value behind a stored form."""
        return loads(self.decode_text(stored))

    def decode_text(self, stored: str) -> str:
        """The JSON text behind a stored form."""
        if stored.startswith(BLOB_PREFIX):
            return self._blobs.get(stored[len(BLOB_PREFIX) :]).decode("utf-8")
        return stored
