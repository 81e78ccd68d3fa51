"""Throughput of `durable dev`: many clients trigger three-step runs over HTTP.

Run:  .venv/bin/python bench/dev_throughput.py [--runs 600] [--clients 16] [--no-keys]
      (or `make bench-dev`)

Starts `durable dev --ephemeral` as a subprocess on a free port (as tests/e2e do), then:

1. `--clients` threads, each with its own keep-alive HTTP connection, trigger `--runs`
   `process-order` runs (fetch, charge, update: three steps), each with an idempotency key
   unless `--no-keys`; every trigger's latency is recorded in the order the triggers went out.
   By default the clients send as fast as they are answered (a closed loop: with 16 clients
   a trigger's latency is then 16 / throughput, whatever one trigger costs); `--rate R`
   offers R triggers a second instead, as users would, so the latency is a trigger's own.
2. Once every trigger is answered, the runs are polled (oldest first, a few at a time, so the
   polling adds little load) until all have ended.
3. Prints: trigger throughput, trigger latency p50/p99, the first 100 triggers' p50 against
   the last 100's (a cost that grows with the table shows as a ratio well over 1), completed
   runs per second from the first trigger to the last completion, and, DBOS-style, the
   end-to-end latency of each run from the moment its trigger was sent to its `finished_at`.
   Also: AWS requests per run (moto's request counter, `durable.local.moto_patches`), CPU
   per run and per step of the worker processes and of the dev process, the sweeper's
   re-sends and the redeliveries the dev log reports.

Nothing here asserts: the targets are printed with PASS/FAIL beside the measured values.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
READY_PREFIX = "durable dev is running at "
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
TASK = "process-order"
STEPS_PER_RUN = 3
COUNTER_PATH = "/moto-api/durable/requests"

TARGET_RUNS_PER_SECOND = 20.0
TARGET_TRIGGER_P50_MS = 50.0
TARGET_DRIFT = 2.0


# -- the dev server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class DevProcess:
    process: subprocess.Popen[str]
    url: str = ""
    moto_url: str = ""
    lines: list[str] = field(default_factory=list)

    def count(self, pattern: str) -> int:
        return sum(1 for line in list(self.lines) if re.search(pattern, line))

    def total(self, pattern: str) -> int:
        found = 0
        for line in list(self.lines):
            match = re.search(pattern, line)
            if match:
                found += int(match.group(1))
        return found


def start_dev(concurrency: int, extra: list[str], fakes: str) -> DevProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DURABLE_"))}
    env["PYTHONUNBUFFERED"] = "1"
    # The example tasks' fakes keep every order in one JSON file: a fresh directory per run,
    # so one run's figures do not depend on how many orders earlier runs left there.
    env["DURABLE_FAKES_DIR"] = fakes
    command = [
        sys.executable,
        "-m",
        "durable.cli",
        "dev",
        "--ephemeral",
        "--port",
        str(free_port()),
        "--concurrency",
        str(concurrency),
        *extra,
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    dev = DevProcess(process)
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            dev.lines.append(line)
            if line.strip().startswith("moto ") and not dev.moto_url:
                dev.moto_url = line.split()[1]
            if line.startswith(READY_PREFIX):
                dev.url = line[len(READY_PREFIX) :].strip()
                ready.set()
        ready.set()

    threading.Thread(target=read, name="dev-output", daemon=True).start()
    if not ready.wait(120) or not dev.url:
        stop_dev(dev)
        sys.exit("durable dev did not start:\n" + "".join(dev.lines[-40:]))
    return dev


def stop_dev(dev: DevProcess) -> None:
    if dev.process.poll() is None:
        dev.process.send_signal(signal.SIGTERM)
    try:
        dev.process.wait(30)
    except subprocess.TimeoutExpired:
        dev.process.kill()
        dev.process.wait()


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def role(pid: int) -> str:
    """What one process of the stack is: "workers", "moto" or "dev" (the dev process)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "dev"
    if b"durable.local.invoke" in command:
        return "workers"
    if b"moto_server" in command:
        return "moto"
    return "dev"


def cpu_snapshot(dev: DevProcess) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of the dev process and of each of its children, by pid."""
    pids = [dev.process.pid, *child_pids(dev.process.pid)]
    return {pid: (role(pid), cpu_seconds(pid)) for pid in pids}


# -- HTTP --------------------------------------------------------------------------------


class Api:
    """One keep-alive connection to the dev API."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._connection = http.client.HTTPConnection(self._host, self._port, timeout=120)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else {}
        for attempt in range(3):
            try:
                self._connection.request(method, path, body=data, headers=headers)
                response = self._connection.getresponse()
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
            except (http.client.HTTPException, OSError):
                self._connection.close()
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._connection.close()


