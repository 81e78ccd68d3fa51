"""Run stores: where runs, their checkpoint logs and their inboxes live."""

from durable.storage.base import (
    Batches,
    Callbacks,
    Inbox,
    Listings,
    Retention,
    RunLog,
    RunPage,
    RunRecords,
    RunStats,
    RunStore,
)
from durable.storage.timers import ParkedTimers

__all__ = [
    "Batches",
    "Callbacks",
    "Inbox",
    "Listings",
    "ParkedTimers",
    "Retention",
    "RunLog",
    "RunPage",
    "RunRecords",
    "RunStats",
    "RunStore",
]
