"""`ctx.patched`: one deployment serves runs recorded before and after a code change.

Log entry: a `patch_marker` named after the change, recorded by a run that reaches the
point fresh. Replay rule: a marker here means the run took the new path; another
operation here means it was recorded before the change and takes the old path (the
marker's position is then not consumed). Temporal's patching, in one call.
"""

from __future__ import annotations

from durable.operations.attempt import Attempt
from durable.records import CheckpointKind


def patched(attempt: Attempt, change_id: str) -> bool:
    """True where the code after the change runs; False when replaying a run from before."""
    position = attempt.position
    entries = attempt.view.entries(position)
    if entries:
        first = entries[0]
        if first.kind is CheckpointKind.PATCH_MARKER and first.name == change_id:
            attempt.take_position()
            return True
        return False  # recorded before the change: the old code's operation is here
    attempt.take_position()
    attempt.record(CheckpointKind.PATCH_MARKER, position, change_id)
    return True
