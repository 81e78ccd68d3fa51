"""A `durable dev` subprocess for end-to-end tests: start it, read its output, stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TASKS = "tasks,tests.e2e.e2e_tasks"
INVOCATION_TIMEOUT = 4.0  # seconds; SQS redelivers a dead invocation's message 2 s later
READY_PREFIX = "durable dev is running at "
# Where every dev server of this test session keeps the example fakes' files, so that a
# test reads them from its own process (`fakes_of_the_dev_server`).
FAKES_DIR = Path(tempfile.gettempdir()) / f"durable-e2e-fakes-{os.getpid()}"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


def clean_env() -> dict[str, str]:
    """This environment without AWS or durable settings: the CLI must choose HTTP."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "DURABLE_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["DURABLE_FAKES_DIR"] = str(FAKES_DIR)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class DevServer:
    """A running `durable dev` subprocess and everything it has printed."""

    process: subprocess.Popen[str]
    url: str = ""
    moto_url: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def saw(self, text: str, timeout: float = 5.0) -> bool:
        """Whether `text` appears in the output within `timeout` (log lines lag the API)."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal the server and wait for it; kills it (and fails) if it does not stop."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"durable dev did not stop within {timeout}s:\n{self.output[-4000:]}")


def start_dev_server(
    *extra: str,
    timeout: float = 90,
    tasks: str = TASKS,
    cwd: Path = ROOT,
    port: int | None = None,
    own_group: bool = False,
) -> DevServer:
    """Start `durable dev` on a free port and wait until it says it is ready.

    It keeps no state (`--ephemeral`) unless `extra` names a `--state-dir`; with
    `own_group`, it and every process it starts form a process group (to kill at once).
    """
    if "--state-dir" not in extra:
        extra = ("--ephemeral", *extra)
    command = [
        sys.executable,
        "-m",
        "durable.cli",
        "dev",
        "--port",
        str(port or free_port()),
        "--tasks",
        tasks,
        "--invocation-timeout",
        str(INVOCATION_TIMEOUT),
        *extra,
    ]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=own_group,
    )
    server = DevServer(process)
    ready = threading.Event()

    def read() -> None:
        # Keep reading to the end: a full pipe would block the server's prints.
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line)
            if line.strip().startswith("moto ") and not server.moto_url:
                server.moto_url = line.split()[1]
            if line.startswith(READY_PREFIX):
                server.url = line[len(READY_PREFIX) :].strip()
                ready.set()
        ready.set()

    threading.Thread(target=read, name="dev-output", daemon=True).start()
    if not ready.wait(timeout) or not server.url:
        server.stop(signal.SIGKILL)
        pytest.fail(f"durable dev did not start:\n{server.output[-4000:]}")
    return server
