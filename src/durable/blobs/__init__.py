"""Blob stores: where values too large for a DynamoDB item go."""

from durable.blobs.base import BlobStore

__all__ = ["BlobStore"]
