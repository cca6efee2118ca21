"""One period's results from input spread over partitions (carrier_sla.spill): the records of
one partition at a time are checked, evaluated and audited; each measure keeps only its partial
aggregates and value histogram per partition, which are merged and judged at the end.

The outputs are those of a run without partitions: the same results (partial sums merged by
Chan's update, so means and deviations can differ in the last bits), the same rejects, counts
and audit rows, the records/ table of a measure written as one file per partition.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from carrier_sla import aggregate, ingest, merge, spill
from carrier_sla.inputs import Loaded, check_reject_rate, load, read_whole
from carrier_sla.period_results import MeasurePart, evaluate_part, judge_measure, ordered_results
from carrier_sla.plan import Plan
from carrier_sla.runlog import RunLog
from carrier_sla.timings import Timings


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
    try:
        whole = {t: f for t, f in found.items() if t in spill.WHOLE}
        lines = load(plan, whole, read_whole, timings, as_of) if whole else None
        dim_fields = aggregate.dimension_fields(plan)
        files_by_type = {t: [str(f.path) for f in files] for t, files in found.items()}
        kept: dict[str, list[MeasurePart]] = {m.id: [] for m in plan.measures}
        histograms = {m.id: aggregate.SampleMerger() for m in plan.measures if m.type == "mean"}
        loaded_parts: list[Loaded] = [] if lines is None else [lines]
        evaluated = 0
        for k in range(parts):
            tick = time.perf_counter()
            loaded = load(plan, spilled.files, _reader(spilled, k), timings, as_of)
            shared: dict = {}
            for measure in plan.measures:
                part, table = evaluate_part(
                    plan, measure, period, loaded.records, shared, dim_fields, files_by_type, timings
                )
                if part.samples is not None:  # merged as partitions come: the histograms stay small
                    with timings.stage("aggregate"):
                        histograms[measure.id].add(part.samples)
                    part.samples = None
                kept[measure.id].append(part)
                evaluated += table.num_rows
                sink(measure.id, table, k)
            rows = sum(c.read for c in loaded.counts)
            loaded_parts.append(Loaded({}, loaded.rejects, loaded.counts, loaded.files, loaded.not_yet_known))
            del loaded, shared
            log.event(
                "partition",
                f"partition {k + 1}/{parts}: {rows:,} rows ({time.perf_counter() - tick:.1f} s)",
                partition=k + 1,
                rows=rows,
                seconds=round(time.perf_counter() - tick, 3),
            )
            log.progress(k + 1, parts, evaluated)
            if settle is not None:
                settle()
    finally:
        spilled.remove()
    summary = _summary(found, loaded_parts, lines)
    check_reject_rate(summary, max_reject_rate)
    frames = []
    for measure in plan.measures:
        judged, base_table = judge_measure(
            plan,
            measure,
            period,
            kept.pop(measure.id),
            summary.records,
            dim_fields,
            files_by_type,
            timings,
            missed,
            histograms[measure.id].result() if measure.id in histograms else None,
        )
        if base_table is not None:
            sink(measure.id, base_table, parts)
        if judged is not None:
            frames.append(judged)
    return ordered_results(plan, frames, dim_fields), summary


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
    for loaded in parts:
        for t, n in loaded.not_yet_known.items():
            not_yet_known[t] = not_yet_known.get(t, 0) + n
    tables = [p.rejects for p in parts if p.rejects.num_columns]
    rejects = pa.concat_tables(tables) if tables else pa.table({})
    if rejects.num_rows:  # files are in read order (types in order, then files): sort by file, then row
        rank = pc.index_in(rejects.column("source_file"), value_set=pa.array([str(f.path) for f in files]))
        rejects = rejects.append_column("__rank", rank).sort_by([("__rank", "ascending"), ("row", "ascending")])
        rejects = rejects.drop_columns(["__rank"])
    elif tables:
        rejects = tables[0]
    records = {} if lines is None else dict(lines.records)
    return Loaded(records, rejects, counts, files, not_yet_known)
