"""What spreading the input over partitions costs: a run as it is, against the same run reading its
batches straight from the input's Parquet row groups, without the spill.

A measurement, not a way to run: without the spill, records that a related-record measure pairs
(an order and a later trouble of the same circuit, a trouble and its repeat) land in different
batches and are not paired, and duplicate ids are found only within a batch, so the second run's
results are wrong. Its time is a bound on what a design without the full-record spill could
reach (batches read in place; only what pairs records across batches spread or indexed apart).

Both runs are in one process (--workers 1), each in a fresh interpreter, measured as `make bench`
measures a run (benchmarks.run.measure_command); the floor is `make bench`'s: pyarrow reading the
input and writing the first run's output tables with the store's writer settings.

Then the first pass of a narrow shuffle, the cheapest design that still pairs records across
batches in bounded memory: every input file read for only the columns that pairing and duplicate
ids need (the key fields, the id, the related-record rules' times and `where` fields, the state; a
`where` field derived from another column is left out, so this is a bound), each row's key and id
hashed, and (those columns, key hash, id hash, read position) spread over the partitions on the
spill's threads. Such a design would add this pass, a duplicate-id pass and a pass computing the
related-record values per partition to the run without the spill: its pass 1 alone shows how much
of the spill's cost it could save.

Usage: python -m benchmarks.spill_bound [--data bench-data/n20000000]
(the data folder as `make bench` caches it; `python -m benchmarks.run --sizes 20000000` makes it)
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.run import DATA, PERIOD, measure_command, measure_floor, run_command, store_floor


@dataclass(frozen=True)
class RowGroups:
    """A run's batches straight from the input: batch k is the k-th Parquet row group of every
    spread record type (the files in order), read in place (period.Source's interface)."""

    found: dict[str, list[Any]]
    groups: dict[str, list[tuple[int, int, int]]]  # record type -> (file index, row group, first row)

    @property
    def count(self) -> int:
        return max(len(g) for g in self.groups.values())

    def prepare(self, plan: Any, timings: Any, log: Any, mapper: Any) -> RowGroups:
        return self

    def lines(self, plan: Any, timings: Any, as_of: Any) -> Any:
        from carrier_sla.engine.load import load, read_whole
        from carrier_sla.inputs import spill

        whole = {t: f for t, f in self.found.items() if t in spill.WHOLE}
        return load(plan, whole, read_whole, timings, as_of) if whole else None

    def load(self, plan: Any, k: int, timings: Any, as_of: Any, progress: Any = None) -> Any:
        from carrier_sla.engine.load import load
        from carrier_sla.inputs import ingest, spill

        mine = {t: g[k] for t, g in self.groups.items() if k < len(g)}

        def read(rtype: str, index: int, source: Any) -> tuple[Any, np.ndarray, np.ndarray]:
            _, group, first = mine[rtype]
            codes = [c for c in pq.read_schema(source.path).names if c in spill.code_columns(rtype)]
            table = ingest.as_text(source, pq.ParquetFile(source.path, read_dictionary=codes).read_row_group(group))
            rows = np.arange(first + 1, first + table.num_rows + 1)
            return table, rows, np.zeros(table.num_rows, dtype=bool)

        return load(plan, {t: [self.found[t][g[0]]] for t, g in mine.items()}, read, timings, as_of, progress)

    def done(self, k: int) -> None:
        pass

    def remove(self) -> None:
        pass


def row_groups(found: dict[str, list[Any]], parts: int, folder: Path) -> RowGroups:
    from carrier_sla.inputs import spill

    groups: dict[str, list[tuple[int, int, int]]] = {}
    for rtype, files in found.items():
        if rtype in spill.WHOLE:
            continue
        groups[rtype] = []
        for index, source in enumerate(files):
            meta, first = pq.ParquetFile(source.path).metadata, 0
            for group in range(meta.num_row_groups):
                groups[rtype].append((index, group, first))
                first += meta.row_group(group).num_rows
    return RowGroups(found, groups)


def narrow_columns(plan: Any, record_type: str) -> list[str]:
    """What a narrow shuffle spreads of a record type: the key fields, the id columns, and the anchor,
    related time, `where` fields and state of the related-record rules that read the type."""
    from carrier_sla.inputs import spill
    from carrier_sla.plan.fields import record_schema

    ids = record_schema(record_type)["x-record-id"]
    names = [*spill.key_fields(plan), *([ids] if isinstance(ids, str) else ids), "state"]
    for measure in plan.measures:
        v = measure.value
        if v.kind != "related_record":
            continue
        if measure.records == record_type:
            names.append(v.anchor)
        if v.records == record_type:
            names += [v.related_time, *(c.field for c in v.where)]
    return list(dict.fromkeys(n for n in names if n))


def _narrow_file(plan: Any, folder: Path, parts: int, job: tuple[str, int, Any]) -> None:
    from carrier_sla.inputs import spill
    from carrier_sla.inputs.contract import record_ids
    from carrier_sla.inputs.keys import hash64, hash64_rows

    rtype, index, source = job
    names = [c for c in narrow_columns(plan, rtype) if c in pq.read_schema(source.path).names]
    codes = [c for c in names if c in spill.code_columns(rtype)]
    parquet = pq.ParquetFile(source.path, read_dictionary=codes, pre_buffer=False)
    key = spill.key_fields(plan)
    writers: list[Any] = []
    done = 0
    try:
        for batch in parquet.iter_batches(batch_size=spill.PARQUET_BATCH, columns=names, use_threads=False):
            table = pa.Table.from_batches([batch])
            n = table.num_rows
            key_hash = hash64_rows([table.column(c).combine_chunks() for c in key])
            position = (np.int64(index) << 40) + np.arange(done + 1, done + n + 1, dtype=np.int64)
            done += n
            # the key texts stay (pairs are matched on them exactly; the hash only spreads them)
            narrow = table.append_column("key", pa.array(key_hash))
            narrow = narrow.append_column("id", pa.array(hash64(record_ids(rtype, table))))
            narrow = narrow.append_column("position", pa.array(position))
            if not writers:
                writers = [
                    pa.ipc.new_stream(str(folder / f"{rtype}-{index}-{k}.arrow"), narrow.schema) for k in range(parts)
                ]
            spill._scatter(narrow, (key_hash % np.uint64(parts)).astype(np.int64), writers)
    finally:
        for writer in writers:
            writer.close()


def narrow_pass(data: Path, folder: Path) -> tuple[float, int, int]:
    """(seconds, partitions, bytes written) of a narrow shuffle's first pass over the data (module docstring)."""
    import functools
    import time

    from carrier_sla.engine.period import run_pool
    from carrier_sla.inputs import ingest, spill
    from carrier_sla.plan.load import load_plan

    plan = load_plan("example-qc")
    found = {t: f for t, f in ingest.discover(data, ("orders", "troubles", "lines")).items() if t not in spill.WHOLE}
    parts = spill.partition_count(plan, found, spill.DEFAULT_PARTITION_ROWS)
    jobs = [(t, i, source) for t, sources in found.items() for i, source in enumerate(sources)]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        with run_pool():
            tick = time.perf_counter()
            spill.thread_map(functools.partial(_narrow_file, plan, folder, parts), jobs)
            seconds = time.perf_counter() - tick
        return seconds, parts, sum(p.stat().st_size for p in folder.iterdir())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_without_spill(data: Path, store: Path) -> None:
    """The run of `carrier-sla run --workers 1`, its batches the input's row groups (wrong results)."""
    from carrier_sla.engine import pipeline
    from carrier_sla.plan.load import load_plan

    pipeline.source_for = row_groups  # type: ignore[assignment]
    pipeline.run(load_plan("example-qc"), data, PERIOD, store, workers=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA / "n20000000")
    parser.add_argument("--without-spill", nargs=2, type=Path, metavar=("DATA", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.without_spill:
        run_without_spill(*args.without_spill)
        return
    if not (args.data / "done").exists():
        raise SystemExit(f"{args.data}: no bench data (python -m benchmarks.run --sizes 20000000 makes it)")
    stores = {"spill": DATA / "store-bound-spill", "direct": DATA / "store-bound-direct"}
    commands = {
        "spill": run_command(args.data, stores["spill"], 1),
        "direct": [
            sys.executable,
            "-m",
            "benchmarks.spill_bound",
            "--without-spill",
            str(args.data),
            str(stores["direct"]),
        ],
    }
    labels = {"spill": "as it is (spill)", "direct": "row groups in place (results wrong)"}
    rows = []
    try:
        for name, store in stores.items():
            shutil.rmtree(store, ignore_errors=True)
            rows.append((labels[name], measure_command(commands[name], store, 1)))
        floor = store_floor(measure_floor(rows[0][1]))  # the outputs of the run as it is
    finally:
        for store in stores.values():
            shutil.rmtree(store, ignore_errors=True)
    narrow = min((narrow_pass(args.data, DATA / "narrow-pass") for _ in range(3)), key=lambda m: m[0])
    print(f"{args.data.name}, one process; floor (pyarrow read + store writer) {floor:.2f} s")
    print(f"{'run':40} {'pipeline s':>10} {'spill s':>8} {'CPU/wall':>8} {'peak RSS MiB':>12} {'run/floor':>9}")
    for label, run in rows:
        print(
            f"{label:40} {run['pipeline']:10.2f} {run['timings'].get('spill', 0.0):8.2f} "
            f"{run['cpu'] / run['wall']:8.2f} {run['peak_rss_mib']:12.0f} {run['pipeline'] / floor:8.2f}x"
        )

    seconds, parts, size = narrow
    spilled = rows[0][1]["timings"].get("spill", 0.0)
    print(
        f"a narrow shuffle's first pass alone (least of 3): {seconds:.2f} s, "
        f"{size / 2**20:,.0f} MiB over {parts} partitions (the spill as it is: {spilled:.2f} s)"
    )


if __name__ == "__main__":
    main()
