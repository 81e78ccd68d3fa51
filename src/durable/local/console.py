"""The `durable dev` console: one line per invocation and per log record, from every process.

    worker processes ─ stdout+stderr pipe ─► reader thread ─┐
    API handler (in process) ─ Powertools stream ───────────┤
    moto's process ─ stdout+stderr pipe ────────────────────┼─► Console.feed / emit ─► stdout
    the stack itself (invocations, sweeps, state) ──────────┘        (one lock, one write a line)

Every line becomes an `Entry` first: a Powertools JSON record is parsed (`parse_line`), a
line that is not JSON passes through as it is, with its source tag, and the stack's own lines
are made as entries. Then one of two renderings:

- text (the default): `time source level run_id task message key=value...`; the Lambda
  context Powertools adds (function_arn, cold_start, ...) is left out, a traceback shrinks to
  its last line and where it was raised (`--verbose` prints it whole), EMF metric blobs are
  not printed (they are for CloudWatch), and colours only on a terminal without NO_COLOR;
- json (`--log-format json`): one object per line with everything the record held, plus
  `source`; the stack's own lines carry the same fields (`timestamp`, `level`, `message`,
  `run_id`, ...).

The parsing and rendering are pure functions; `Console` only adds the lock and the stream.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TextIO

from durable.runlogs.base import LAMBDA_CONTEXT_KEYS

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# Keys Powertools' Logger adds from the Lambda context: noise on a developer's console.
LAMBDA_NOISE = LAMBDA_CONTEXT_KEYS
# Keys a record's line shows in its own columns (or, for exceptions, at its end).
_COLUMNS = frozenset(
    {"timestamp", "level", "message", "run_id", "task_id", "exception", "exception_name"}
)
_LEVELS = {"WARNING": "WARN", "CRITICAL": "CRIT", "FATAL": "CRIT"}
_STAMPED = re.compile(r"^(\d\d:\d\d:\d\d) (\w+) +(.*)$")
# A single value longer than this is cut in the text form (json keeps it whole).
MAX_VALUE_CHARS = 160
# A line longer than this is passed on in pieces rather than buffered without end.
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the console, before it is rendered as text or JSON.

    `fields` are shown as key=value in text and kept in JSON; `data` is kept in JSON only
    (facts the message already says, the Lambda context). `exception` is a full traceback.
    `outcome` colours an invocation's line; `metrics` marks an EMF blob (JSON only); `raw`
    a line that was not a record (printed as it came).
    """

    time: datetime
    source: str
    message: str
    level: str = "INFO"
    run_id: str = ""
    task_id: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    exception: str = ""
    location: str = ""
    outcome: Literal["", "ok", "failed"] = ""
    metrics: bool = False
    raw: bool = False


def entry(source: str, message: str, **keys: Any) -> Entry:
    """An entry of the stack's own, stamped now (`keys` are Entry's other fields)."""
    return Entry(time=datetime.now().astimezone(), source=source, message=message, **keys)


# -- parsing ----------------------------------------------------------------------------


def parse_line(line: str, source: str, *, received: datetime | None = None) -> Entry:
    """The entry of one output line of `source` (a Powertools record, EMF, or plain text)."""
    received = received or datetime.now().astimezone()
    text = line.rstrip("\r\n")
    record: Any = None
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except ValueError:
            record = None
    if not isinstance(record, dict):
        # Lines that already start with their tag (moto's warnings) lose it: it is a column.
        if text.startswith(source + " "):
            text = text[len(source) :].lstrip()
        return Entry(time=received, source=source, message=text, level="", raw=True)
    if "_aws" in record:
        return Entry(time=received, source=source, message="", level="", data=record, metrics=True)
    return _from_record(record, source, received)


def _from_record(record: dict[str, Any], source: str, received: datetime) -> Entry:
    fields: dict[str, Any] = {}
    data: dict[str, Any] = {}
    for key, value in record.items():
        if key in _COLUMNS:
            continue
        (data if key in LAMBDA_NOISE or key == "stack_trace" else fields)[key] = value
    exception = str(record.get("exception") or "")
    location = _frame_location(record.get("stack_trace")) or (
        traceback_location(exception) if exception else ""
    )
    return Entry(
        time=_timestamp(record.get("timestamp"), received),
        source=source,
        message=str(record.get("message", "")),
        level=str(record.get("level") or "INFO").upper(),
        run_id=str(record.get("run_id") or ""),
        task_id=str(record.get("task_id") or ""),
        fields=fields,
        data=data,
        exception=exception,
        location=location or str(record.get("location") or ""),
    )