def moto_requests(moto_url: str) -> dict[str, int]:
    """moto's request counts by operation; empty when the counter is not installed."""
    try:
        api = Api(moto_url)
        status, body = api.request("GET", COUNTER_PATH)
        api.close()
    except (OSError, ValueError):
        return {}
    return dict(body) if status == 200 and isinstance(body, dict) else {}


# -- the workload ------------------------------------------------------------------------


@dataclass
class Trigger:
    index: int
    sent: float  # wall clock (time.time), for the end-to-end latency
    latency: float
    run_id: str
    status: int


def trigger_all(
    url: str, runs: int, clients: int, keys: bool, prefix: str, rate: float = 0.0
) -> list[Trigger]:
    """Trigger `runs` runs from `clients` threads: as fast as they answer, or, with `rate`,
    the i-th at start + i / rate (an offered load, as a stream of users would make)."""
    results: list[Trigger | None] = [None] * runs
    begin = time.perf_counter()
    counter = iter(range(runs))
    lock = threading.Lock()
    errors: list[str] = []

    def client() -> None:
        api = Api(url)
        try:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                if rate > 0:
                    pause = begin + index / rate - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                body: dict[str, Any] = {"payload": {"order_id": f"{prefix}-{index}"}}
                if keys:
                    body["idempotency_key"] = f"{prefix}-{index}"
                sent = time.time()
                started = time.perf_counter()
                status, answer = api.request("POST", f"/tasks/{TASK}/runs", body)
                latency = time.perf_counter() - started
                if status >= 300 or not isinstance(answer, dict):
                    errors.append(f"{status} {answer}")
                    continue
                results[index] = Trigger(index, sent, latency, answer["run_id"], status)
        finally:
            api.close()

    threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        print(f"{len(errors)} trigger(s) failed, e.g. {errors[0]}", file=sys.stderr)
    return [result for result in results if result is not None]


def wait_all(url: str, triggers: list[Trigger], timeout: float) -> dict[str, dict[str, Any]]:
    """Poll the runs, oldest first, until every one has ended; their last state by run id."""
    api = Api(url)
    pending = [trigger.run_id for trigger in sorted(triggers, key=lambda t: t.sent)]
    done: dict[str, dict[str, Any]] = {}
    limit = time.monotonic() + timeout
    try:
        while pending and time.monotonic() < limit:
            still: list[str] = []
            unfinished = 0
            for run_id in pending:
                if unfinished >= 4:  # runs end roughly in order: look ahead a little only
                    still.append(run_id)
                    continue
                status, run = api.request("GET", f"/runs/{run_id}")
                if status == 200 and run["status"] in TERMINAL:
                    done[run_id] = run
                else:
                    unfinished += 1
                    still.append(run_id)
            pending = still
            if pending:
                time.sleep(0.25)
    finally:
        api.close()
    if pending:
        print(f"{len(pending)} run(s) had not ended after {timeout:.0f}s", file=sys.stderr)
    return done


