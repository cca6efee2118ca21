"""The portal's audit log: one JSON line per page viewed or file downloaded, and per login.

STORE/portal/access.jsonl, beside runs/ and current (never inside a run's view, which is never
modified after its publication): `carrier-sla verify`, runs and publication look only at
runs/, current and the table links, so the portal's folder is none of theirs. Each line:
{"at": ISO time UTC, "user", "role", "carrier" (the user's), "event" (view, download, login,
login_failed, login_throttled, logout, denied), "path", "status", "address", and what was seen:
"subject_carrier", "period", "run_id", "detail"}. Lines are appended under a lock with one write
each (O_APPEND), so concurrent requests never interleave within a line.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FOLDER = "portal"
FILE = "access.jsonl"


class AccessLog:
    def __init__(self, store: Path | str):
        self.path = Path(store) / FOLDER / FILE
        self._lock = threading.Lock()

    def write(self, event: str, **fields: Any) -> None:
        entry = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event}
        entry |= {k: v for k, v in fields.items() if v is not None}
        line = (json.dumps(entry, sort_keys=False, default=str) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        """Every line, oldest first (for tests and for people reading the log)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
