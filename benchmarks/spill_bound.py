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
    print(f"{args.data.name}, one process; floor (pyarrow read + store writer) {floor:.2f} s")
    print(f"{'run':40} {'pipeline s':>10} {'spill s':>8} {'CPU/wall':>8} {'peak RSS MiB':>12} {'run/floor':>9}")
    for label, run in rows:
        print(
            f"{label:40} {run['pipeline']:10.2f} {run['timings'].get('spill', 0.0):8.2f} "
            f"{run['cpu'] / run['wall']:8.2f} {run['peak_rss_mib']:12.0f} {run['pipeline'] / floor:8.2f}x"
        )


if __name__ == "__main__":
    main()
