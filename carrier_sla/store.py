"""The Parquet audit store: staged writes, publication per period, manifests.

Layout (Hive-partitioned, zstd):
    STORE/results/period=YYYY-MM/part-0.parquet
    STORE/records/period=YYYY-MM/measure=ID/part-0.parquet
    STORE/rejects/period=YYYY-MM/part-0.parquet
    STORE/runs/RUN_ID/manifest.json          (and rejects.parquet of a run that failed)
A run writes everything under STORE/.staging/RUN_ID first; only when every table is
written does it swap the period's folders into place, so a run that fails part-way
leaves the previously published outputs of that period as they were.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from carrier_sla.errors import StoreBusy, StoreError

TABLES = ("results", "records", "rejects")
REMEDY_TABLES = ("remedies", "escalation", "statements")
OUTPUT_SCHEMA_VERSION = "1"


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def write_parquet(path: Path, table: pa.Table, metadata: dict[str, str]) -> int:
    """Write one zstd Parquet file carrying the key-value metadata; return its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = table.schema.metadata or {}
    merged = {**existing, **{k.encode(): str(v).encode() for k, v in metadata.items()}}
    # dictionary pages only where the column is dictionary-typed: trying them on unique ids
    # and row numbers costs time and gains nothing
    dictionary = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    pq.write_table(
        table.replace_schema_metadata(merged),
        path,
        compression="zstd",
        row_group_size=1 << 20,
        use_dictionary=dictionary,
    )
    return table.num_rows


class StoreLock:
    """The store's single-writer lock: an exclusive flock on STORE/.lock.

    The kernel releases a flock when its holder dies, SIGKILL included, so a lock left by a
    killed run is never stale: the next run simply takes it, then clears what the killed run
    left in .staging/ and .trash/ (nothing there was ever published).
    """

    def __init__(self, store: Path, run_id: str):
        self.store = Path(store)
        self.run_id = run_id
        self._handle: Any = None

    def __enter__(self) -> StoreLock:
        try:
            self.store.mkdir(parents=True, exist_ok=True)
            handle = (self.store / ".lock").open("a+")
        except OSError as exc:
            raise StoreError(f"cannot use {self.store} as a store: {exc}") from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise StoreBusy(str(self.store), holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"run {self.run_id}, pid {os.getpid()}, since {datetime.now(UTC).isoformat(timespec='seconds')}\n")
        handle.flush()
        self._handle = handle
        for leftover in (".staging", ".trash"):
            shutil.rmtree(self.store / leftover, ignore_errors=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


class Staging:
    """A run's private folder in the store, published period by period."""

    def __init__(self, store: Path, run_id: str):
        self.store = Path(store)
        self.run_id = run_id
        self.root = self.store / ".staging" / run_id
        try:
            self.root.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise StoreError(f"cannot create the staging folder {self.root}: {exc}") from exc

    def path(self, table: str, period: str, *parts: str) -> Path:
        return self.root.joinpath(table, f"period={period}", *parts)

    def publish(self, period: str, tables: tuple[str, ...] = TABLES) -> None:
        """Swap the staged folders of a period into place (each swap is two renames)."""
        trash = self.store / ".trash" / self.run_id
        for table in tables:
            staged = self.path(table, period)
            if not staged.exists():
                continue
            target = self.store / table / f"period={period}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                (trash / table).mkdir(parents=True, exist_ok=True)
                os.replace(target, trash / table / target.name)
            os.replace(staged, target)
        shutil.rmtree(trash, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Writer:
    """Writes Parquet files on worker threads while the pipeline computes the next table
    (pyarrow releases the GIL while it encodes and compresses)."""

    def __init__(self, workers: int = 2):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="parquet-writer")
        self._jobs: list[tuple[str, Path, Future[int]]] = []

    def submit(self, name: str, path: Path, table: pa.Table, metadata: dict[str, str]) -> None:
        self._jobs.append((name, path, self._pool.submit(write_parquet, path, table, metadata)))

    def wait(self) -> list[tuple[str, int, Path]]:
        """(name, rows, path) of every file, once all are written; re-raises a failed write."""
        return [(name, job.result(), path) for name, path, job in self._jobs]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def write_manifest(store: Path, run_id: str, manifest: dict[str, Any]) -> Path:
    """Write runs/RUN_ID/manifest.json atomically (temp file + rename)."""
    folder = Path(store) / "runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, folder / "manifest.json")
    return folder / "manifest.json"


def read_table(store: Path, table: str, period: str) -> pa.Table:
    """Read one published table of a period (all its files)."""
    folder = Path(store) / table / f"period={period}"
    if not folder.exists():
        raise StoreError(f"{folder}: no published {table} for period {period}")
    import pyarrow.dataset as ds

    return ds.dataset(folder, format="parquet", partitioning="hive").to_table()


def published_periods(store: Path, table: str) -> list[str]:
    """The periods with a published `table`, in order."""
    folder = Path(store) / table
    if not folder.is_dir():
        return []
    return sorted(p.name.split("=", 1)[1] for p in folder.iterdir() if p.name.startswith("period=") and p.is_dir())
