"""Runs pinned to their code version: routed to their deployment, or held, visibly.

A run started by one code version is never replayed with another (its log was written by
that code). A worker that meets a run of another version hands its wake-up to the
deployment of that version when its `VersionRouter` knows one (`durable.routing`:
a Lambda version or alias); otherwise the run is held:

- `waiting_for` names the version it needs (`code-version:V`) and its error names both;
- its wake-ups keep coming (the sweeper's, every `version_recheck`), so it resumes by
  itself once that version is deployed again or routed;
- its `wake_at` moves on each time, so held runs never crowd the sweeper's due index
  (`durable.worker.holds.recheck_hold`, as for runs held for a code fix);
- `resume` (`durable.services.resume`) re-pins it to the caller's code version instead.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Protocol

from durable.clock import Clock
from durable.errors import ConflictError
from durable.records import HOLD_CODE_VERSION, ErrorInfo, RunRecord, WakeUp
from durable.storage.base import RunStore
from durable.worker.holds import recheck_hold


class VersionRouter(Protocol):
    """Hands a wake-up to the deployment that runs `code_version` (a Lambda version/alias).

    Returns False when it knows no such deployment.
    """

    def route(self, code_version: str, message: WakeUp) -> bool: ...


def hold_for_version(
    store: RunStore, clock: Clock, run: RunRecord, running: str, recheck: timedelta
) -> None:
    """Hold `run`, pinned to a version other than `running` (this worker's), until
    `recheck` from now; a run held already and not yet due is left as it is."""
    needed = f"{HOLD_CODE_VERSION}{run.code_version}"
    now = clock.now()
    if run.waiting_for == needed:
        recheck_hold(store, clock, run, recheck)  # held already: its wake_at moves on, if due
    else:
        error = ErrorInfo(
            type="VersionMismatch",
            message=f"run {run.run_id} is pinned to code version {run.code_version!r}; "
            f"this worker runs {running!r}. Deploy {run.code_version!r} "
            "again or route it (DURABLE_VERSION_ROUTES); the run waits meanwhile",
            non_retryable=True,
        )
        with contextlib.suppress(ConflictError):
            store.update_run(
                run.run_id,
                {
                    "waiting_for": needed,
                    "error": error,
                    "updated_at": now,
                    "wake_at": now + recheck,
                },
                expect_status=[run.status],
            )
