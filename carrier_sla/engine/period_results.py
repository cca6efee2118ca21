"""The steps of a period's results that the loop (carrier_sla.engine.period) runs: one measure
evaluated over a batch of records (partial aggregates, value histogram, audit rows), one
measure's cells from the parts of all batches, judged; the results in the results table's order;
and the cells that missed the month before (for plans with a stricter alpha after a miss).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from carrier_sla import vocabulary
from carrier_sla.engine import aggregate, audit, evaluate
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.load import Measure, Plan
from carrier_sla.store.view import read_table
from carrier_sla.timings import Timings


def ordered_results(plan: Plan, frames: list[pd.DataFrame], dim_fields: Mapping[str, pa.DataType]) -> pd.DataFrame:
    """The judged cells of every measure as one frame in the results table's order."""
    empty = pd.DataFrame(columns=["period", *audit.result_columns(dim_fields)])
    results = pd.concat(frames, ignore_index=True) if frames else empty
    order = {m.id: i for i, m in enumerate(plan.measures)}
    results = results.assign(
        _m=results["measure_id"].map(order),
        _scope=(results["scope"] == vocabulary.CLEC_AGGREGATE).astype(int),
        _carrier=results["carrier_id"],
    ).sort_values(["_m", "state", "product", "submeasure", "_scope", "_carrier"], kind="stable")
    return results.drop(columns=["_m", "_scope", "_carrier"]).reset_index(drop=True)


@dataclass(frozen=True)
class MissedBefore:
    """Whether a cell of the measure missed the month before (picklable: it goes to workers)."""

    measure_id: str
    dimensions: tuple[str, ...]
    missed: frozenset[tuple]

    def __call__(self, cell: Any) -> bool:
        return bool(self.missed) and vocabulary.cell_id(self.measure_id, self.dimensions, cell) in self.missed


def previous_misses(out: Path, period: str, plan: Plan) -> set[tuple]:
    """Cells that missed in the month before `period`, from the store (empty if not published),
    each as vocabulary.cell_id under its measure's dimensions in `plan` (measures the plan no
    longer has cannot be judged again, and are left out)."""
    previous = calmod.period_text(calmod.period_index(period) - 1)
    if not (Path(out) / "results" / f"period={previous}").exists():
        return set()
    frame = read_table(out, "results", previous).to_pandas()
    frame = frame[frame["status"] == "miss"]
    dims = {m.id: [d.field for d in m.dimensions] for m in plan.measures}
    return {
        vocabulary.cell_id(row["measure_id"], dims[row["measure_id"]], row)
        for row in frame.to_dict("records")
        if row["measure_id"] in dims
    }


@dataclass
class MeasurePart:
    """What one measure keeps of a batch of records (a partition): partial aggregates, the
    value histogram (mean measures), the number of records evaluated."""

    partial: aggregate.Partial
    samples: aggregate.SampleIndex | None
    records: int


def evaluate_part(
    plan: Plan,
    measure: Measure,
    period: str,
    records: dict,
    shared: dict,
    dim_fields: Mapping[str, pa.DataType],
    files_by_type: dict[str, list[str]],
    timings: Timings,
) -> tuple[MeasurePart, pa.Table]:
    """One measure over a batch of records: its partial aggregates, histogram, audit rows."""
    with timings.stage("evaluate"):
        ev = evaluate.evaluate_measure(plan, measure, period, records, shared)
    with timings.stage("aggregate"):
        part = aggregate.partials(ev)
        samples = aggregate.sample_index(ev) if measure.type == "mean" else None
    with timings.stage("audit"):
        table = audit.unify_record_schema(
            audit.record_rows(plan, ev, dim_fields, files_by_type[measure.records]), dim_fields
        )
    return MeasurePart(part, samples, ev.records.n), table


@dataclass
class Prepared:
    """A measure's cells ready to be judged (None: no cell), their values and misses of the month
    before, and the audit rows of its rate base."""

    cells: pd.DataFrame | None
    samples: aggregate.CellSamples | None
    missed: MissedBefore
    base_table: pa.Table | None


def prepare_measure(
    plan: Plan,
    measure: Measure,
    period: str,
    parts: list[MeasurePart],
    lines: dict,
    dim_fields: Mapping[str, pa.DataType],
    files_by_type: dict[str, list[str]],
    timings: Timings,
    missed: frozenset[tuple] | set[tuple] = frozenset(),
    histograms: list[aggregate.SampleIndex] | None = None,
    *,
    base_rows: bool = True,
) -> Prepared:
    """One measure's cells from the parts of all batches, ready to be judged: their values (mean
    measures; `histograms`: the parts' value histograms, when kept apart from the parts), the
    misses of the month before, and the audit rows of its rate base (lines in service), if it has
    one and `base_rows` (False: they went with the batch that held the lines)."""
    with timings.stage("aggregate"):
        part = aggregate.merge([p.partial for p in parts])
        base, base_table = None, None
        if measure.rate_base is not None:
            in_period = evaluate.lines_in_period(lines, measure, period)
            part = aggregate.widen_carriers(part, list(in_period.cats["carrier_id"]))
            base = aggregate.lines_base(in_period, measure, part)
        cells = aggregate.cells(plan, measure, part, base)
    if measure.rate_base is not None and base_rows:
        with timings.stage("audit"):
            base_table = audit.unify_record_schema(
                audit.base_rows(in_period, dim_fields, files_by_type["lines"], measure.rate_base.field), dim_fields
            )
    dims = [d.field for d in measure.dimensions]
    missed_before = MissedBefore(measure.id, tuple(dims), frozenset(missed))
    if cells.empty:
        return Prepared(None, None, missed_before, base_table)
    samples = None
    if measure.type == "mean":
        indexes = histograms if histograms is not None else [p.samples for p in parts if p.samples is not None]
        samples = aggregate.CellSamples(plan, measure, indexes)
    return Prepared(cells, samples, missed_before, base_table)


def finish_measure(plan: Plan, measure: Measure, period: str, judged: pd.DataFrame) -> pd.DataFrame:
    """A measure's judged cells (verdicts.judge, here or on workers) with their submeasure labels
    and the measure's columns."""
    split = audit.split_products(plan, measure)
    dims = [d.field for d in measure.dimensions]
    judged["submeasure"] = [
        audit.submeasure_label(measure, split, p, dict(zip(dims, vals, strict=True)))
        for p, vals in zip(
            judged["product"].to_numpy(dtype=object),
            judged[dims].itertuples(index=False) if dims else [()] * len(judged),
            strict=True,
        )
    ]
    return judged.assign(
        period=period,
        data_period=evaluate.data_period(period, measure),
        plan_id=plan.id,
        plan_version=plan.version,
        measure_id=measure.id,
        direction=measure.direction,
        unit=measure.unit,
        clec_records_evaluated=judged["n_evaluated"].astype("int64"),
    )
