"""The in-memory store's bulk jobs (`BulkJobs`), a mixin of `MemoryRunStore`: one record per
job, its lease beside it, each change one step under the store's lock (as DynamoDB's
conditional writes are one request each)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

from durable.errors import ConflictError
from durable.storage.bulk_jobs import BulkJob, BulkState


class MemoryBulkJobs:
    """`create_bulk_job`, `get_bulk_job`, `claim_bulk_job`, `save_bulk_job` over a dict."""

    _lock: threading.RLock
    writes: int

    @property
    def _bulk_jobs(self) -> dict[str, BulkJob]:
        jobs: dict[str, BulkJob] = self.__dict__.setdefault("_bulk_job_records", {})
        return jobs

    def create_bulk_job(self, job: BulkJob) -> None:
        with self._lock:
            if job.job_id in self._bulk_jobs:
                raise ConflictError(f"bulk job {job.job_id} exists")
            self._bulk_jobs[job.job_id] = replace(job, lease_owner=None, lease_until=None)
            self.writes += 1

    def get_bulk_job(self, job_id: str) -> BulkJob | None:
        with self._lock:
            return self._bulk_jobs.get(job_id)

    def claim_bulk_job(
        self, job_id: str, owner: str, now: datetime, until: datetime
    ) -> BulkJob | None:
        with self._lock:
            job = self._bulk_jobs.get(job_id)
            if job is None or job.state is not BulkState.RUNNING:
                return None
            held_until = job.lease_until
            if job.lease_owner not in (None, owner) and held_until is not None and held_until > now:
                return None
            claimed = replace(job, lease_owner=owner, lease_until=until)
            self._bulk_jobs[job_id] = claimed
            self.writes += 1
            return claimed

    def save_bulk_job(self, job: BulkJob, owner: str) -> BulkJob:
        with self._lock:
            stored = self._bulk_jobs.get(job.job_id)
            if stored is None or stored.lease_owner != owner:
                raise ConflictError(f"bulk job {job.job_id}: lease is not held by {owner}")
            self._bulk_jobs[job.job_id] = job
            self.writes += 1
            return job
