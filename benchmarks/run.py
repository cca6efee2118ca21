"""`make bench`: throughput and peak memory of a complete run on generated data.

For each size (records = orders + troubles over two months, the reported month and the one
before it, which OP-5 and MR-7 look back into) it generates Parquet input once (cached in
bench-data/), runs `carrier-sla run` in a fresh process, and reports:
- wall seconds of the whole command (interpreter start included) and of the pipeline,
- input records per second (records read / pipeline seconds), and without the statistics
  stage, whose cost follows the number of small-sample cells (Monte Carlo permutation tests),
  not the number of records,
- CPU seconds over wall seconds, and peak RSS summed over the run's processes (the run's own,
  which holds the Dask scheduler and nannies, the fork server the workers are forked from, and
  every worker process: the process tree sampled every 50 ms; CPU from the kernel's accounting of
  every process the run started, those that exit just after it adopted and counted too),
- the work outside the workers: the pipeline's wall time less its two phases that run on
  the workers (or the run's threads): spreading the input and the batches;
- where the pipeline's time went (spill: spreading the input over partition files, when it is
  larger than one partition; read_and_check: reading and row checks, two files at a time;
  finalize: duplicates and rejects; derive; evaluate; aggregate; statistics; audit; write),
- the floor: pyarrow alone reading the same input files and writing Parquet tables of the
  same size as the run's outputs (the tables the run produced, re-written from memory, zstd as
  the store writes them, pyarrow's other defaults), and the run's time as a multiple of it;
  beside it, for comparison, the same floor with the tables written with the store's own
  writer settings (no dictionary pages or statistics where they do not pay: about half of
  pyarrow's default writing time on these tables), and the run's multiple of that.

With several sizes it then checks the nightly-operation targets (stated for 1M and 20M) on the
smallest and largest: run / floor at most 1.6x, peak RSS under 1.5 GiB and under 1.3x the
smallest size's, and time growing at most 1.1x as fast as the records (22x for 20x).

--real SIZES adds data sets of a real CLEC population (REAL_CLECS CLECs with Zipf-distributed sizes,
exponent REAL_ZIPF: hundreds of small cells, each a small-sample test), reported in the same table,
with their targets: the statistics stage at most 10% of the run, the run at most 2x the floor.

Each size runs with --workers 1 (one process, no Dask) and with --workers = the cores (a LocalCluster),
or with the counts --workers lists; the targets are checked on the runs with the most workers.

Usage: python -m benchmarks.run [--sizes 1000000,5000000,20000000] [--real 8000000] [--workers 1,16] [--keep]
(`make bench` runs those sizes; the default is 1M alone.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq

from carrier_sla.engine.period import run_pool
from carrier_sla.store import layout as store

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench-data"
PERIOD = "2026-10"
STAGES = [
    "spill",
    "read_and_check",
    "finalize",
    "derive",
    "evaluate",
    "aggregate",
    "statistics",
    "audit",
    "remedies",
    "write",
]


REAL_CLECS, REAL_ZIPF = 200, 1.3  # a large ILEC's CLECs: hundreds, most of them small


def ensure_data(records: int, real: bool = False) -> Path:
    folder = DATA / (f"real-n{records}" if real else f"n{records}")
    if (folder / "done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "carrier_sla",
        "generate",
        "--out",
        str(folder),
        "--period",
        PERIOD,
        "--periods",
        "2",
        "--scale",
        str(records // 2),
        "--seed",
        "7",
        "--format",
        "parquet",
        "--files-per-type",
        "4",
    ]
    if real:
        cmd += ["--clecs", str(REAL_CLECS), "--zipf", str(REAL_ZIPF)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    (folder / "done").write_text("")
    return folder


def measure_run(data: Path, store: Path, workers: int) -> dict:
    return measure_command(run_command(data, store, workers), store, workers)


def run_command(data: Path, store: Path, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "carrier_sla",
        "run",
        "--plan",
        "example-qc",
        "--data",
        str(data),
        "--period",
        PERIOD,
        "--out",
        str(store),
        "--quiet",
        "--workers",
        str(workers),
    ]


def measure_command(cmd: list[str], store: Path, workers: int) -> dict:
    """Run `cmd` (a run publishing into `store`) in a fresh process: its times, CPU, peak memory
    and what its manifest says."""
    _adopt_orphans()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak, status, usage = _sample_tree(proc)
    wall = time.perf_counter() - start
    orphans_cpu = _reap_orphans()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"run failed with exit {os.waitstatus_to_exitcode(status)}")
    manifest = json.loads(next((store / "runs").glob("*/manifest.json")).read_text())
    pipeline = (
        datetime.fromisoformat(manifest["finished_at"]) - datetime.fromisoformat(manifest["started_at"])
    ).total_seconds()
    return {
        "records": sum(i["rows_read"] for i in manifest["inputs"] if i["record_type"] != "lines"),
        "workers": workers,
        "wall": wall,
        "pipeline": pipeline,
        # the run's process and every process it started: those it reaped (wait4's figures
        # include them) and those it left to exit after it (the fork server its workers were
        # forked from, with the workers it reaped), adopted and reaped here
        "cpu": usage.ru_utime + usage.ru_stime + orphans_cpu,
        "peak_rss_mib": max(peak, usage.ru_maxrss * 1024) / 2**20,
        "timings": manifest["timings_seconds"],
        "outputs": manifest["outputs"],
        "inputs": manifest["inputs"],
    }


PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def _adopt_orphans() -> None:
    """Make this process the reaper of its descendants' orphans (Linux): a process the run leaves
    behind (multiprocessing's fork server exits just after the run, on the run's end of its pipe
    closing) becomes this process's child, so its CPU time, and that of the workers it reaped,
    can be counted. Elsewhere, nothing (those processes' CPU is then left out)."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap_orphans(patience: float = 30.0) -> float:
    """CPU seconds of the children this process adopted (see _adopt_orphans), each waited for
    until it exits (at most `patience` seconds in all)."""
    cpu = 0.0
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:  # no child left
            break
        if pid:
            cpu += usage.ru_utime + usage.ru_stime
        else:
            time.sleep(0.01)
    return cpu


def _sample_tree(proc: subprocess.Popen, every: float = 0.05) -> tuple[int, int, Any]:
    """Peak of the resident set summed over the run's process and all its descendants (the Dask
    scheduler lives in the run's process; nannies and workers are its children), sampled every
    `every` seconds until the run exits; and its exit status and resource usage (os.wait4)."""
    root = psutil.Process(proc.pid)
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return peak, status, usage
        total = 0
        try:
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in family:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        peak = max(peak, total)
        time.sleep(every)


def measure_floor(run: dict) -> dict:
    """pyarrow alone: read the run's input files, write tables as large as its outputs; from the
    memory pool a run uses (period.run_pool), so that the floor is pyarrow at its fastest too."""
    with run_pool():
        return _floor(run)


def _floor(run: dict) -> dict:
    tick = time.perf_counter()
    for entry in run["inputs"]:
        pq.read_table(entry["path"])
    read = time.perf_counter() - tick
    # the Parquet outputs (the few small CSV statements are left out of the floor)
    tables = [pq.read_table(o["path"]) for o in run["outputs"] if o["path"].endswith(".parquet")]
    with tempfile.TemporaryDirectory() as tmp:
        tick = time.perf_counter()
        for i, table in enumerate(tables):
            pq.write_table(table, Path(tmp) / f"t{i}.parquet", compression="zstd")
        write = time.perf_counter() - tick
        # for comparison: the same tables written with the store's own writer settings
        # (dictionary pages and statistics only where they pay), which the run itself uses
        tick = time.perf_counter()
        for i, table in enumerate(tables):
            store.write_parquet(Path(tmp) / f"s{i}.parquet", table, {})
        store_write = time.perf_counter() - tick
    return {"read": read, "write": write, "floor": read + write, "store_write": store_write}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000", help="comma-separated record counts (default 1000000)")
    parser.add_argument(
        "--real",
        default="",
        help=f"comma-separated record counts of a real CLEC population ({REAL_CLECS} CLECs, Zipf {REAL_ZIPF})",
    )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parser.add_argument(
        "--workers",
        default=f"1,{cores}" if cores > 1 else "1",
        help=f"comma-separated worker counts each size runs with (default 1,{cores}: one process, then every core)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the output stores in bench-data/")
    args = parser.parse_args()
    sets = [(int(s), False) for s in args.sizes.split(",") if s] + [(int(s), True) for s in args.real.split(",") if s]
    counts = [int(w) for w in args.workers.split(",") if w]
    runs = []
    # every run before any floor: the floor reads the outputs into this process, and a run
    # started from a large process would report that process's memory as its own peak (the
    # child's resident set right after fork, before exec, counts in its ru_maxrss)
    for size, real in sets:
        data = ensure_data(size, real)
        for workers in counts:
            store = DATA / f"store-{data.name}-w{workers}"
            shutil.rmtree(store, ignore_errors=True)
            run = measure_run(data, store, workers)
            runs.append((size, real, run, store))
            stages = "  ".join(f"{k} {run['timings'].get(k, 0):.2f}" for k in STAGES)
            label = " (real population)" if real else ""
            print(
                f"{size:>11,} records{label}, --workers {workers}: pipeline {run['pipeline']:.2f} s ({stages})",
                flush=True,
            )
    rows = []
    for size, real, run, store in runs:
        rows.append((size, real, run, measure_floor(run)))
        if not args.keep:
            shutil.rmtree(store, ignore_errors=True)

    print()
    print(
        "| data | records | workers | command wall s | pipeline s | records/s (pipeline) | statistics s "
        "| records/s without statistics | outside the workers s | CPU s / wall s | peak RSS MiB (all processes) "
        "| floor s (read + write) | run / floor | floor with the store's writer settings s | run / that floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for _size, real, run, floor in rows:
        rate = run["records"] / run["pipeline"]
        statistics = run["timings"].get("statistics", 0.0)
        rest = run["records"] / max(run["pipeline"] - statistics, 1e-9)
        label = f"real population ({REAL_CLECS} CLECs)" if real else "bench (12 CLECs)"
        print(
            f"| {label} | {run['records']:,} | {run['workers']} | {run['wall']:.2f} | {run['pipeline']:.2f} "
            f"| {rate:,.0f} "
            f"| {statistics:.2f} ({statistics / run['pipeline']:.0%}) | {rest:,.0f} "
            f"| {outside(run):.2f} ({outside(run) / run['pipeline']:.0%}) | {run['cpu'] / run['wall']:.2f} "
            f"| {run['peak_rss_mib']:,.0f} | {floor['floor']:.2f} ({floor['read']:.2f} + {floor['write']:.2f}) "
            f"| {run['pipeline'] / floor['floor']:.2f}x "
            f"| {floor['read'] + floor['store_write']:.2f} ({floor['read']:.2f} + {floor['store_write']:.2f}) "
            f"| {run['pipeline'] / (floor['read'] + floor['store_write']):.2f}x |"
        )
    most = max(counts)
    bench = [(size, run, floor) for size, real, run, floor in rows if not real and run["workers"] == most]
    if len(bench) > 1:
        print_targets(bench)
    for size, real, run, floor in rows:
        if real and run["workers"] == most:
            print_real_targets(size, run, floor)


def outside(run: dict) -> float:
    """Seconds of the pipeline outside the two phases that run on the workers (spreading the input
    over partitions, and the batches: reading, checking, evaluating, auditing): listing the inputs,
    reading the lines in service, judging (counted here even where its tasks run on workers),
    remedies and publication, all in the run's own process."""
    timings = run["timings"]
    return max(0.0, run["pipeline"] - timings.get("spill", 0.0) - timings.get("batches", 0.0))


def store_floor(floor: dict) -> float:
    """The floor the targets are stated against: pyarrow reading the input and writing the run's
    tables with the store's own writer settings (carrier_sla.store.layout.write_parquet)."""
    return floor["read"] + floor["store_write"]


def print_targets(rows: list[tuple[int, dict, dict]]) -> None:
    """The nightly-operation targets, scaled from 1M and 20M to the smallest and largest sizes run."""
    (small, first, _), (large, last, last_floor) = rows[0], rows[-1]
    growth = large / small
    checks = [
        ("run / floor (store's writer settings), largest size", last["pipeline"] / store_floor(last_floor), 1.6, "x"),
        ("peak RSS summed over processes at the largest size, GiB", last["peak_rss_mib"] / 1024, 1.5, ""),
        ("CPU s / wall s at the largest size", last["cpu"] / last["wall"], 1.7, " (at least)"),
        ("work outside the workers at the largest size, %", 100 * outside(last) / last["pipeline"], 10.0, "%"),
        ("peak RSS, largest / smallest", last["peak_rss_mib"] / first["peak_rss_mib"], 1.3, "x"),
        (
            f"pipeline time, largest / smallest ({growth:.0f}x the records)",
            last["pipeline"] / first["pipeline"],
            1.1 * growth,
            "x",
        ),
    ]
    _print_checks(checks)


def print_real_targets(size: int, run: dict, floor: dict) -> None:
    """The real population's targets: the statistics stage at most 10% of the run, the run at most 2x the floor."""
    share = run["timings"].get("statistics", 0.0) / run["pipeline"]
    _print_checks(
        [
            (f"real population {size:,}: statistics / pipeline", 100 * share, 10.0, "%"),
            (f"real population {size:,}: run / floor (store writer)", run["pipeline"] / store_floor(floor), 2.0, "x"),
        ]
    )


def _print_checks(checks: list[tuple[str, float, float, str]]) -> None:
    print()
    for label, value, limit, unit in checks:
        at_least = unit == " (at least)"  # a floor, not a ceiling
        verdict = "met" if (value >= limit if at_least else value <= limit) else "NOT met"
        bound, unit = ("at least", "") if at_least else ("at most", unit)
        print(f"{label}: {value:.2f}{unit} (target {bound} {limit:.2f}{unit}): {verdict}")


if __name__ == "__main__":
    main()
