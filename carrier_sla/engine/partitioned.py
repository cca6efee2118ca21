"""One period's results from input spread over partitions (carrier_sla.inputs.spill): the records of
one partition at a time are checked, evaluated and audited; each measure keeps only its partial
aggregates (merged as partitions come) and value histogram per partition, and the cells are
judged at the end.

The outputs are those of a run without partitions: the same results (partial sums merged by
Chan's update, so means and deviations can differ in the last bits), the same rejects, counts
and audit rows, the records/ table of a measure written as one file per partition.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from carrier_sla.engine import aggregate, holiday_years
from carrier_sla.engine.load import Loaded, check_reject_rate, load, read_whole, records_in_month
from carrier_sla.engine.period_results import MeasurePart, evaluate_part, judge_measure, ordered_results
from carrier_sla.engine.runlog import RunLog
from carrier_sla.inputs import ingest, merge, spill
from carrier_sla.plan.load import Plan
from carrier_sla.timings import Timings

TRIM_EVERY = 4  # partitions
# The evaluating thread, the partition loader and the Parquet writers hand the interpreter lock
# back and forth; a thread coming back from numpy or Arrow (which release it) waits up to the
# switch interval for it. At 1 ms instead of Python's 5 ms a 20M-record run took 3-7% less
# wall time (six paired runs).
SWITCH_INTERVAL_S = 0.001


def compute(
    plan: Plan,
    period: str,
    found: dict[str, list[ingest.InputFile]],
    parts: int,
    folder: Path,
    sink: Callable[[str, pa.Table, int], None],
    *,
    max_reject_rate: float,
    timings: Timings,
    as_of: dt.date | None = None,
    missed: frozenset[tuple] | set[tuple] = frozenset(),
    log: RunLog | None = None,
    settle: Callable[[], None] | None = None,
) -> tuple[pd.DataFrame, Loaded]:
    """Results of `period` and what was loaded (rejects, counts; the records of the lines only).

    sink(measure_id, table, part) receives each measure's audit rows of each partition (part
    `parts` holds the rate base rows); settle() is called after each partition (the caller
    bounds the tables waiting to be written). Raises RejectRateExceeded after the last
    partition, before anything is judged."""
    log = log or RunLog()
    with ExitStack() as stack:
        previous = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        stack.callback(sys.setswitchinterval, previous)
        tick = time.perf_counter()
        with timings.stage("spill"):
            spilled = spill.spill(plan, found, parts, folder)
        log.event(
            "spill",
            f"{sum(len(f) for f in spilled.files.values())} files spread over {parts} partitions "
            f"({time.perf_counter() - tick:.1f} s)",
            partitions=parts,
            seconds=round(time.perf_counter() - tick, 3),
        )
        stack.callback(spilled.remove)  # after the loader thread has stopped
        whole = {t: f for t, f in found.items() if t in spill.WHOLE}
        lines = load(plan, whole, read_whole, timings, as_of) if whole else None
        dim_fields = aggregate.dimension_fields(plan)
        files_by_type = {t: [str(f.path) for f in files] for t, files in found.items()}
        kept: dict[str, MeasurePart] = {}  # one running part per measure
        missing: list[holiday_years.MissingYear] = []  # years of holidays needed and not listed, so far
        histograms: dict[str, list[aggregate.SampleIndex]] = {m.id: [] for m in plan.measures}
        if lines is not None:
            lines.in_month = records_in_month(plan, period, lines.records)
        loaded_parts: list[Loaded] = [] if lines is None else [lines]
        evaluated = 0
        # the next partition is read and checked on its own thread while this one is evaluated
        loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partition-loader")
        stack.callback(loader.shutdown, cancel_futures=True)
        pending = loader.submit(load, plan, spilled.files, _reader(spilled, 0), timings, as_of)
        for k in range(parts):
            tick = time.perf_counter()
            loaded = pending.result()
            if k + 1 < parts:
                pending = loader.submit(load, plan, spilled.files, _reader(spilled, k + 1), timings, as_of)
            shared: dict = {}
            with timings.stage("evaluate"):
                missing = holiday_years.combine(
                    missing + holiday_years.missing_in_period(plan, period, loaded.records, shared)
                )
            for measure in plan.measures:
                part, table = evaluate_part(
                    plan, measure, period, loaded.records, shared, dim_fields, files_by_type, timings
                )
                if part.samples is not None:
                    histograms[measure.id].append(part.samples)
                    part.samples = None
                if measure.id in kept:
                    with timings.stage("aggregate"):
                        before = kept[measure.id]
                        part.partial = aggregate.merge([before.partial, part.partial])
                        part.records += before.records
                kept[measure.id] = part
                evaluated += table.num_rows
                sink(measure.id, table, k)
            rows = sum(c.read for c in loaded.counts)
            in_month = records_in_month(plan, period, loaded.records)
            loaded_parts.append(Loaded({}, loaded.rejects, loaded.counts, loaded.files, loaded.not_yet_known, in_month))
            del loaded, shared
            log.event(
                "partition",
                f"partition {k + 1}/{parts}: {rows:,} rows ({time.perf_counter() - tick:.1f} s)",
                partition=k + 1,
                rows=rows,
                seconds=round(time.perf_counter() - tick, 3),
            )
            log.progress(k + 1, parts, evaluated, what="partitions")
            if settle is not None:
                settle()
            if k % TRIM_EVERY == TRIM_EVERY - 1:
                _release_free_memory()
    summary = _summary(found, loaded_parts, lines)
    check_reject_rate(summary, max_reject_rate)
    holiday_years.require(plan, missing)  # as a whole run would: after the reject rate, before any verdict
    frames = []
    for i, measure in enumerate(plan.measures, start=1):
        tick = time.perf_counter()
        records = kept[measure.id].records
        judged, base_table = judge_measure(
            plan,
            measure,
            period,
            [kept.pop(measure.id)],
            summary.records,
            dim_fields,
            files_by_type,
            timings,
            missed,
            histograms.pop(measure.id),
        )
        if base_table is not None:
            sink(measure.id, base_table, parts)
        if judged is not None:
            frames.append(judged)
        cells = 0 if judged is None else len(judged)
        log.progress(i, len(plan.measures), what="measures judged (statistics)")
        log.event(
            "measure",
            f"{measure.id}: {records:,} records, {cells:,} cells judged in {time.perf_counter() - tick:.2f} s",
            measure=measure.id,
            records=records,
            cells=cells,
            seconds=round(time.perf_counter() - tick, 3),
        )
    return ordered_results(plan, frames, dim_fields), summary


def _release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc malloc_trim). Without it, the
    holes that each partition's arrays leave in the heap keep the peak growing with the number
    of partitions; done every TRIM_EVERY partitions, as memory given back costs page faults
    when it is used again. Nothing to do where the C library has no malloc_trim."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _load_libc()


def _reader(spilled: spill.Spilled, part: int):
    def read(rtype: str, index: int, source: ingest.InputFile) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        return spilled.read(rtype, index, part)

    return read


def _summary(found: dict[str, list[ingest.InputFile]], parts: list[Loaded], lines: Loaded | None) -> Loaded:
    """Counts per file summed over the partitions (in file order), rejects in read order."""
    totals: dict[str, merge.FileCount] = {}
    for loaded in parts:
        for c in loaded.counts:
            total = totals.setdefault(c.path, merge.FileCount(c.record_type, c.path, 0))
            total.read += c.read
            total.accepted += c.accepted
            total.rejected += c.rejected
    files = [f for t in found for f in found[t]]
    counts = [totals[str(f.path)] for f in files if str(f.path) in totals]
    not_yet_known: dict[str, int] = {}
    in_month: dict[str, int] = {}
    for loaded in parts:
        for t, n in loaded.not_yet_known.items():
            not_yet_known[t] = not_yet_known.get(t, 0) + n
        for t, n in loaded.in_month.items():
            in_month[t] = in_month.get(t, 0) + n
    tables = [p.rejects for p in parts if p.rejects.num_columns]
    rejects = pa.concat_tables(tables) if tables else pa.table({})
    if rejects.num_rows:  # files are in read order (types in order, then files): sort by file, then row
        rank = pc.index_in(rejects.column("source_file"), value_set=pa.array([str(f.path) for f in files]))
        rejects = rejects.append_column("__rank", rank).sort_by([("__rank", "ascending"), ("input_row", "ascending")])
        rejects = rejects.drop_columns(["__rank"])
    elif tables:
        rejects = tables[0]
    records = {} if lines is None else dict(lines.records)
    return Loaded(records, rejects, counts, files, not_yet_known, in_month)
