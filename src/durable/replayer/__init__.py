"""Replays recorded histories against today's code without executing anything (`durable replay`).

As Temporal's replayer does, this answers one question before a deploy: would today's code
ask for the same operations, in the same order, as the recorded runs did? `replay` holds
the rules and the replay itself, `history_file` the files `--save` writes and `--history`
reads, `report` what a replay found and how `durable replay` prints it.
"""

from durable.replayer.history_file import (
    HistoryFileError,
    RecordedRun,
    load_history_file,
    save_history_file,
)
from durable.replayer.replay import replay_history, replay_run
from durable.replayer.report import Operation, ReplayReport, ReplayStatus, format_report

__all__ = [
    "HistoryFileError",
    "Operation",
    "RecordedRun",
    "ReplayReport",
    "ReplayStatus",
    "format_report",
    "load_history_file",
    "replay_history",
    "replay_run",
    "save_history_file",
]
