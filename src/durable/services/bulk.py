"""Bulk actions: cancel (retry, resume) every run a filter matches, as a background job.

    POST /bulk ─► start_bulk: store the job, send BULK#<job> ─► worker: run_bulk_job
                                                                 │
      claim the job's lease ─┬─ held by another: send the message again, due when it ends
                             ├─ finished or unknown: drop the message
                             └─ got it: repeat until the budget is spent or no page is left:
                                  list a page of matches from the cursor; save it as `pending`
                                  (with the next cursor and `matched`);
                                  act on each pending run (`threads` at a time);
                                  save the counts and clear `pending` (completed after the last)
                                budget spent: free the lease, send BULK#<job> (a continuation)

Rules, each making a crash, a duplicate or a late message harmless:

- Every progress write is conditional on the lease (`BulkJobs.save_bulk_job`): a worker
  that lost it (it outlived its lease, another took over) writes nothing more, so nothing is
  counted twice. The lease lasts the budget and `LEASE_MARGIN` more.
- A page is saved as `pending` before any run on it is touched, with the cursor after it:
  a worker that dies mid-page leaves the same page for the next one, whatever the action
  did to the runs' status meanwhile (retrying FAILED runs moves them out of a `status`
  filter; the cursor, a position in run-id order, does not move with them). So each match
  is visited once, and acted on at most once.
- Actions are idempotent per run and tell "acted" from "skipped" (no longer applicable:
  cancelling a run that has ended). The cancel records its audit entry (`"cancel"`, with
  `{"bulk": <job id>}`) before cancelling: a run revisited after a crash whose log holds
  this job's entry counts as acted, once, and gets no second entry.
- A message for a job whose lease is held is sent again, due when that lease ends: a worker
  that died holding it (its message lost with it) leaves a lease that expires, and this
  message takes over. A finished job's messages are dropped.
- An error an action raises for one run (other than an `InfrastructureError`) is counted
  with its message (the first few kept) and the job goes on. An `InfrastructureError`
  frees the lease and ends the invocation: the message comes back.

The actions are a mapping (`ACTIONS`, action -> factory of a `RunAction` on the ports);
"cancel", "retry" (`durable.services.repair.retry_run`) and "resume"
(`durable.services.resume.resume_run`, re-pinning to the worker's code version) are wired
here; an action missing from the mapping is refused (`BulkActionUnavailableError`, 422).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from durable.clock import Clock
from durable.errors import (
    BulkActionUnavailableError,
    BulkFilterRequiredError,
    BulkJobNotFoundError,
    ConflictError,
    InfrastructureError,
    InputError,
    RepairRefusedError,
    RunFinishedError,
    RunNotFoundError,
    RunNotHeldError,
    UnknownBulkActionError,
)
from durable.ids import new_owner_id, new_run_id
from durable.queues.base import WakeQueue
from durable.records import BULK_JOB_ID, CheckpointKind, RunRecord, WakeUp
from durable.services.audit import action_details, record_action
from durable.services.endings import RunEndings
from durable.services.repair import retry_run
from durable.services.resume import resume_run
from durable.storage.base import RunStore
from durable.storage.bulk_jobs import BulkAction, BulkFilter, BulkJob, BulkState

# How long one worker works on a job before it hands over to a continuation.
BULK_BUDGET = timedelta(seconds=60)
# How long past its budget a worker's lease lasts (the last page's actions in flight).
LEASE_MARGIN = timedelta(seconds=30)
# How many runs one worker acts on at once, and how many it lists a page.
BULK_THREADS = 8
BULK_PAGE = 100

Outcome = Literal["acted", "skipped"]


@dataclass(frozen=True, slots=True)
class Target:
    """A run a job acts on: its id, and, on a page this worker has just listed, the run as
    listed (`listed`): no run on such a page can have been acted on by this job before (a
    page is listed once, and then saved as pending), so an action may skip looking."""

    run_id: str
    listed: RunRecord | None = None


# An action on one run, for a job: "acted" or "skipped"; raises what went wrong otherwise.
RunAction = Callable[[Target, BulkJob], Outcome]


@dataclass(frozen=True, slots=True)
class BulkPorts:
    """What the actions work with."""

    store: RunStore
    queue: WakeQueue
    clock: Clock
    endings: RunEndings
    code_version: str = "dev"  # the worker's: a resumed run is re-pinned to it


ActionFactory = Callable[[BulkPorts], RunAction]


def acted_by_job(store: RunStore, run_id: str, action: str, job_id: str) -> bool:
    """Whether the run's log holds the audit entry of `action` by the bulk job `job_id`."""
    return any(
        entry.kind is CheckpointKind.RUN_ACTION
        and entry.name == action
        and action_details(entry).get("bulk") == job_id
        for entry in store.load_history(run_id)
    )


