"""Run stores: where runs, their checkpoint logs and their inboxes live."""

from durable.storage.base import RunPage, RunStore

__all__ = ["RunPage", "RunStore"]
