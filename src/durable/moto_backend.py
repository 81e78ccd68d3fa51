"""moto in process for the test kit: `MotoBackend` (moto started once, with the runtime's
table, queue and bucket, for many environments) and `serialize_moto_requests` (one request
at a time, as moto's server serves `durable dev`). `durable.testing` re-exports both.
"""

from __future__ import annotations

import threading
from typing import Any

from durable.blobs.base import BlobStore
from durable.storage.base import RunStore

__all__ = ["MOTO_INDEX_SHARDS", "MotoBackend", "serialize_moto_requests"]

MOTO_INDEX_SHARDS = 2


# One request at a time through in-process moto (see `serialize_moto_requests`).
_MOTO_REQUESTS = threading.RLock()
_moto_serialized = False


def serialize_moto_requests() -> None:
    """Make in-process moto (`mock_aws`) serve one request at a time, as its server does
    for `durable dev`. moto keeps tables and queues in plain dicts: the runtime's thread
    pools (a purge's deletes, a listing's shard queries) would otherwise change one while
    another thread iterates it ("dictionary changed size during iteration"), a failure
    real AWS never has. Applied once per process; `MotoBackend` applies it."""
    from moto.core.botocore_stubber import BotocoreStubber

    global _moto_serialized
    with _MOTO_REQUESTS:
        if _moto_serialized:
            return
        serve = BotocoreStubber.__call__

        def serve_one_at_a_time(
            self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any
        ) -> Any:
            with _MOTO_REQUESTS:
                return serve(self, event_name, request, **kwargs)

        BotocoreStubber.__call__ = serve_one_at_a_time  # type: ignore[method-assign]  # the patch
        _moto_serialized = True


class MotoBackend:
    """moto started once, with the runtime's table, queue and bucket, for many environments.

    Starting moto and creating the resources is most of what a moto environment costs; a
    test module that makes many (a crash at every call, say) shares one:

        with MotoBackend() as moto:
            for crash in points:
                with TestEnvironment(backend="moto", moto=moto) as env:  # empty table
                    ...

    `index_shards` is the shard count of the table's indexes. Few by default: what a store
    does does not depend on the count (`tests/contract` runs it on 4 and on the production
    default), and every listing and every sweep queries each shard once, so a moto test
    that crashes at every AWS call in turn (`tests/faults`) would try each of those too.
    """

    def __init__(self, *, index_shards: int = MOTO_INDEX_SHARDS) -> None:
        from durable.settings import Settings

        self.settings = Settings(endpoint_url=None)
        self.index_shards = index_shards
        self._mock: Any = None
        self._blobs: BlobStore | None = None

    def __enter__(self) -> MotoBackend:
        import os

        from moto import mock_aws

        from durable.blobs.s3 import S3BlobStore
        from durable.resources import ensure_resources

        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            os.environ.setdefault(name, value)
        serialize_moto_requests()
        self._mock = mock_aws()
        self._mock.start()
        ensure_resources(self.settings, index_shards=self.index_shards)
        self._blobs = S3BlobStore(self.settings.bucket_name)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

    def fresh(self) -> tuple[RunStore, BlobStore]:
        """A store on the emptied table, and the blob store (keys are never reused)."""
        from durable.storage.dynamodb import DynamoDBRunStore

        assert self._blobs is not None, "use MotoBackend as a context manager"
        store = DynamoDBRunStore(self.settings.table_name, region=self.settings.region)
        store.clear()
        return store, self._blobs
