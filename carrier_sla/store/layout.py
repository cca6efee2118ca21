"""The Parquet audit store: staged writes, publication per period, manifests.

Layout (Hive-partitioned, zstd):
    STORE/results/period=YYYY-MM/part-0.parquet
    STORE/records/period=YYYY-MM/measure_id=ID/part-N.parquet (one per partition)
    STORE/rejects/period=YYYY-MM/part-0.parquet
    STORE/remedies/, escalation/, statements/ (plans with remedies)
    STORE/runs/RUN_ID/manifest.json          (and rejects.parquet of a run that failed)
    STORE/runs/RUN_ID/view/                  every table of every period as that run published it
STORE/<table> is a link to current/<table>, and STORE/current a link to the view of the
latest successful run: publication swaps that one link (see Staging), so a run that fails
or is killed part-way leaves the published outputs as they were.

Partition columns (period, and measure_id under records) live in the path only, as Hive
readers expect; read_table gives them back as columns. The columns of every table are
carrier_sla.vocabulary's.

Readers resolve STORE/current once (view_root) and read under runs/RUN_ID/view, which is never
modified after its publication: a path through STORE/<table> is resolved again at every file
opened, so a reader listing a folder there while a run publishes could open files of two views.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
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

from carrier_sla.errors import StoreBusy, StoreDamaged, StoreError

TABLES = ("results", "records", "rejects")
REMEDY_TABLES = ("remedies", "escalation", "statements", "adjustments")  # adjustments: carrier_sla.engine.trueup
ALL_TABLES = TABLES + REMEDY_TABLES
CURRENT = "current"  # STORE/current -> runs/RUN_ID/view: the one pointer a publication swaps
VIEW = "view"
PROVENANCE = "provenance.json"
# 2: links through current/, remedies tables, rejects.carrier_id
# 3: carrier_sla.vocabulary: partition columns only in the path (no `period` in results, remedies,
#    adjustments), records/.../measure_id=ID, rejects' input_row and input_field, the aggregate's
#    carrier_id `_all`, integer counts, df, resamples and seeds, dimension columns typed as their fields
OUTPUT_SCHEMA_VERSION = "3"
SCHEMA_VERSION_KEY = b"carrier_sla.output_schema_version"


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def view_root(store: Path) -> Path:
    """The folder to read published tables under: the view STORE/current points at, resolved once
    (STORE/runs/RUN_ID/view, never modified after its publication), so every file a reader opens
    belongs to one publication. `store` itself when it is a view already, or holds no current view.
    """
    store = Path(store)
    try:
        return store / os.readlink(store / CURRENT)  # runs/RUN_ID/view (relative to the store)
    except OSError:  # no current view (nothing published), or `store` is a view: read it as it is
        return store


def store_of(view: Path) -> Path:
    """The store a view belongs to: STORE for STORE/runs/RUN_ID/view (and for STORE itself)."""
    view = Path(view)
    return view.parents[2] if view.name == VIEW and view.parent.parent.name == "runs" else view


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 (hex) and size in bytes of a file."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)  # hashlib releases the GIL on large chunks: writer threads hash in parallel
            size += len(chunk)
    return h.hexdigest(), size


def write_parquet(path: Path, table: pa.Table, metadata: dict[str, str]) -> int:
    """Write one zstd Parquet file carrying the key-value metadata; return its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = table.schema.metadata or {}
    merged = {**existing, **{k.encode(): str(v).encode() for k, v in metadata.items()}}
    merged[SCHEMA_VERSION_KEY] = OUTPUT_SCHEMA_VERSION.encode()  # every file the store writes says its version
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
        self.warnings: list[str] = []  # damaged runs the recovery skipped

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
        self._handle = handle
        try:
            handle.seek(0)
            handle.truncate()
            since = datetime.now(UTC).isoformat(timespec="seconds")
            handle.write(f"run {self.run_id}, pid {os.getpid()}, since {since}\n")
            handle.flush()
            recover(self.store, self.run_id, self.warnings)
        except OSError as exc:  # a read-only store, a full disk: one clear error, the lock released
            self.__exit__()
            raise StoreError(f"cannot write to the store {self.store}: {describe_os_error(exc)}") from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def describe_os_error(exc: OSError) -> str:
    """An OSError as one readable line: what failed, and where when known."""
    where = f": {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device (or the disk quota is exceeded){where}"
    return f"{os.strerror(exc.errno).lower()}{where}" if exc.errno else str(exc)


