"""The dev stack's moto server in its own process (`python -m durable.local.moto_server`).

moto prints one JSON line once it serves (its port, what it restored from the state
directory) or why it cannot; whatever it prints before that line or after it (warnings)
goes to the console, so its pipe never fills. It watches its stdin and exits when the
process that started it does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from durable.local.console import Console


class MotoStartError(Exception):
    """moto's process did not start serving; the message says why."""


class MotoProcess:
    """Starts moto (`start()` answers its ready line) and stops it (safe after a failed start)."""

    def __init__(self, host: str, port: int, state_dir: Path | None, console: Console) -> None:
        self.host = host
        self.port = port  # 0: any free port
        self.state_dir = state_dir  # None: keep nothing
        self.console = console
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> dict[str, Any]:
        """Start moto and wait for its ready line: `{"port": ..., "restored_records": ...}`."""
        command = [
            sys.executable,
            "-m",
            "durable.local.moto_server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--watch-stdin",
        ]
        if self.state_dir is not None:
            command += ["--state-dir", str(self.state_dir)]
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._process = process
        assert process.stdout is not None
        line = process.stdout.readline()  # one JSON line once it serves (or why it cannot)
        while line and not line.startswith("{"):  # a warning printed before it
            self.console.feed("moto", line)
            line = process.stdout.readline()
        try:
            ready: dict[str, Any] = json.loads(line)
        except ValueError:
            ready = {}
        if "port" not in ready:
            process.wait(10)
            raise MotoStartError(
                ready.get("error")
                or f"moto did not start (exit code {process.returncode}); see the log above"
            )
        threading.Thread(
            target=_drain, args=(process.stdout, self.console), name="moto-output", daemon=True
        ).start()
        return ready

    def stop(self) -> None:
        moto = self._process
        if moto is None:
            return
        if moto.poll() is None:
            moto.terminate()
            try:
                moto.wait(10)
            except subprocess.TimeoutExpired:
                moto.kill()
                moto.wait()
        if moto.stdin is not None:
            moto.stdin.close()


def _drain(stream: IO[str], console: Console) -> None:
    """Pass on what moto's process prints (warnings), so its pipe never fills."""
    for line in stream:
        console.feed("moto", line)