# -- figures -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def git_revision() -> str:
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{revision}{' (with uncommitted changes)' if dirty else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--keys",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="an idempotency key on every trigger (default: yes)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered load: triggers per second in all (default 0: as fast as they answer)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="dev worker processes (4)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (900 s)")
    parser.add_argument(
        "--dev-arg", action="append", default=[], help="one more argument for `durable dev`"
    )
    args = parser.parse_args(argv)
    command = (
        f".venv/bin/python bench/dev_throughput.py --runs {args.runs} --clients {args.clients} "
        f"--{'' if args.keys else 'no-'}keys --concurrency {args.concurrency}"
        + (f" --rate {args.rate:g}" if args.rate else "")
        + "".join(f" --dev-arg={value}" for value in args.dev_arg)
    )
    print(f"command:  {command}")
    print(
        f"machine:  {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print(f"revision: {git_revision()}")

    # A SIGTERM (`timeout`, Ctrl-C's cousin) unwinds through the `finally` below, so the
    # dev server and its worker processes are stopped, never left behind.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="durable-bench-fakes-") as fakes:
        dev = start_dev(args.concurrency, ["--quiet", *args.dev_arg], fakes)
        try:
            return measure(dev, args)
        finally:
            stop_dev(dev)


def measure(dev: DevProcess, args: argparse.Namespace) -> int:
    prefix = f"bench-{int(time.time())}"
    requests_before = moto_requests(dev.moto_url)
    cpu_before = cpu_snapshot(dev)
    sweeps_before = dev.total(r"sweeper .*re-enqueued (\d+)")

    started = time.time()
    triggers = trigger_all(dev.url, args.runs, args.clients, args.keys, prefix, args.rate)
    triggered = time.time()
    runs = wait_all(dev.url, triggers, args.timeout)
    cpu_after = cpu_snapshot(dev)
    requests_after = moto_requests(dev.moto_url)
    time.sleep(0.5)  # the last log lines
    sweeps = dev.total(r"sweeper .*re-enqueued (\d+)") - sweeps_before
    redeliveries = dev.count(r"delivery #\d+")

    # -- triggers
    latencies = [t.latency * 1000 for t in sorted(triggers, key=lambda t: t.sent)]
    window = min(100, len(latencies))
    first = statistics.median(latencies[:window]) if latencies else float("nan")
    last = statistics.median(latencies[-window:]) if latencies else float("nan")
    drift = last / first if first else float("nan")
    trigger_rate = len(triggers) / (triggered - started)
    p50 = percentile(latencies, 50)
    print()
    print(
        f"{TASK}: {len(triggers)} runs of {STEPS_PER_RUN} steps, {args.clients} clients, ", end=""
    )
    print(
        f"idempotency keys {'on' if args.keys else 'off'}, {args.concurrency} worker processes, "
        + (f"offered {args.rate:g} triggers/s" if args.rate else "closed loop (no pacing)")
    )
    print(f"triggers       {trigger_rate:8.1f} /s   ({triggered - started:.1f} s for all)")
    print(
        f"trigger latency p50 {p50:7.1f} ms  p99 {percentile(latencies, 99):7.1f} ms  "
        f"(target p50 <= {TARGET_TRIGGER_P50_MS:g} ms: {verdict(p50 <= TARGET_TRIGGER_P50_MS)})"
    )
    print(
        f"first {window} p50 {first:7.1f} ms  last {window} p50 {last:7.1f} ms  "
        f"ratio {drift:.2f}  (target <= {TARGET_DRIFT:g}: {verdict(drift <= TARGET_DRIFT)})"
    )

    # -- runs, end to end (DBOS-style: from the trigger sent to the run finished)
    sent_at = {t.run_id: t.sent for t in triggers}
    completed = [run for run in runs.values() if run["status"] == "COMPLETED"]
    finished = {
        run["run_id"]: datetime.fromisoformat(run["finished_at"]).timestamp()
        for run in runs.values()
        if run.get("finished_at")
    }
    end_to_end = [(finished[r] - sent_at[r]) * 1000 for r in finished if r in sent_at]
    last_finish = max(finished.values(), default=started)
    elapsed = last_finish - started
    rate = len(completed) / elapsed if elapsed > 0 else float("nan")
    others = {run["status"] for run in runs.values()} - {"COMPLETED"}
    print(
        f"completed      {len(completed)}/{len(triggers)} in {elapsed:.1f} s: "
        f"{rate:.1f} runs/s  (target >= {TARGET_RUNS_PER_SECOND:g}: "
        f"{verdict(rate >= TARGET_RUNS_PER_SECOND and len(completed) == args.runs)})"
        + (f"  other statuses: {sorted(others)}" if others else "")
    )
    print(
        f"end to end     p50 {percentile(end_to_end, 50):7.0f} ms  "
        f"p99 {percentile(end_to_end, 99):7.0f} ms  (trigger sent -> run finished)"
    )

    # -- cost
    if requests_after:
        delta = {
            name: requests_after.get(name, 0) - requests_before.get(name, 0)
            for name in requests_after
        }
        delta = {name: count for name, count in delta.items() if count > 0}
        total = sum(delta.values())
        per_run = total / max(1, len(triggers))
        print(f"AWS requests   {per_run:.2f} per run ({total} in all; polling included):")
        for name, count in sorted(delta.items(), key=lambda item: -item[1]):
            print(f"    {name:40s} {count:7d}  {count / max(1, len(triggers)):6.2f}/run")
    else:
        print("AWS requests   (moto's request counter is not installed)")
    cpu = {"workers": 0.0, "moto": 0.0, "dev": 0.0}
    for pid, (name, seconds) in cpu_after.items():
        cpu[name] += seconds - cpu_before.get(pid, (name, 0.0))[1]
    n = max(1, len(completed))
    print(
        f"CPU            workers {cpu['workers']:.1f} s ({cpu['workers'] / n * 1000:.1f} ms/run, "
        f"{cpu['workers'] / n / STEPS_PER_RUN * 1000:.1f} ms/step); "
        f"dev process (gateway, poller, sweeper{'' if cpu['moto'] else ', moto'}) "
        f"{cpu['dev']:.1f} s ({cpu['dev'] / n * 1000:.1f} ms/run)"
        + (
            f"; moto server {cpu['moto']:.1f} s ({cpu['moto'] / n * 1000:.1f} ms/run)"
            if cpu["moto"]
            else ""
        )
    )
    print(f"sweeper        re-sent {sweeps} run(s); {redeliveries} redelivered message(s)")
    return 0 if len(completed) == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
