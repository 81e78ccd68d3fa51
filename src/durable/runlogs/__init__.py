"""Run logs: the `RunLogSource` port (`base`), on CloudWatch Logs (`cloudwatch`) and in memory
(`memory`, the test kit's)."""

from durable.runlogs.base import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    InvalidLogCursorError,
    LogLine,
    LogPage,
    RunLogSource,
)
from durable.runlogs.memory import MemoryRunLogSource

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "InvalidLogCursorError",
    "LogLine",
    "LogPage",
    "MemoryRunLogSource",
    "RunLogSource",
]
