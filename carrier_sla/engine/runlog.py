"""What a run is doing: JSON lines in the store, readable lines on the console, a progress bar
on an interactive terminal only.

Every event goes to STORE/runs/RUN_ID/log.jsonl as one JSON object (time, run_id, stage and the
event's figures: rows, seconds ...). The console (stderr; nothing with --quiet) gets one line per
stage; the progress bar (records evaluated, records/s) is drawn only when the console is a terminal.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO


class RunLog:
    def __init__(self, console: TextIO | None = None, interactive: bool = False):
        self.console = console
        self.interactive = interactive and console is not None
        self.run_id = ""
        self._file: TextIO | None = None
        self._started = time.perf_counter()
        self._bar = False

    def open(self, path: Path, run_id: str) -> None:
        """Start writing JSON lines to `path` (the run's folder in the store)."""
        self.run_id = run_id
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._started = time.perf_counter()

    def event(self, stage: str, message: str = "", **figures: Any) -> None:
        record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "run_id": self.run_id, "stage": stage}
        record |= {k: v for k, v in figures.items() if v is not None}
        if self._file is not None:
            self._file.write(json.dumps(record, default=str) + "\n")
            self._file.flush()
        if self.console is not None and message:
            self._clear_bar()
            elapsed = time.perf_counter() - self._started
            print(f"[{elapsed:7.1f}s] {stage}: {message}", file=self.console, flush=True)

    def progress(self, done: int, total: int, records: int) -> None:
        """Redraw the progress bar: measures done of total, records evaluated, records/s."""
        if not self.interactive or self.console is None:
            return
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        width = 30
        filled = int(width * done / max(total, 1))
        bar = "#" * filled + "-" * (width - filled)
        self.console.write(
            f"\r[{bar}] {done}/{total} measures, {records:,} records, {records / elapsed:,.0f} records/s"
        )
        self.console.flush()
        self._bar = True

    def _clear_bar(self) -> None:
        if self._bar and self.console is not None:
            self.console.write("\r\033[K")
            self._bar = False

    def close(self) -> None:
        self._clear_bar()
        if self._file is not None:
            self._file.close()
            self._file = None