def cancel_action(ports: BulkPorts) -> RunAction:
    """Cancel a run that has not ended (`RunEndings.cancel`), audited first."""

    def cancel(target: Target, job: BulkJob) -> Outcome:
        run_id = target.run_id
        run = target.listed or ports.store.get_run(run_id)
        if run is None:
            return "skipped"  # purged since it was listed
        # A page listed just now holds no run this job acted on (see `Target`).
        mine = target.listed is None and acted_by_job(ports.store, run_id, "cancel", job.job_id)
        if run.status.is_terminal:
            return "acted" if mine else "skipped"
        if not mine:
            details = {"bulk": job.job_id}
            record_action(ports.store, ports.clock, run, "cancel", job.by, details)
        try:
            ports.endings.cancel(run_id)
        except RunFinishedError:
            return "skipped"  # it ended on its own meanwhile
        return "acted"

    return cancel


# A run service's shape (`retry_run`, `resume_run`): it acts and returns the run, or refuses
# a run it does not apply to with one of `NOT_APPLICABLE` (then "skipped").
RunService = Callable[[RunStore, WakeQueue, Clock, str, str], RunRecord]
NOT_APPLICABLE: tuple[type[Exception], ...] = (
    ConflictError,
    RunFinishedError,
    RunNotFoundError,
    RepairRefusedError,
    RunNotHeldError,
)


def service_action(name: str, service: RunService) -> ActionFactory:
    """The `RunAction` of a run service `fn(store, queue, clock, run_id, by) -> RunRecord`
    (which records its own audit entry)."""

    def factory(ports: BulkPorts) -> RunAction:
        def act(target: Target, job: BulkJob) -> Outcome:
            try:
                service(ports.store, ports.queue, ports.clock, target.run_id, job.by)
            except NOT_APPLICABLE:
                return "skipped"
            return "acted"

        return act

    return factory


def _resume_action(ports: BulkPorts) -> RunAction:
    """Resume, re-pinning a run held for a code version to the worker's own."""

    def resume(store: RunStore, queue: WakeQueue, clock: Clock, run_id: str, by: str) -> RunRecord:
        return resume_run(store, queue, clock, run_id, by, code_version=ports.code_version)

    return service_action("resume", resume)(ports)


ACTIONS: dict[BulkAction, ActionFactory] = {
    BulkAction.CANCEL: cancel_action,
    BulkAction.RETRY: service_action("retry", retry_run),
    BulkAction.RESUME: _resume_action,
}


def new_bulk_job_id(now: datetime) -> str:
    """A job id: `bulk_` and a run id's digits (sorted by creation time, random)."""
    return "bulk_" + new_run_id(now).removeprefix("run_")


def start_bulk(
    store: RunStore,
    queue: WakeQueue,
    clock: Clock,
    action: str,
    filter: BulkFilter,
    by: str,
    *,
    all_runs: bool = False,
    available: Iterable[str] | None = None,
) -> BulkJob:
    """Store a bulk job and send its first message; the job as stored.

    Raises `UnknownBulkActionError` for an unknown action, `BulkActionUnavailableError` for one no
    worker serves yet, `BulkFilterRequiredError` for an empty filter without `all_runs`.
    """
    try:
        chosen = BulkAction(action)
    except ValueError:
        names = ", ".join(str(a) for a in BulkAction)
        raise UnknownBulkActionError(f"unknown bulk action {action!r}: one of {names}") from None
    served = set(ACTIONS if available is None else available)
    if chosen not in served:
        raise BulkActionUnavailableError(str(chosen))
    if filter.empty and not all_runs:
        raise BulkFilterRequiredError()
    now = clock.now()
    job = BulkJob(
        job_id=new_bulk_job_id(now),
        action=chosen,
        filter=filter,
        by=by,
        created_at=now,
        updated_at=now,
    )
    store.create_bulk_job(job)
    queue.send(WakeUp.bulk(job.job_id))
    return job


