"""Local Lambda containers: a pool of warm processes, one invocation at a time in each.

    pool.acquire() ─► Container (idle, warm) ─► invoke(event, time_limit) ─► pool.release()
                                                     │
                 reply ◄─ ok / handler raised        │  process died ─► "crashed"
                                                     │  no reply in time ─► kill ─► "timed_out"

Each container is a `python -m durable.local.invoke` process (see there). As in Lambda, a
container survives a handler that raises, and is thrown away when its process dies or
overruns the time limit; the pool then starts a fresh one in its place, so one crash never
takes down other invocations and the pool never shrinks.

A container's stdout and stderr go into one pipe that a thread reads to its end, feeding each
line to the dev console (`durable.local.console`): nothing a worker prints reaches the
terminal unformatted, a full pipe never blocks a worker, and a crashed or killed worker's
last lines are read before the line that says it crashed (the process runs unbuffered, `-u`).
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

from durable.local.console import Entry, OutputReader, entry, traceback_location
from durable.local.invoke import receive, send
from durable.local.moto_requests import BACKGROUND_APP_ID

InvocationStatus = Literal["ok", "error", "crashed", "timed_out"]

# How long a container may take to import the handler and the tasks (Lambda's init limit).
START_TIMEOUT = 60.0
# How long an invocation's end waits for the output it printed to be read (and shown first).
OUTPUT_SETTLE_SECONDS = 0.2
# How long a dead container's output may take to reach its EOF.
OUTPUT_DRAIN_SECONDS = 2.0

# Where a container's output lines go: (source tag, line).
OutputFeed = Callable[[str, str], None]
# Makes a log stream for a new container: the function that ships one of its lines
# (`durable.local.log_shipper`: to CloudWatch Logs, as Lambda does).
LogStreams = Callable[[], Callable[[str], None]]


class ContainerError(Exception):
    """A container could not start."""


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """How an invocation ended: `ok` (returned), `error` (raised), `crashed` or `timed_out`."""

    status: InvocationStatus
    duration: float
    response: Any = None
    detail: str = ""


class Container:
    """One warm invocation process."""

    def __init__(
        self,
        handler: str,
        *,
        function_name: str,
        output: OutputFeed | None = None,
        log_streams: LogStreams | None = None,
    ) -> None:
        """`output` receives each line the process prints; None: it inherits our stdout.
        With `log_streams`, the lines also go to a log stream of this container's own."""
        if output is not None and log_streams is not None:
            output = _shipping(output, log_streams())
        child_read, parent_write = os.pipe()
        parent_read, child_write = os.pipe()
        output_read, output_write = -1, None
        if output is not None:
            output_read, output_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-u",
                    "-m",
                    "durable.local.invoke",
                    handler,
                    "--read-fd",
                    str(child_read),
                    "--write-fd",
                    str(child_write),
                    "--function-name",
                    function_name,
                ],
                pass_fds=(child_read, child_write),
                # Marked in their User-Agent: the dev moto serves the API before them.
                env={**os.environ, "AWS_SDK_UA_APP_ID": BACKGROUND_APP_ID},
                stdin=subprocess.DEVNULL,
                stdout=output_write,
                stderr=subprocess.STDOUT if output_write is not None else None,
            )
        except BaseException:
            for fd in (parent_read, parent_write, output_read):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            # Only the child keeps its ends: its death then reads as EOF on ours.
            for end in (child_read, child_write, output_write):
                if end is not None:
                    os.close(end)
        self._output = OutputReader(output_read, "worker", output) if output is not None else None
        self._replies = Connection(parent_read, writable=False)
        self._jobs = Connection(parent_write, readable=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Block until the process has imported its handler; ContainerError if it cannot."""
        try:
            started = self._replies.poll(timeout)
        except OSError:
            started = True  # read below, which reports the exit
        if not started:
            self.kill()
            raise ContainerError(f"the container did not start within {timeout:.0f}s")
        try:
            message = receive(self._replies)
        except (EOFError, OSError):
            code = self.process.wait()
            self._close_pipes()
            raise ContainerError(f"the container exited with code {code} while starting") from None
        if message.get("kind") != "ready":
            self.kill()
            raise ContainerError(str(message.get("error", message)))

    def invoke(self, event: dict[str, Any], time_limit: float, request_id: str) -> InvocationResult:
        """Run one invocation; kills the process if it has not answered within `time_limit`."""
        started = time.monotonic()
        job = {"event": event, "time_limit": time_limit, "request_id": request_id}
        try:
            send(self._jobs, job)
            answered = self._replies.poll(time_limit)
        except OSError:
            return self._crashed(started)
        if not answered:
            self.kill()
            self._drain_output()
            return InvocationResult(
                "timed_out",
                time.monotonic() - started,
                detail=f"killed after the {time_limit:g}s time limit",
            )
        try:
            reply = receive(self._replies)
        except (EOFError, OSError):
            return self._crashed(started)
        duration = time.monotonic() - started
        if self._output is not None:
            self._output.settle(OUTPUT_SETTLE_SECONDS)
        if reply.get("kind") == "ok":
            return InvocationResult("ok", duration, response=reply.get("response"))
        return InvocationResult("error", duration, detail=str(reply.get("error", "")))

    def _crashed(self, started: float) -> InvocationResult:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        self._close_pipes()
        self._drain_output()
        return InvocationResult(
            "crashed", time.monotonic() - started, detail=f"the process exited with code {code}"
        )

    def terminate(self) -> None:
        """Signal the process to end; the thread that owns the pipes sees EOF and cleans up."""
        if self.process.poll() is None:
            self.process.terminate()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._close_pipes()

    def _drain_output(self) -> None:
        """A dead process's last lines, read to the EOF before its death is reported."""
        if self._output is not None:
            self._output.join(OUTPUT_DRAIN_SECONDS)

    def _close_pipes(self) -> None:
        for connection in (self._jobs, self._replies):
            if not connection.closed:
                connection.close()


class ContainerPool:
    """A fixed number of warm containers; a dead one is replaced by a fresh one."""

    def __init__(
        self,
        handler: str,
        size: int,
        *,
        function_name: str = "durable-worker",
        log: Callable[[Entry], None] = print,
        output: OutputFeed | None = None,
        log_streams: LogStreams | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one container")
        self._handler = handler
        self._size = size
        self._function_name = function_name
        self._log = log
        self._output = output
        self._log_streams = log_streams
        self._idle: queue.Queue[Container] = queue.Queue()
        self._containers: set[Container] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def size(self) -> int:
        return self._size

    def start(self) -> None:
        for _ in range(self._size):
            self._launch()

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(container.pid for container in self._containers)

    def idle(self) -> int:
        """How many containers are warm and free right now."""
        return self._idle.qsize()

    def wait_idle(self, count: int, timeout: float) -> bool:
        """Wait until `count` containers are warm and free (startup)."""
        limit = time.monotonic() + timeout
        while self._idle.qsize() < count:
            if time.monotonic() >= limit or self._closed.is_set():
                return False
            time.sleep(0.05)
        return True

    def acquire(self, timeout: float | None) -> Container | None:
        """An idle container, or None if none frees up within `timeout`."""
        try:
            return self._idle.get(timeout=timeout)
        except queue.Empty:
            return None

    def put_back(self, container: Container) -> None:
        """Return a container that was acquired but not used."""
        if self._closed.is_set():
            self._discard(container)
        else:
            self._idle.put(container)

    def release(self, container: Container, result: InvocationResult) -> None:
        """Return a container after an invocation; a dead one is replaced."""
        if result.status in ("ok", "error") and container.alive and not self._closed.is_set():
            self._idle.put(container)
            return
        self._discard(container)
        if not self._closed.is_set():
            self._launch()

    def close(self, timeout: float = 2.0) -> None:
        """Stop every container, idle or busy (a busy one dies mid-invocation, as in a redeploy)."""
        self._closed.set()
        with self._lock:
            containers = list(self._containers)
        for container in containers:
            container.terminate()
        limit = time.monotonic() + timeout
        for container in containers:
            try:
                container.process.wait(timeout=max(0.0, limit - time.monotonic()))
            except subprocess.TimeoutExpired:
                container.process.kill()
                container.process.wait()
        # Idle containers belong to no thread: close their pipes here. Busy ones are
        # cleaned up by the thread running their invocation, which now sees a crash.
        while True:
            try:
                self._discard(self._idle.get_nowait())
            except queue.Empty:
                break

    def _discard(self, container: Container) -> None:
        container.kill()
        with self._lock:
            self._containers.discard(container)

    def _launch(self) -> None:
        threading.Thread(target=self._boot, name="container-boot", daemon=True).start()

    def _boot(self) -> None:
        """Start one container and put it in the pool, retrying with backoff if it fails."""
        backoff = 1.0
        while True:
            container: Container | None = None
            try:
                with self._lock:
                    if self._closed.is_set():
                        return
                    container = Container(
                        self._handler,
                        function_name=self._function_name,
                        output=self._output,
                        log_streams=self._log_streams,
                    )
                    self._containers.add(container)
                container.wait_ready()
            except (ContainerError, OSError) as exc:
                if container is not None:
                    self._discard(container)
                if self._closed.is_set():
                    return
                self._log(_start_failure(exc, backoff))
                if self._closed.wait(backoff):
                    return
                backoff = min(backoff * 2, 30.0)
                continue
            self.put_back(container)
            return


def _shipping(output: OutputFeed, ship: Callable[[str], None]) -> OutputFeed:
    """`output`, and each line shipped to the container's log stream too."""

    def feed(source: str, line: str) -> None:
        output(source, line)
        ship(line)

    return feed


def _start_failure(exc: BaseException, backoff: float) -> Entry:
    """The console line of a container that could not start: the error's last line, and
    the whole traceback (an import error in the tasks, usually) for --verbose and json."""
    detail = str(exc)
    traceback = detail if "Traceback (most recent call last)" in detail else ""
    message = f"a worker container failed to start (retrying in {backoff:g}s)"
    if not traceback:  # else the line ends with the traceback's last line
        message += f": {detail.strip().splitlines()[-1] if detail.strip() else type(exc).__name__}"
    return entry(
        "worker",
        message,
        level="ERROR",
        exception=traceback,
        location=traceback_location(traceback),
        outcome="failed",
        data={"retry_seconds": backoff},
    )