def _timestamp(value: Any, received: datetime) -> datetime:
    """Powertools' `2026-11-30 02:46:48,566+0000` (or epoch milliseconds), in local time."""
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value / 1000).astimezone()
        if isinstance(value, str):
            return datetime.strptime(value, "%Y-%m-%d %H:%M:%S,%f%z").astimezone()
    except (ValueError, OverflowError, OSError):
        pass
    return received


def _frame_location(stack_trace: Any) -> str:
    """file:line of the innermost frame of Powertools' structured `stack_trace`."""
    if not isinstance(stack_trace, dict):
        return ""
    frames = stack_trace.get("frames")
    if not isinstance(frames, list) or not frames or not isinstance(frames[-1], dict):
        return ""
    last = frames[-1]
    return f"{short_path(str(last.get('file', '?')))}:{last.get('line', '?')}"


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')


def traceback_location(text: str) -> str:
    """file:line of the innermost frame of a formatted traceback ('' if there is none)."""
    location = ""
    for line in text.splitlines():
        match = _FRAME.match(line)
        if match:
            location = f"{short_path(match['file'])}:{match['line']}"
    return location


def traceback_summary(text: str) -> str:
    """The last line of a traceback: the exception, as `Type: message`."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def short_path(path: str) -> str:
    """A source path as a reader wants it: relative to the working directory or the
    site-packages it is in."""
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            return path.rsplit(marker, 1)[1]
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


# -- rendering ----------------------------------------------------------------------------

_RESET = "\x1b[0m"
_LEVEL_COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARN": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRIT": "\x1b[1;31m",
}
_SOURCE_COLOURS = {
    "api": "\x1b[36m",
    "worker": "\x1b[35m",
    "sweeper": "\x1b[34m",
    "moto": "\x1b[2m",
    "state": "\x1b[34m",
}
_OUTCOME_COLOURS = {"ok": "\x1b[32m", "failed": "\x1b[31m"}
_DIM = "\x1b[2m"


def render_text(item: Entry, *, colour: bool = False, verbose: bool = False) -> str | None:
    """The text line(s) of an entry; None for what text mode does not print (EMF)."""
    if item.metrics:
        return None

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if colour and code and text else text

    level = _LEVELS.get(item.level, item.level)
    parts = [
        paint(_DIM, item.time.strftime("%H:%M:%S")),
        paint(_SOURCE_COLOURS.get(item.source, ""), f"{item.source:<7}"),
        paint(_LEVEL_COLOURS.get(level, ""), f"{level:<5}"),
    ]
    if item.run_id:
        parts.append(item.run_id)
    if item.task_id:
        parts.append(paint(_DIM, item.task_id))
    message = item.message
    if item.outcome == "ok":
        message = re.sub(r"\bok\b", paint(_OUTCOME_COLOURS["ok"], "ok"), message, count=1)
    elif item.outcome == "failed":
        message = paint(_OUTCOME_COLOURS["failed"], message)
    parts.append(message)
    parts.extend(f"{key}={_value(value, verbose)}" for key, value in item.fields.items())
    if item.exception:
        parts.append(paint(_LEVEL_COLOURS["ERROR"], f"| {traceback_summary(item.exception)}"))
    show_location = item.exception or verbose or level == "DEBUG"
    if item.location and show_location:
        parts.append(paint(_DIM, f"at {item.location}"))
    line = " ".join(part for part in parts if part)
    if verbose and item.exception:
        indented = "\n".join("    " + row for row in item.exception.rstrip().splitlines())
        line = f"{line}\n{indented}"
    return line


def _value(value: Any, verbose: bool) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"'=" for c in value):
        text = value
    else:
        text = json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)
    if not verbose and len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def render_json(item: Entry) -> str:
    """One JSON object: the record's own keys, with `timestamp` in ISO 8601 and `source`."""
    if item.metrics:
        return json.dumps({"source": item.source, **item.data}, default=str)
    body: dict[str, Any] = {
        "timestamp": item.time.isoformat(timespec="milliseconds"),
        "source": item.source,
    }
    if item.level:
        body["level"] = item.level
    body["message"] = item.message
    if item.run_id:
        body["run_id"] = item.run_id
    if item.task_id:
        body["task_id"] = item.task_id
    body.update(item.fields)
    body.update(item.data)
    if item.location:
        body["location"] = item.location
    if item.exception:
        body["exception"] = item.exception
    return json.dumps(body, default=str, ensure_ascii=False)