def read_bulk_job(store: RunStore, queue: WakeQueue, clock: Clock, job_id: str) -> BulkJob:
    """The job as stored (sending its message again if it stalled: `nudge_if_stalled`);
    raises `BulkJobNotFoundError` for an unknown id."""
    job = store.get_bulk_job(job_id) if BULK_JOB_ID.fullmatch(job_id) else None
    if job is None:
        raise BulkJobNotFoundError(job_id[:100])
    nudge_if_stalled(job, queue, clock.now())
    return job


def cancel_audited(endings: RunEndings, clock: Clock, run_id: str, by: str | None) -> RunRecord:
    """Cancel one run (`RunEndings.cancel`), then, with `by`, record the audit entry
    (`"cancel"`): the run has ended, so no invocation holds its log."""
    run = endings.cancel(run_id)
    if by is not None:
        record_action(endings.starter.store, clock, run, "cancel", by)
    return run


# A running job whose lease is free and that has not moved for this long has lost its
# message (a crash between storing it and sending it, say): reading it sends one again.
STALLED = timedelta(minutes=5)


def nudge_if_stalled(job: BulkJob, queue: WakeQueue, now: datetime) -> bool:
    """Send a stalled job's message again (see `STALLED`); whether it was sent."""
    if job.done or now - job.updated_at < STALLED:
        return False
    if job.lease_until is not None and job.lease_until > now:
        return False
    queue.send(WakeUp.bulk(job.job_id))
    return True


Handling = Literal["completed", "failed", "continued", "held", "finished", "unknown"]


@dataclass(frozen=True, slots=True)
class BulkProgress:
    """What one BULK message did."""

    handling: Handling
    job: BulkJob | None = None


def run_bulk_job(
    ports: BulkPorts,
    job_id: str,
    actions: Mapping[BulkAction, RunAction] | None = None,
    *,
    budget: timedelta = BULK_BUDGET,
    threads: int = BULK_THREADS,
    page_size: int | None = None,
) -> BulkProgress:
    """Work on the job `job_id` for `budget` at most (see the module's docstring).
    `actions` defaults to `ACTIONS` built on `ports`, `page_size` to `BULK_PAGE`."""
    store, clock = ports.store, ports.clock
    started = clock.now()
    owner = new_owner_id()
    job = store.claim_bulk_job(job_id, owner, started, started + budget + LEASE_MARGIN)
    if job is None:
        return _not_claimed(ports, job_id, started)
    if actions is None:
        actions = {name: factory(ports) for name, factory in ACTIONS.items()}
    work = _Work(ports, job, owner, started, budget)
    try:
        return work.run(actions.get(job.action), max(1, threads), page_size or BULK_PAGE)
    except Exception:
        # An infrastructure error: the message comes back, and must find the job free.
        with contextlib.suppress(Exception):
            work.save(lease_owner=None, lease_until=None)
        raise


def _not_claimed(ports: BulkPorts, job_id: str, now: datetime) -> BulkProgress:
    current = ports.store.get_bulk_job(job_id)
    if current is None:
        return BulkProgress("unknown")
    if current.done:
        return BulkProgress("finished", current)
    # Held: come back when the holder's lease ends (it may have died with its message).
    until = current.lease_until or now
    delay = min(max(until - now, timedelta(0)) + timedelta(seconds=1), ports.queue.max_delay)
    ports.queue.send(WakeUp.bulk(job_id), delay=delay)
    return BulkProgress("held", current)


