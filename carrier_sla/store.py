"""The Parquet audit store: staged writes, publication per period, manifests.

Layout (Hive-partitioned, zstd):
    STORE/results/period=YYYY-MM/part-0.parquet
    STORE/records/period=YYYY-MM/measure=ID/part-N.parquet (one per partition)
    STORE/rejects/period=YYYY-MM/part-0.parquet
    STORE/remedies/, escalation/, statements/ (plans with remedies)
    STORE/runs/RUN_ID/manifest.json          (and rejects.parquet of a run that failed)
    STORE/runs/RUN_ID/view/                  every table of every period as that run published it
STORE/<table> is a link to current/<table>, and STORE/current a link to the view of the
latest successful run: publication swaps that one link (see Staging), so a run that fails
or is killed part-way leaves the published outputs as they were.
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
REMEDY_TABLES = ("remedies", "escalation", "statements", "adjustments")  # adjustments: carrier_sla.trueup
ALL_TABLES = TABLES + REMEDY_TABLES
CURRENT = "current"  # STORE/current -> runs/RUN_ID/view: the one pointer a publication swaps
VIEW = "view"
PROVENANCE = "provenance.json"
OUTPUT_SCHEMA_VERSION = "2"  # 2: links through current/, remedies tables, rejects.carrier_id


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def write_parquet(path: Path, table: pa.Table, metadata: dict[str, str]) -> int:
    """Write one zstd Parquet file carrying the key-value metadata; return its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = table.schema.metadata or {}
    merged = {**existing, **{k.encode(): str(v).encode() for k, v in metadata.items()}}
    # dictionary pages only where the column is dictionary-typed: trying them on unique ids
    # and row numbers costs time and gains nothing. Min/max statistics on the others only: on
    # a dictionary column they cost a quarter of the write, and every file holds all its
    # values anyway. Integers (row numbers) delta-encoded: smaller, and less for zstd to do.
    dictionary = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    plain = [f.name for f in table.schema if not pa.types.is_dictionary(f.type)]
    integers = {f.name: "DELTA_BINARY_PACKED" for f in table.schema if pa.types.is_integer(f.type)}
    pq.write_table(
        table.replace_schema_metadata(merged),
        path,
        compression="zstd",
        row_group_size=1 << 20,
        use_dictionary=dictionary,
        write_statistics=plain,
        column_encoding=integers or None,
    )
    return table.num_rows


