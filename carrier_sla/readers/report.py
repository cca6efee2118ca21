"""The monthly filing report: one self-contained HTML file and the same tables as CSV.

`carrier-sla report --store STORE --period P [--state S] --out DIR` writes DIR/report.html (inline
CSS and SVG charts: no script, no network access needed to view it) and DIR/summary.csv,
payments.csv, measures.csv, misses.csv, trend.csv, notes.csv. Layout, in the order commission
staff read it: summary by state and payments by payee; misses by measure (chart); per measure
the all-CLEC results (status and cell, then the test: statistic, critical value, p-value, method,
then CLEC and retail numerator, denominator and result, the standard) with the CLEC cells that
missed beneath, each with the threshold that would have passed and the amount paid (from the
remedies ledger, joined on the cell key);
CLEC vs retail (or the benchmark) over the last 12 months per measure and standard (charts);
the cells the commission excused and, for a restated month, the adjustments per payee
(excusals.csv, adjustments.csv: report_restated); notes on provisional data, exclusions and
rejected records; a glossary of statuses, methods and columns. Every figure comes from the
store's published view. The page prints on A4 or Letter landscape with every column
(report_html). Building the tables is here, the HTML in report_html, charts in report_charts,
the report's words in report_words, the excusals and restatement tables in report_restated.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd

from carrier_sla import vocabulary
from carrier_sla.errors import StoreError, UsageError
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.load import Measure, Plan
from carrier_sla.readers import report_html, report_restated
from carrier_sla.store import csv_safe
from carrier_sla.store.view import StoreView, open_store

STATUSES = vocabulary.STATUSES
MEASURE_COLUMNS = [
    "measure_id", "submeasure", "state", "product", "clec_numerator", "clec_n", "clec_value", "retail_numerator",
    "retail_n", "retail_value", "standard", "benchmark", "method", "statistic", "critical_value", "alpha", "p_value",
    "status", "direction", "unit", "excusal_reference",
]  # fmt: skip
CELL = [*vocabulary.MEASURE_CELL, "carrier_id"]  # a ledger line's result cell (the scope follows the tier)
PAID_COLUMNS = ["threshold", "amount", "currency"]  # from the ledger, per missed cell
TREND_COLUMNS = ["measure_id", "standard", "benchmark", "month", "unit", "clec_value", "retail_value"]


@dataclass
class Report:
    period: str
    state: str | None
    run_id: str
    plan: str
    provisional: bool
    provisional_as_of: str | None
    summary: pd.DataFrame  # by state: cells per status
    payments: pd.DataFrame  # by payee and tier
    measures: pd.DataFrame  # all-CLEC rows in the commission layout
    misses: pd.DataFrame  # CLEC cells that missed
    trend: pd.DataFrame  # per measure, standard and month: CLEC and retail values over the last 12 months
    notes: pd.DataFrame  # exclusions by measure and reason, rejects by reason
    total_paid: Decimal
    currency: str  # of the payments ("" when the plan pays nothing)
    titles: dict[str, str]  # measure id -> its name in the plan
    scopes: dict[tuple[str, str, float | None], str]  # (measure, standard, benchmark) -> the cells it covers
    excused: pd.DataFrame | None = None  # cells the commission excused (verdict kept, nothing paid)
    adjustments: pd.DataFrame | None = None  # a restated month: per payee paid, restated, adjustment


def build(out: Path | StoreView, period: str, state: str | None = None) -> Report:
    """Gather the report's tables from a store's current view (resolved once: one publication), or
    from the StoreView given (a past run's view)."""
    view = out if isinstance(out, StoreView) else open_store(out)
    view.check(period)  # every file its runs wrote is there
    if not view.has("results", period):
        raise UsageError(f"{view.store}: no published results for period {period}")
    results = view.results(period)
    results["period"] = results["period"].astype(str)
    if state is not None:
        if state not in set(results["state"]):
            raise UsageError(f"period {period} has no results for state {state!r}")
        results = results[results["state"] == state]
    run_id = view.run_of(period) or ""
    plan = f"{results['plan_id'].iloc[0]} {results['plan_version'].iloc[0]}" if len(results) else ""
    clec = results[results["scope"] == "clec"]
    summary = clec.pivot_table(index="state", columns="status", aggfunc="size", fill_value=0)
    summary = summary.reindex(columns=[s for s in STATUSES if s in summary.columns]).reset_index()
    ledger = _ledger(view, period, state)
    payments = (
        ledger.groupby(["payee", "tier", "currency"], as_index=False)
        .agg(lines=("amount", "size"), amount_uncapped=("amount_uncapped", "sum"), amount=("amount", "sum"))
        .sort_values(["tier", "payee"])
        if len(ledger)
        else pd.DataFrame(columns=["payee", "tier", "currency", "lines", "amount_uncapped", "amount"])
    )
    paid = _paid_by_cell(ledger)
    results = results.assign(excusal_reference=results.get("excusal_reference"))  # null: none, or an older run
    clec = results[results["scope"] == "clec"]
    measures = _with_payments(results[results["scope"] == "clec_aggregate"][MEASURE_COLUMNS], paid)
    misses = _with_payments(clec[clec["status"] == "miss"][["carrier_id", *MEASURE_COLUMNS]], paid).sort_values(
        list(vocabulary.READING_ORDER)
    )
    plan_used = _plan_of(view, period)
    titles = {m.id: m.title for m in plan_used.measures} if plan_used else {}
    scales = {m.id: m.scale for m in plan_used.measures} if plan_used else {}
    trend = _trend(view, period, state, scales)
    currencies = sorted(set(ledger["currency"].dropna().astype(str)))
    plan_currency = plan_used.remedies.currency if plan_used and plan_used.remedies else ""
    return Report(
        period=period,
        state=state,
        run_id=run_id,
        plan=plan,
        provisional=bool(results["provisional"].any()) if "provisional" in results else False,
        provisional_as_of=next((str(v) for v in results.get("provisional_as_of", []) if v), None),
        summary=summary,
        payments=payments,
        measures=measures,
        misses=misses.reset_index(drop=True),
        trend=trend,
        notes=_notes(view, period, state),
        total_paid=sum(ledger["amount"], Decimal("0.00")) if len(ledger) else Decimal("0.00"),
        currency=" ".join(currencies) or plan_currency,
        titles=titles,
        scopes=_scopes(plan_used, trend),
        excused=report_restated.excused(results),
        adjustments=report_restated.adjustments(view, period, state),
    )


def _ledger(view: StoreView, period: str, state: str | None) -> pd.DataFrame:
    if not view.has("remedies", period):
        return pd.DataFrame(columns=["payee", "tier", "state", "amount", "amount_uncapped", *CELL, *PAID_COLUMNS])
    ledger = view.remedies(period)
    return ledger if state is None else ledger[ledger["state"] == state]


def _paid_by_cell(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per result cell (the ledger key less the tier) its threshold, the amount paid over its lines and
    their currency."""
    lines = ledger
    if not len(lines):
        return pd.DataFrame(columns=[*CELL, *PAID_COLUMNS])
    return lines.groupby(CELL, as_index=False, sort=False).agg(
        threshold=("threshold", "first"),
        amount=("amount", lambda a: sum(a, Decimal("0.00"))),
        currency=("currency", lambda c: " ".join(sorted(set(c.astype(str))))),
    )


def _with_payments(cells: pd.DataFrame, paid: pd.DataFrame) -> pd.DataFrame:
    """The result cells with the threshold and amount of their ledger lines (blank where none)."""
    on = [c for c in CELL if c in cells.columns]
    aggregate = paid["carrier_id"] == vocabulary.AGGREGATE
    right = paid[on + PAID_COLUMNS] if "carrier_id" in cells else paid[aggregate][on + PAID_COLUMNS]
    return cells.merge(right, on=on, how="left", validate="many_to_one").reset_index(drop=True)


def _scopes(plan: Plan | None, trend: pd.DataFrame) -> dict[tuple[str, str, float | None], str]:
    """The cells each trend chart covers, from the `when` of the plan's standard it shows: "channel
    electronic", "products ubl_2w", "the other cells" (blank when the measure has one standard)."""
    measures = {m.id: m for m in plan.measures} if plan else {}
    out: dict[tuple[str, str, float | None], str] = {}
    for measure_id, standard, benchmark in (
        trend[["measure_id", "standard", "benchmark"]].drop_duplicates().itertuples(index=False)
    ):
        target = None if pd.isna(benchmark) else float(benchmark)
        out[(measure_id, standard, target)] = _scope_of(measures.get(measure_id), standard, target)
    return out


def _scope_of(measure: Measure | None, standard: str, target: float | None) -> str:
    if measure is None or len(measure.standards) < 2:
        return ""
    for std in measure.standards:
        if std.type == standard and (target is None or std.target is None or abs(std.target - target) < 1e-9):
            if not std.when:
                return "the other cells"
            return "; ".join(f"{key} {', '.join(map(str, values))}" for key, values in std.when)
    return ""


def _plan_of(view: StoreView, period: str) -> Plan | None:
    """The plan the month was judged under (StoreView.plan); None when it cannot be read back (the
    report then shows measure ids without names, and scales values from the cells themselves)."""
    try:
        return view.plan(period)
    except StoreError:
        return None


def _trend(view: StoreView, period: str, state: str | None, scales: dict[str, float]) -> pd.DataFrame:
    """All-CLEC and retail value per measure, standard (and benchmark) and month, up to 12 months ending
    with `period`, pooled over the state/product cells (sums of numerators over sums of denominators).
    Cells judged against different benchmarks (PO-5: 95 % electronic, 90 % manual) or by parity are not
    pooled together, so that each line can be drawn against its own standard; cells with no standard
    (no records to place) have no line."""
    months = [calmod.period_text(calmod.period_index(period) - k) for k in range(11, -1, -1)]
    have = [m for m in months if view.has("results", m)]
    frames = []
    for month in have:
        columns = ["measure_id", "state", "scope", "standard", "benchmark", "unit", "clec_n", "clec_numerator",
                   "clec_value", "retail_n", "retail_numerator"]  # fmt: skip
        frame = view.frame("results", month, columns)
        frame = frame[(frame["scope"] == "clec_aggregate") & frame["standard"].notna()]
        if state is not None:
            frame = frame[frame["state"] == state]
        frames.append(frame.assign(month=month))
    if not frames:
        return pd.DataFrame(columns=TREND_COLUMNS)
    both = pd.concat(frames, ignore_index=True)
    both["benchmark"] = both["benchmark"].where(both["standard"] == "benchmark")
    sums = both.groupby(["measure_id", "standard", "benchmark", "month", "unit"], as_index=False, dropna=False)[
        ["clec_n", "clec_numerator", "retail_n", "retail_numerator"]
    ].sum()
    # the factor from the tested quantity to the reported value (100 for percent, per 100 lines): from the
    # plan the run used, else from the cells themselves (clec_value = clec_numerator / clec_n x factor)
    observed = both[both["clec_numerator"] > 0]
    ratio = (observed["clec_value"] * observed["clec_n"] / observed["clec_numerator"]).groupby(observed["measure_id"])
    scale = sums["measure_id"].map(scales).fillna(sums["measure_id"].map(ratio.median().round(6))).fillna(1.0)
    sums["clec_value"] = sums["clec_numerator"] / sums["clec_n"].where(sums["clec_n"] > 0) * scale
    sums["retail_value"] = sums["retail_numerator"] / sums["retail_n"].where(sums["retail_n"] > 0) * scale
    return sums[TREND_COLUMNS]


def _notes(view: StoreView, period: str, state: str | None) -> pd.DataFrame:
    """Exclusions per measure and reason (from the records tables, counted by Arrow) and rejects per reason."""
    rows = []
    for measure_id in view.measures(period):  # one measure at a time: the memory of the largest one
        table = view.table("records", period, ["exclusion_reason", "state", "included"], measure_id=measure_id)
        frame = table.to_pandas()
        if state is not None:
            frame = frame[frame["state"].astype(str) == state]
        excluded = frame[~frame["included"].astype(bool)]
        for reason, count in excluded["exclusion_reason"].astype(str).value_counts().sort_index().items():
            rows.append({"kind": "exclusion", "measure_id": measure_id, "reason": reason,
                         "records": int(count)})  # fmt: skip
    if view.has("rejects", period):
        rejects = view.frame("rejects", period, ["reason"])
        for reason, count in rejects["reason"].astype(str).value_counts().sort_index().items():
            rows.append({"kind": "rejected", "measure_id": "", "reason": reason, "records": int(count)})
    return pd.DataFrame(rows, columns=["kind", "measure_id", "reason", "records"])


# --------------------------------------------------------------------------- writing


def write(report: Report, out_dir: Path) -> list[Path]:
    """report.html and the CSV tables into out_dir (created); returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name in ("summary", "payments", "measures", "misses", "trend", "excused", "adjustments", "notes"):
        path = out_dir / f"{'excusals' if name == 'excused' else name}.csv"
        csv_safe.frame(getattr(report, name)).to_csv(path, index=False)
        files.append(path)
    path = out_dir / "report.html"
    path.write_text(render(report), encoding="utf-8")
    return [path, *files]


def render(r: Report) -> str:
    return report_html.page(r)