def colour_wanted(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colours on a terminal, unless NO_COLOR (https://no-color.org) or TERM=dumb says no."""
    environ = os.environ if environ is None else environ
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- the console --------------------------------------------------------------------------


class Console:
    """Renders entries onto one stream, a whole line per write, from any thread."""

    def __init__(
        self,
        log_format: LogFormat = "text",
        *,
        stream: TextIO | None = None,
        colour: bool | None = None,
        verbose: bool = False,
    ) -> None:
        if log_format not in LOG_FORMATS:
            raise ValueError(f"log format must be one of {LOG_FORMATS}, not {log_format!r}")
        self.log_format = log_format
        self._stream = stream or sys.stdout
        self.colour = colour_wanted(self._stream) if colour is None else colour
        self.verbose = verbose
        self._lock = threading.Lock()

    def emit(self, item: Entry | str) -> None:
        """Print one entry. A plain string (`HH:MM:SS source message`, or only a message)
        is taken as a line of the stack's own."""
        if isinstance(item, str):
            item = _stack_line(item)
        if self.log_format == "json":
            text: str | None = render_json(item)
        else:
            text = render_text(item, colour=self.colour, verbose=self.verbose)
        if text is None:
            return
        with self._lock:
            try:
                self._stream.write(text + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass  # the terminal went away: nothing to tell it

    __call__ = emit

    def feed(self, source: str, line: str) -> None:
        """One line a process of `source` printed; blank lines are dropped."""
        if line.strip():
            self.emit(parse_line(line, source))

    def writer(self, source: Callable[[], str]) -> LineWriter:
        """A text stream whose lines are fed to this console (for a `logging` handler)."""
        return LineWriter(self, source)


def _stack_line(text: str) -> Entry:
    match = _STAMPED.match(text)
    if match:
        return entry(match[2], match[3])
    return entry("dev", text)


def in_process_source() -> str:
    """The source tag of a record logged in the dev process itself: the sweeper loop's
    thread, or else an API request's."""
    return "sweeper" if threading.current_thread().name == "sweeper" else "api"


class LineWriter(io.TextIOBase):
    """A file-like object that feeds whole lines to a console, tagged by `source()` (called
    in the writing thread: the API's threads and the sweeper's share one logger)."""

    def __init__(self, console: Console, source: Callable[[], str]) -> None:
        super().__init__()
        self._console = console
        self._source = source
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
        source = self._source()
        for line in lines:
            self._console.feed(source, line)
        return len(text)

    def flush(self) -> None:
        pass


class OutputReader:
    """Reads a process's output pipe to its end and feeds each line to a console.

    The pipe is always drained, whether the console prints a line or not, so a process
    never blocks on a full pipe; what a process wrote before it crashed or was killed is
    still in the pipe and read up to the EOF, and a last line without its newline is fed too.
    """

    def __init__(self, fd: int, source: str, feed: Callable[[str, str], None]) -> None:
        self._fd = fd
        self._source = source
        self._feed = feed
        self._waiting = threading.Event()  # blocked in read with nothing pending
        self._thread = threading.Thread(target=self._run, name=f"{source}-output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending = b""
        try:
            while True:
                self._waiting.set()
                chunk = os.read(self._fd, 65536)
                self._waiting.clear()
                if not chunk:
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                if len(pending) > MAX_LINE_BYTES:
                    lines.append(pending)
                    pending = b""
                for line in lines:
                    self._feed(self._source, line.decode("utf-8", "replace"))
        except OSError:
            pass
        finally:
            if pending:
                self._feed(self._source, pending.decode("utf-8", "replace"))
            os.close(self._fd)

    def settle(self, timeout: float) -> None:
        """Wait (up to `timeout`) until what the process wrote so far has been fed: so that
        an invocation's log lines come before the line saying how it ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._thread.is_alive():
            if self._waiting.is_set():
                try:
                    readable, _, _ = select.select([self._fd], [], [], 0)
                except (OSError, ValueError):
                    return  # closed at the EOF meanwhile
                if not readable:
                    return
            time.sleep(0.002)

    def join(self, timeout: float) -> None:
        """Wait for the EOF (the process and its output are gone)."""
        self._thread.join(timeout)