class StoreLock:
    """The store's single-writer lock: an exclusive flock on STORE/.lock.

    The kernel releases a flock when its holder dies, SIGKILL included, so a lock left by a
    killed run is never stale: the next run simply takes it, then recovers the store (see
    recover): nothing a killed run wrote was ever published unless its pointer swap happened.
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
        recover(self.store, self.run_id)
        return self

    def __exit__(self, *exc_info: object) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def recover(store: Path, by_run: str) -> list[str]:
    """Clean up after runs that were killed, under the lock; returns the run ids recovered.

    A run's manifest says `running` until its outputs are written, `publishing` just before the
    pointer swap, then `completed` (or `failed`). A view that is not the current one, of a run
    still `running` or `publishing`, was never published: it is removed and the manifest marked
    `killed`. A `publishing` run whose view is current did publish: it is marked `completed`.
    Stray pointer links and the folders of earlier layouts (.staging, .trash) are removed.
    """
    store = Path(store)
    for leftover in (".staging", ".trash"):
        shutil.rmtree(store / leftover, ignore_errors=True)
    for stray in store.glob(f".{CURRENT}-*"):
        stray.unlink(missing_ok=True)
    current = (store / CURRENT).resolve() if (store / CURRENT).exists() else None
    recovered = []
    for run_dir in sorted((store / "runs").glob("*")) if (store / "runs").is_dir() else []:
        manifest_path = run_dir / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"run_id": run_dir.name}
        status = manifest.get("status", "running")
        if status not in ("running", "publishing"):
            continue
        if current is not None and (run_dir / VIEW).resolve() == current:
            manifest["status"], manifest["exit_code"] = "completed", 0
            manifest["note"] = f"published; its last manifest update was completed by run {by_run}"
        else:
            shutil.rmtree(run_dir / VIEW, ignore_errors=True)
            manifest["status"] = "killed"
            manifest["error"] = (
                f"the run stopped before publishing (killed?); its unpublished outputs were removed by run {by_run}"
            )
        write_manifest(store, run_dir.name, manifest)
        recovered.append(run_dir.name)
    return recovered


class Staging:
    """A run's view of the whole store, built under runs/RUN_ID/view and published in one step.

    The run writes its new tables there; publish() hard-links every other (table, period) folder
    of the current view into it (files are never modified, so links are safe and cost no space),
    writes provenance.json (the run that produced each table of each period), and then swaps the
    one pointer STORE/current to it with a single atomic rename. STORE/<table> are fixed links to
    current/<table>, so readers see the old view or the new one, never a mixture, and a run
    killed at any moment leaves the previous view published. Published views stay readable
    under runs/RUN_ID/view: the store's history.
    """

    def __init__(self, store: Path, run_id: str):
        self.store = Path(store)
        self.run_id = run_id
        self.root = self.store / "runs" / run_id / VIEW
        self.published = False
        try:
            self.root.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise StoreError(f"cannot create the run's view {self.root}: {exc}") from exc

    def path(self, table: str, period: str, *parts: str) -> Path:
        return self.root.joinpath(table, f"period={period}", *parts)

    def publish(self) -> None:
        """Link in what the run did not write, record provenance, swap STORE/current."""
        current = self.store / CURRENT
        written = [(t.name, p.name) for t in self.root.iterdir() if t.is_dir() for p in t.iterdir() if p.is_dir()]
        provenance: dict[str, dict[str, str]] = {}
        if current.exists():
            old = current.resolve()
            provenance = _read_provenance(old)
            for table_dir in sorted(p for p in old.iterdir() if p.is_dir()):
                for period_dir in sorted(p for p in table_dir.iterdir() if p.is_dir()):
                    target = self.root / table_dir.name / period_dir.name
                    if not target.exists():
                        _link_tree(period_dir, target)
        for table, period_dir_name in written:
            provenance.setdefault(table, {})[period_dir_name] = self.run_id
        for table in ALL_TABLES:
            (self.root / table).mkdir(exist_ok=True)
        (self.root / PROVENANCE).write_text(json.dumps(provenance, indent=1, sort_keys=True) + "\n")
        self._ensure_table_links()
        pointer = self.store / f".{CURRENT}-{self.run_id}"
        pointer.unlink(missing_ok=True)
        os.symlink(Path("runs") / self.run_id / VIEW, pointer)
        os.replace(pointer, current)  # the publication: one atomic rename
        self.published = True

    def _ensure_table_links(self) -> None:
        for table in ALL_TABLES:
            link = self.store / table
            if link.is_symlink():
                continue
            if link.exists():
                raise StoreError(
                    f"{link} is a folder (the layout of carrier_sla before 0.2): publish to a new store, "
                    "or move the old store away"
                )
            os.symlink(Path(CURRENT) / table, link)

    def discard(self) -> None:
        """Remove an unpublished view (a failed run); a published one is history and stays."""
        if not self.published:
            shutil.rmtree(self.root, ignore_errors=True)


def _link_tree(source: Path, target: Path) -> None:
    """Recreate `source`'s folders under `target`, hard-linking its files."""
    for folder, _, files in os.walk(source):
        dest = target / Path(folder).relative_to(source)
        dest.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.link(Path(folder) / name, dest / name)


def _read_provenance(view: Path) -> dict[str, dict[str, str]]:
    path = view / PROVENANCE
    return json.loads(path.read_text()) if path.exists() else {}


def current_provenance(store: Path) -> dict[str, dict[str, str]]:
    """{table: {"period=YYYY-MM": run id}} of the published view (empty before the first run)."""
    current = Path(store) / CURRENT
    return _read_provenance(current.resolve()) if current.exists() else {}


class Writer:
    """Writes Parquet files on worker threads while the pipeline computes the next table
    (pyarrow releases the GIL while it encodes and compresses)."""

    def __init__(self, workers: int = 2):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="parquet-writer")
        self._jobs: list[tuple[str, Path, Future[int]]] = []

    def submit(self, name: str, path: Path, table: pa.Table, metadata: dict[str, str]) -> None:
        self._jobs.append((name, path, self._pool.submit(write_parquet, path, table, metadata)))

    def settle(self, pending: int) -> None:
        """Wait until at most `pending` files are still to be written (bounds the tables held)."""
        for _, _, job in self._jobs[: max(len(self._jobs) - pending, 0)]:
            job.result()

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