class _Work:
    """One worker's turn at a job: the job as last saved, and its saves."""

    def __init__(
        self, ports: BulkPorts, job: BulkJob, owner: str, started: datetime, budget: timedelta
    ) -> None:
        self.ports = ports
        self.job = job
        self.owner = owner
        self.started = started
        self.budget = budget
        self.listed: dict[str, RunRecord] = {}  # the page this worker listed, as listed

    def save(self, **changes: object) -> BulkJob:
        changed = self.job.with_changes(updated_at=self.ports.clock.now(), **changes)
        self.job = self.ports.store.save_bulk_job(changed, self.owner)
        return self.job

    def finish(self, state: BulkState, **changes: object) -> None:
        now = self.ports.clock.now()
        self.save(
            state=state,
            finished_at=now,
            lease_owner=None,
            lease_until=None,
            **changes,
        )

    def run(self, action: RunAction | None, threads: int, page_size: int) -> BulkProgress:
        if action is None:
            reason = f"no worker here serves the {self.job.action!r} action"
            self.finish(BulkState.FAILED, reason=reason)
            return BulkProgress("failed", self.job)
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bulk") as pool:
            while True:
                if not self.job.pending and not self.job.exhausted:
                    failure = self._take_page(page_size)
                    if failure is not None:
                        self.finish(BulkState.FAILED, reason=failure)
                        return BulkProgress("failed", self.job)
                outcomes = list(
                    pool.map(lambda run_id: self._act(action, run_id), self.job.pending)
                )
                self.listed = {}
                counted = self._counted(outcomes)
                if self.job.exhausted:
                    self.finish(BulkState.COMPLETED, **counted)
                    return BulkProgress("completed", self.job)
                if self.ports.clock.now() - self.started >= self.budget:
                    self.save(lease_owner=None, lease_until=None, **counted)
                    self.ports.queue.send(WakeUp.bulk(self.job.job_id))
                    return BulkProgress("continued", self.job)
                if counted:
                    self.save(**counted)

    def _take_page(self, page_size: int) -> str | None:
        """List the next page of matches and save it as pending; a reason to fail, or None."""
        job = self.job
        try:
            page = self.ports.store.list_runs(
                limit=page_size, cursor=job.cursor, **job.filter.listing_arguments()
            )
        except InputError as exc:
            return f"the listing refused the job's filter or cursor: {exc}"
        self.listed = {run.run_id: run for run in page.runs}
        self.save(
            pending=tuple(run.run_id for run in page.runs),
            cursor=page.next_cursor,
            exhausted=page.next_cursor is None,
            matched=job.matched + len(page.runs),
            pages=job.pages + 1,
        )
        return None

    def _act(self, action: RunAction, run_id: str) -> Outcome | str:
        """The action's outcome on one run, or the message of the error it raised."""
        try:
            return action(Target(run_id, self.listed.get(run_id)), self.job)
        except InfrastructureError:
            raise
        except Exception as exc:  # counted, and the job goes on
            return f"{run_id}: {type(exc).__name__}: {exc}"

    def _counted(self, outcomes: list[Outcome | str]) -> dict[str, object]:
        """The job's changes once `outcomes` (those of its pending runs) are counted."""
        if not self.job.pending:
            return {}
        job = self.job.with_changes(pending=())
        for outcome in outcomes:
            if outcome == "acted":
                job = job.with_changes(acted=job.acted + 1)
            elif outcome == "skipped":
                job = job.with_changes(skipped=job.skipped + 1)
            else:
                job = job.with_error(outcome)
        return {
            "pending": (),
            "acted": job.acted,
            "skipped": job.skipped,
            "errors": job.errors,
            "error_messages": job.error_messages,
        }


def work_on_message(
    ports: BulkPorts,
    job_id: str,
    time_left: Callable[[], timedelta] | None,
    margin: timedelta,
    budget: timedelta = BULK_BUDGET,
    threads: int = BULK_THREADS,
) -> BulkProgress:
    """A worker's BULK message: `run_bulk_job` within the invocation's `time_left` (less
    `margin` and the lease's own margin, so the last page, the save and the continuation
    fit after the budget). Runs the job cancels are kept for the deployment's retention
    (`ports.endings`), as the API's cancels are."""
    if time_left is not None:
        budget = min(budget, time_left() - margin - LEASE_MARGIN)
    return run_bulk_job(ports, job_id, budget=max(budget, timedelta(0)), threads=threads)
