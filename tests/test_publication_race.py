"""Readers never see a mixture: while publications follow each other as fast as the store makes them,
every read through the library (carrier_sla.store.view.read_table) and through the documented path (STORE/current
resolved once) sees exactly one publication, complete.

A publication here is what a run does at its end (carrier_sla.store.layout.Staging: its files in its own
view, a manifest listing them, then the one pointer swap), without the computing before it, so that
hundreds of them happen during the reads. They alternate between 9 files and 2 files of one
table and period, with another number of rows per file each time: a reader that listed one view's
folder and opened files of another would fail (a part that no longer exists) or count wrong rows.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from carrier_sla.store import layout as storemod
from carrier_sla.store.view import read_table

PERIOD = "2026-10"
READS = 1500  # at least, through each way of reading
PUBLICATIONS = 100  # at least
READERS = 3  # threads per way of reading


def shape(i: int) -> tuple[int, int]:
    """(files, rows per file) of publication i."""
    return (9 if i % 2 else 2), 10 + i


def publish(store: Path, i: int) -> None:
    run_id = f"20261001T000000Z-{i:06d}"
    staging = storemod.Staging(store, run_id)
    files, rows = shape(i)
    outputs = []
    for k in range(files):
        path = staging.path("records", PERIOD, "measure_id=OP-3", f"part-{k}.parquet")
        table = pa.table({"publication": pa.array([i] * rows, pa.int64()), "part": pa.array([k] * rows, pa.int64())})
        storemod.write_parquet(path, table, {"carrier_sla.run_id": run_id})
        data = path.read_bytes()
        file = path.relative_to(staging.root).as_posix()
        sha256 = hashlib.sha256(data).hexdigest()
        outputs.append({"table": "records/OP-3", "file": file, "rows": rows, "bytes": len(data), "sha256": sha256})
    manifest = {"run_id": run_id, "status": "publishing", "outputs": outputs}
    storemod.write_manifest(store, run_id, manifest)
    staging.publish()
    storemod.write_manifest(store, run_id, manifest | {"status": "completed"})


def check(table: pa.Table) -> str | None:
    """None when the table is one publication's complete set of rows, else what is wrong."""
    publications = set(table.column("publication").to_pylist())
    if len(publications) != 1:
        return f"rows of publications {sorted(publications)}"
    (i,) = publications
    files, rows = shape(i)
    if table.num_rows != files * rows:
        return f"publication {i}: {table.num_rows} rows, not {files * rows}"
    return None


def test_readers_never_see_a_mixture_while_runs_publish(tmp_path):
    """Thousands of reads during at least a hundred publications: no failure, no mixture, through the
    library reader and through STORE/current resolved once (the README's recipe)."""
    store = tmp_path / "store"
    store.mkdir()
    publish(store, 0)
    done = threading.Event()
    reads = {"library": 0, "documented": 0}
    failures: list[str] = []
    lock = threading.Lock()

    def library() -> pa.Table:
        return read_table(store, "records", PERIOD)

    def documented() -> pa.Table:
        view = os.path.realpath(store / "current")  # resolved once, then read under it
        return ds.dataset(f"{view}/records/period={PERIOD}", format="parquet", partitioning="hive").to_table()

    def reader(name: str, read) -> None:
        while not done.is_set():
            try:
                problem = check(read())
            except Exception as exc:  # any failure to read counts
                problem = f"{type(exc).__name__}: {exc}"
            with lock:
                reads[name] += 1
                if problem:
                    failures.append(f"{name}: {problem}")

    threads = [
        threading.Thread(target=reader, args=(name, fn))
        for name, fn in [("library", library), ("documented", documented)]
        for _ in range(READERS)
    ]
    for thread in threads:
        thread.start()
    started, i = time.monotonic(), 0
    try:
        while i < PUBLICATIONS or min(reads.values()) < READS:
            i += 1
            publish(store, i)
            assert time.monotonic() - started < 120, f"{i} publications, {reads} reads: too slow a machine"
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert failures == [], f"{len(failures)} bad reads of {sum(reads.values())}, first: {failures[:3]}"
    assert check(read_table(store, "records", PERIOD)) is None
