"""What a run is doing, through the standard `logging` module: JSON lines in the store, readable
(or JSON) lines on the console, a progress bar on an interactive terminal only.

Every event is a log record of the logger `carrier_sla.run` (level INFO; `warning` events at
WARNING) carrying the run id, the stage and the event's figures (rows, seconds ...). Handlers:
- the store's log, STORE/runs/RUN_ID/log.jsonl: one JSON object per event (JsonFormatter), from
  open() to close();
- the console (stderr; none with --quiet): one line per stage, "[  12.3s] stage: message", or
  with console_format="json" (`--log-format json`) the same JSON objects as the store's log.
The records also propagate to the root logger, so a program that configures logging (a notebook
calling carrier_sla.engine.pipeline.run) sees them; the CLI configures none.

The progress bar (what is counted: files read, partitions, measures; records and records/s) is
drawn only when the console is a terminal, and never in JSON mode.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

LOGGER = "carrier_sla.run"
_logger = logging.getLogger(LOGGER)
_logger.setLevel(logging.INFO)


def event_record(record: logging.LogRecord) -> dict[str, Any]:
    """The JSON object of one event: time, run_id, stage, then its figures."""
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    out = {"time": stamp, "run_id": getattr(record, "run_id", ""), "stage": getattr(record, "stage", "")}
    if record.levelno >= logging.WARNING:
        out["level"] = record.levelname.lower()
        out["message"] = record.getMessage()
    return out | getattr(record, "figures", {})


class JsonFormatter(logging.Formatter):
    """One event as one line of JSON (event_record)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(event_record(record), default=str)


class ConsoleFormatter(logging.Formatter):
    """One event as "[elapsed s] stage: message", the elapsed time counted from the RunLog's start."""

    def __init__(self, log: RunLog):
        super().__init__()
        self.log = weakref.ref(log)  # handlers must not keep their RunLog alive (its __del__ removes them)

    def format(self, record: logging.LogRecord) -> str:
        log = self.log()
        elapsed = time.perf_counter() - log.started if log is not None else 0.0
        return f"[{elapsed:7.1f}s] {getattr(record, 'stage', '')}: {record.getMessage()}"


class _Mine(logging.Filter):
    """Lets through only the records of one RunLog (two runs in one process never share handlers)."""

    def __init__(self, log: RunLog, needs_message: bool = False):
        super().__init__()
        self.log = weakref.ref(log)
        self.needs_message = needs_message

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "runlog", None) is self.log() and (record.getMessage() != "" or not self.needs_message)


class _ConsoleHandler(logging.StreamHandler):
    """A StreamHandler that clears the progress bar before it writes a line."""

    def __init__(self, log: RunLog, stream: TextIO):
        super().__init__(stream)
        self.log = weakref.ref(log)

    def emit(self, record: logging.LogRecord) -> None:
        log = self.log()
        if log is not None:
            log.clear_bar()
        super().emit(record)


class RunLog:
    def __init__(self, console: TextIO | None = None, interactive: bool = False, console_format: str = "text"):
        if console_format not in ("text", "json"):
            raise ValueError(f"console_format {console_format!r}: text or json")
        self.console = console
        self.interactive = interactive and console is not None and console_format == "text"
        self.run_id = ""
        self.started = time.perf_counter()
        self._file: logging.Handler | None = None
        self._bar = False
        self._console: logging.Handler | None = None
        if console is not None:
            self._console = _ConsoleHandler(self, console)
            json_lines = console_format == "json"
            self._console.setFormatter(JsonFormatter() if json_lines else ConsoleFormatter(self))
            self._console.addFilter(_Mine(self, needs_message=not json_lines))  # text: events with a message
            _logger.addHandler(self._console)

    def open(self, path: Path, run_id: str) -> None:
        """Start writing JSON lines to `path` (the run's folder in the store)."""
        self.run_id = run_id
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        handler.setFormatter(JsonFormatter())
        handler.addFilter(_Mine(self))
        _logger.addHandler(handler)
        self._file = handler
        self.started = time.perf_counter()

    def event(self, stage: str, message: str = "", **figures: Any) -> None:
        """Log one event of `stage` (WARNING for stage "warning", INFO otherwise) with its figures."""
        level = logging.WARNING if stage == "warning" else logging.INFO
        kept = {k: v for k, v in figures.items() if v is not None}
        extra = {"runlog": self, "run_id": self.run_id, "stage": stage, "figures": kept}
        _logger.log(level, "%s", message, extra=extra)

    def progress(self, done: int, total: int, records: int | None = None, *, what: str = "measures") -> None:
        """Redraw the progress bar: `what` done of total (files read, partitions, measures), records and records/s."""
        if not self.interactive or self.console is None:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        width = 30
        filled = int(width * done / max(total, 1))
        bar = "#" * filled + "-" * (width - filled)
        tail = f", {records:,} records, {records / elapsed:,.0f} records/s" if records is not None else ""
        self.console.write(f"\r\033[K[{bar}] {done}/{total} {what}{tail}")
        self.console.flush()
        self._bar = True

    def clear_bar(self) -> None:
        if self._bar and self.console is not None:
            self.console.write("\r\033[K")
            self.console.flush()
            self._bar = False

    def close(self) -> None:
        """Stop writing to the store's log (the console stays, for the next run of a range)."""
        self.clear_bar()
        if self._file is not None:
            _logger.removeHandler(self._file)
            self._file.close()
            self._file = None

    def detach(self) -> None:
        """Remove the console handler too (the CLI, once its runs are done)."""
        self.close()
        if self._console is not None:
            _logger.removeHandler(self._console)
            self._console = None

    def __del__(self) -> None:  # a RunLog dropped without detach() leaves no handler behind
        with contextlib.suppress(Exception):  # at interpreter shutdown there is nothing left to clean
            self.detach()
