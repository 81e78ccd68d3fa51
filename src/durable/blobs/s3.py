"""`S3BlobStore`: the `BlobStore` port on one S3 bucket.

`put` overwrites nothing in practice (keys are never reused for other content, see
`durable.blobs.base`); `get` of a missing key raises `DurableError`, as the memory store
does. botocore errors become `InfrastructureError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from durable.aws import boto3_client
from durable.errors import DurableError, InfrastructureError
from durable.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3BlobStore:
    """Keeps each value as one object under its key."""

    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self._bucket = bucket
        self._client = client if client is not None else boto3_client("s3", get_settings())

    @property
    def bucket(self) -> str:
        return self._bucket

    def put(self, key: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise InfrastructureError(
                f"could not store blob {key!r} in {self._bucket}: {exc}"
            ) from exc

    def get(self, key: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            return response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise DurableError(f"blob {key!r} is missing") from exc
            raise InfrastructureError(
                f"could not read blob {key!r} from {self._bucket}: {exc}"
            ) from exc
        except BotoCoreError as exc:
            raise InfrastructureError(
                f"could not read blob {key!r} from {self._bucket}: {exc}"
            ) from exc
