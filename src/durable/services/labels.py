"""A run's labels, given at trigger: tags (indexed, a listing finds runs by one) and metadata
(key-values shown with the run). Both are checked here, before anything is stored.

- Tags: at most `MAX_TAGS` (10) strings of 1 to 64 characters of `A-Za-z0-9_.:/=@+-`
  ("user:123", "env=prod", "team/payments"); duplicates are dropped, the first
  occurrence's order kept. No '#' or '%': a tag goes into an index key as it is.
- Metadata: at most `MAX_METADATA_KEYS` (16) keys, each 1 to 64 characters of a name
  (`[A-Za-z_][A-Za-z0-9_.-]*`), string values of at most 512 characters, keys and values
  together at most `MAX_METADATA_BYTES` (4 KB of UTF-8): a run item stays small.

Anything else raises `InvalidTagsError` / `InvalidMetadataError` (400 in the HTTP API).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from durable.errors import InvalidMetadataError, InvalidTagsError

MAX_TAGS = 10
MAX_TAG_LENGTH = 64
TAG_PATTERN = r"^[A-Za-z0-9_.:/=@+-]{1,64}$"
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 512
MAX_METADATA_BYTES = 4096
METADATA_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"

_TAG = re.compile(TAG_PATTERN)
_KEY = re.compile(METADATA_KEY_PATTERN)


def check_tag(tag: object) -> str:
    """`tag` if it is a valid tag; `InvalidTagsError` otherwise (a filter's tag too)."""
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise InvalidTagsError(
            f"invalid tag {str(tag)[:80]!r}: 1-{MAX_TAG_LENGTH} characters of A-Za-z0-9_.:/=@+-"
        )
    return tag


def checked_tags(tags: Iterable[str] | None) -> tuple[str, ...]:
    """The tags, checked, deduplicated in order of first occurrence."""
    if tags is None:
        return ()
    if isinstance(tags, str):
        raise InvalidTagsError("tags are a list of strings, not one string")
    unique = tuple(dict.fromkeys(check_tag(tag) for tag in tags))
    if len(unique) > MAX_TAGS:
        raise InvalidTagsError(f"at most {MAX_TAGS} tags, not {len(unique)}")
    return unique


def checked_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The metadata, checked (a copy)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidMetadataError("metadata is an object of string keys and string values")
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidMetadataError(f"at most {MAX_METADATA_KEYS} keys, not {len(metadata)}")
    size = 0
    for key, value in metadata.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidMetadataError(
                f"invalid metadata key {str(key)[:80]!r}: a letter or '_', then up to "
                f"{MAX_METADATA_KEY_LENGTH - 1} of A-Za-z0-9_.-"
            )
        if not isinstance(value, str):
            raise InvalidMetadataError(f"metadata {key!r}: values are strings")
        if len(value) > MAX_METADATA_VALUE_LENGTH:
            raise InvalidMetadataError(
                f"metadata {key!r}: at most {MAX_METADATA_VALUE_LENGTH} characters"
            )
        try:
            size += len(key.encode()) + len(value.encode())
        except UnicodeEncodeError:
            raise InvalidMetadataError(f"metadata {key!r}: not valid Unicode") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidMetadataError(f"metadata is over {MAX_METADATA_BYTES} bytes in all")
    return dict(metadata)