def recover(store: Path, by_run: str, warnings: list[str] | None = None) -> list[str]:
    """Clean up after runs that were killed, under the lock; returns the run ids recovered.

    A run's manifest says `running` until its outputs are written, `publishing` just before the
    pointer swap, then `completed` (or `failed`). A view that is not the current one, of a run
    still `running` or `publishing`, was never published: it is removed and the manifest marked
    `killed`. A `publishing` run whose view is current did publish: it is marked `completed`.
    Stray pointer links and the folders of earlier layouts (.staging, .trash) are removed.
    A run whose manifest cannot be read is left as it is, with a line in `warnings`; entries of
    runs/ that are not folders are skipped.
    """
    store = Path(store)
    for leftover in (".staging", ".trash"):
        shutil.rmtree(store / leftover, ignore_errors=True)
    for stray in store.glob(f".{CURRENT}-*"):
        stray.unlink(missing_ok=True)
    current = (store / CURRENT).resolve() if (store / CURRENT).exists() else None
    recovered = []
    for run_dir in sorted((store / "runs").glob("*")) if (store / "runs").is_dir() else []:
        if not run_dir.is_dir():
            continue
        manifest_path = run_dir / "manifest.json"
        try:
            if manifest_path.exists():
                manifest = json.loads(manifest_path.read_text())
            elif (run_dir / VIEW).exists():  # a view is made after the first manifest: this one was lost
                raise FileNotFoundError("missing, though the run made a view")
            else:  # killed before its first manifest
                manifest = {"run_id": run_dir.name}
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:  # damaged: nothing to recover by it (its view stays); `verify` reports it
            if warnings is not None:
                warnings.append(f"run {run_dir.name}: manifest.json unreadable ({_short(exc)}); skipped")
            continue
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

    def publish(self, drop_periods: frozenset[str] = frozenset()) -> None:
        """Link in what the run did not write, record provenance, swap STORE/current.

        `drop_periods`: months of the current view left out of the new one (carrier_sla.store.retract)."""
        current = self.store / CURRENT
        written = [(t.name, p.name) for t in self.root.iterdir() if t.is_dir() for p in t.iterdir() if p.is_dir()]
        provenance: dict[str, dict[str, str]] = {}
        dropped = {f"period={p}" for p in drop_periods}
        if current.exists():
            old = current.resolve()
            provenance = read_provenance(old)
            provenance = {t: {k: r for k, r in by.items() if k not in dropped} for t, by in provenance.items()}
            for table_dir in sorted(p for p in old.iterdir() if p.is_dir()):
                for period_dir in sorted(p for p in table_dir.iterdir() if p.is_dir()):
                    target = self.root / table_dir.name / period_dir.name
                    if not target.exists() and period_dir.name not in dropped:
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


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def read_provenance(view: Path) -> dict[str, dict[str, str]]:
    """{table: {"period=YYYY-MM": run id}} of a view (empty when it has none); StoreDamaged when unreadable."""
    path = Path(view) / PROVENANCE
    try:
        provenance = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(provenance, dict) or not all(isinstance(v, dict) for v in provenance.values()):
            raise ValueError("not a JSON object of tables")
    except (OSError, ValueError) as exc:
        raise StoreDamaged(str(store_of(view)), [f"{path}: unreadable ({_short(exc)})"]) from exc
    return provenance


def current_provenance(store: Path) -> dict[str, dict[str, str]]:
    """{table: {"period=YYYY-MM": run id}} of the published view (empty before the first run)."""
    root = view_root(store)
    return read_provenance(root) if root != Path(store) else {}


class Writer:
    """Writes Parquet files on worker threads while the pipeline computes the next table
    (pyarrow releases the GIL while it encodes and compresses)."""

    def __init__(self, workers: int = 2):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="parquet-writer")
        self._jobs: list[tuple[str, Path, Future[int]]] = []
        self.digests: dict[Path, tuple[str, int]] = {}  # path -> (sha256, bytes) of every file written

    def submit(self, name: str, path: Path, table: pa.Table, metadata: dict[str, str]) -> None:
        self._jobs.append((name, path, self._pool.submit(self._write, path, table, metadata)))

    def _write(self, path: Path, table: pa.Table, metadata: dict[str, str]) -> int:
        rows = write_parquet(path, table, metadata)
        self.digests[path] = file_digest(path)  # read back from the page cache, on this writer thread
        return rows

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
    try:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
        os.replace(tmp, folder / "manifest.json")
    except OSError:
        tmp.unlink(missing_ok=True)  # the manifest stays as it was; a half-written copy helps nobody
        raise
    return folder / "manifest.json"


def partitioning(table: str) -> Any:
    """The Hive partitioning of a table's folders below period=P (measure_id=ID under records),
    every key text: a measure id such as 1 is not a number."""
    import pyarrow.dataset as ds

    from carrier_sla import vocabulary

    spec = vocabulary.TABLES.get(table)
    inner = [p for p in spec.partitions if p != "period"] if spec is not None else []
    return ds.partitioning(pa.schema([(p, pa.string()) for p in inner]), flavor="hive") if inner else None


def schema_version(path: Path | str) -> str | None:
    """The output schema version a Parquet file of the store was written under (None: unmarked)."""
    metadata = pq.read_schema(path).metadata or {}
    version = metadata.get(SCHEMA_VERSION_KEY)
    return version.decode() if version is not None else None


def require_schema_version(store: Path, path: Path | str) -> None:
    """StoreError unless the file was written under this OUTPUT_SCHEMA_VERSION: a store written
    by an earlier carrier_sla has other column names and types, which no reader here guesses at."""
    found = schema_version(path)
    if found != OUTPUT_SCHEMA_VERSION:
        raise StoreError(
            f"{store}: written under output schema version {found or 'unknown'}, this carrier_sla reads and "
            f"writes version {OUTPUT_SCHEMA_VERSION}: rerun its months into a new store (--out)"
        )


def require_current_schema(store: Path) -> None:
    """StoreError when the store's published view holds tables of another output schema version
    (one footer read: every run refuses such a store, so a store holds one version)."""
    root = view_root(store)
    if root == Path(store):
        return
    for table in ("results", "rejects"):
        periods = published_periods(root, table)
        if periods:
            files = sorted((root / table / f"period={periods[-1]}").rglob("*.parquet"))
            if files:
                require_schema_version(Path(store), files[0])
                return


def published_periods(store: Path, table: str) -> list[str]:
    """The periods with a published `table` in the current view (or in `store`, a view), in order."""
    folder = view_root(store) / table
    if not folder.is_dir():
        return []
    return sorted(p.name.split("=", 1)[1] for p in folder.iterdir() if p.name.startswith("period=") and p.is_dir())
