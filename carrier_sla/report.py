"""The monthly filing report: one self-contained HTML file and the same tables as CSV.

`carrier-sla report --store STORE --period P [--state S] --out DIR` writes DIR/report.html (inline
CSS and SVG charts: no script, no network access needed to view it) and DIR/summary.csv,
payments.csv, measures.csv, misses.csv, trend.csv, notes.csv. Layout, in the order commission
staff read it: summary by state and payments by payee; misses by measure (chart); per measure
and submeasure the all-CLEC results in the usual layout (CLEC and retail numerator, denominator,
result, standard, statistic, critical value, verdict) with the CLEC cells that missed beneath;
CLEC vs retail over the last 12 months per measure (charts); the cells the commission excused
(excusals.csv: verdict kept, nothing paid) and, for a restated month, the adjustments per payee
(adjustments.csv: paid, restated, adjustment, with both run ids); notes on provisional data,
exclusions and rejected records. Every figure comes from the store's published view.
"""

from __future__ import annotations

import argparse
import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from carrier_sla import calendar as calmod
from carrier_sla import store
from carrier_sla.errors import UsageError
from carrier_sla.plan import Plan, plan_from_document

STATUSES = ("met", "miss", "no_activity", "no_retail_analog", "undetermined", "diagnostic")
MEASURE_COLUMNS = [
    "measure_id", "submeasure", "state", "product", "clec_numerator", "clec_n", "clec_value", "retail_numerator",
    "retail_n", "retail_value", "standard", "benchmark", "method", "statistic", "critical_value", "alpha", "p_value",
    "status",
]  # fmt: skip
EXCUSAL_COLUMNS = ["measure_id", "submeasure", "state", "product", "scope", "carrier_id", "status", "excusal_reference",
                   "excusal_reason"]  # fmt: skip
ADJUSTMENT_COLUMNS = ["payee", "lines", "paid", "restated", "adjustment", "paid_run_id", "restated_run_id", "note"]


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
    trend: pd.DataFrame  # per measure and month: CLEC and retail values over the last 12 months
    notes: pd.DataFrame  # exclusions by measure and reason, rejects by reason
    total_paid: Decimal
    titles: dict[str, str]
    excused: pd.DataFrame | None = None  # cells excused by the commission (status kept, nothing paid)
    adjustments: pd.DataFrame | None = None  # a restated month: per payee paid, restated, adjustment


def build(out: Path, period: str, state: str | None = None) -> Report:
    """Gather the report's tables from the store's current view."""
    if period not in store.published_periods(out, "results"):
        raise UsageError(f"{out}: no published results for period {period}")
    results = store.read_table(out, "results", period).to_pandas()
    results["period"] = results["period"].astype(str)
    if state is not None:
        if state not in set(results["state"]):
            raise UsageError(f"period {period} has no results for state {state!r}")
        results = results[results["state"] == state]
    run_id = store.current_provenance(out).get("results", {}).get(f"period={period}", "")
    plan = f"{results['plan_id'].iloc[0]} {results['plan_version'].iloc[0]}" if len(results) else ""
    clec = results[results["scope"] == "clec"]
    summary = clec.pivot_table(index="state", columns="status", aggfunc="size", fill_value=0)
    summary = summary.reindex(columns=[s for s in STATUSES if s in summary.columns]).reset_index()
    ledger = _ledger(out, period, state)
    payments = (
        ledger.groupby(["payee", "tier"], as_index=False)
        .agg(lines=("amount", "size"), amount_uncapped=("amount_uncapped", "sum"), amount=("amount", "sum"))
        .sort_values(["tier", "payee"])
        if len(ledger)
        else pd.DataFrame(columns=["payee", "tier", "lines", "amount_uncapped", "amount"])
    )
    results = results.assign(**{c: results.get(c) for c in ("excusal_reference", "excusal_reason")})  # older runs
    clec = results[results["scope"] == "clec"]
    shown = [*MEASURE_COLUMNS, "excusal_reference"]
    measures = results[results["scope"] == "clec_aggregate"][shown].reset_index(drop=True)
    misses = clec[clec["status"] == "miss"][["carrier_id", *shown]].sort_values(
        ["measure_id", "state", "product", "submeasure", "carrier_id"]
    )
    excused = results[results["excusal_reference"].notna()][EXCUSAL_COLUMNS].reset_index(drop=True)
    plan_used = _plan_of(out, run_id)
    titles = {m.id: m.title for m in plan_used.measures} if plan_used else {}
    scales = {m.id: m.scale for m in plan_used.measures} if plan_used else {}
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
        trend=_trend(out, period, state, scales),
        notes=_notes(out, period, state),
        total_paid=sum(ledger["amount"], Decimal("0.00")) if len(ledger) else Decimal("0.00"),
        titles=titles,
        excused=excused,
        adjustments=_adjustments(out, period, state),
    )


def _adjustments(out: Path, period: str, state: str | None) -> pd.DataFrame:
    """A restated month's adjustments per payee (no rows unless the month was published final over final)."""
    folder = Path(out) / "current" / "adjustments" / f"period={period}"
    if not folder.is_dir():
        return pd.DataFrame(columns=ADJUSTMENT_COLUMNS)
    lines = ds.dataset(folder, format="parquet").to_table().to_pandas()
    if state is not None:
        lines = lines[lines["state"] == state]
    if lines.empty:
        return pd.DataFrame(columns=ADJUSTMENT_COLUMNS)
    zero = Decimal("0.00")
    by = lines.groupby("payee", sort=True)
    return pd.DataFrame(
        {
            "payee": list(by.groups),
            "lines": by.size().to_list(),
            "paid": [sum(g["paid"], zero) for _, g in by],
            "restated": [sum(g["restated"], zero) for _, g in by],
            "adjustment": [sum(g["adjustment"], zero) for _, g in by],
            "paid_run_id": by["paid_run_id"].first().to_list(),
            "restated_run_id": by["restated_run_id"].first().to_list(),
            "note": by["note"].first().to_list(),
        }
    )[ADJUSTMENT_COLUMNS]


def _ledger(out: Path, period: str, state: str | None) -> pd.DataFrame:
    if period not in store.published_periods(out, "remedies"):
        return pd.DataFrame(columns=["payee", "tier", "state", "amount", "amount_uncapped"])
    ledger = store.read_table(out, "remedies", period).to_pandas()
    return ledger if state is None else ledger[ledger["state"] == state]


def _plan_of(out: Path, run_id: str) -> Plan | None:
    """The plan the run used (runs/RUN_ID/plan.json), if the run kept it."""
    path = Path(out) / "runs" / run_id / "plan.json"
    return plan_from_document(json.loads(path.read_text()), str(path)) if path.exists() else None


def _trend(out: Path, period: str, state: str | None, scales: dict[str, float]) -> pd.DataFrame:
    """All-CLEC and retail value per measure and month, up to 12 months ending with `period`,
    pooled over the state/product cells (sums of numerators over sums of denominators)."""
    months = [calmod.period_text(calmod.period_index(period) - k) for k in range(11, -1, -1)]
    have = [m for m in months if m in store.published_periods(out, "results")]
    frames = []
    for month in have:
        columns = ["measure_id", "state", "scope", "unit", "clec_n", "clec_numerator", "clec_value", "retail_n",
                   "retail_numerator"]  # fmt: skip
        frame = store.read_table(out, "results", month).select(columns).to_pandas()
        frame = frame[frame["scope"] == "clec_aggregate"]
        if state is not None:
            frame = frame[frame["state"] == state]
        frames.append(frame.assign(month=month))
    if not frames:
        return pd.DataFrame(columns=["measure_id", "month", "clec_value", "retail_value"])
    both = pd.concat(frames, ignore_index=True)
    sums = both.groupby(["measure_id", "month", "unit"], as_index=False)[
        ["clec_n", "clec_numerator", "retail_n", "retail_numerator"]
    ].sum()
    # the factor from the tested quantity to the reported value (100 for percent, per 100 lines): from the
    # plan the run used, else from the cells themselves (clec_value = clec_numerator / clec_n x factor)
    observed = both[both["clec_numerator"] > 0]
    ratio = (observed["clec_value"] * observed["clec_n"] / observed["clec_numerator"]).groupby(observed["measure_id"])
    scale = sums["measure_id"].map(scales).fillna(sums["measure_id"].map(ratio.median().round(6))).fillna(1.0)
    sums["clec_value"] = sums["clec_numerator"] / sums["clec_n"].where(sums["clec_n"] > 0) * scale
    sums["retail_value"] = sums["retail_numerator"] / sums["retail_n"].where(sums["retail_n"] > 0) * scale
    return sums[["measure_id", "month", "unit", "clec_value", "retail_value"]]


def _notes(out: Path, period: str, state: str | None) -> pd.DataFrame:
    """Exclusions per measure and reason (from the records tables, counted by Arrow) and rejects per reason."""
    rows = []
    folder = Path(out) / "records" / f"period={period}"
    for measure_dir in sorted(folder.glob("measure=*")):
        table = ds.dataset(measure_dir, format="parquet").to_table(columns=["exclusion_reason", "state", "included"])
        frame = table.to_pandas()
        if state is not None:
            frame = frame[frame["state"].astype(str) == state]
        excluded = frame[~frame["included"].astype(bool)]
        for reason, count in excluded["exclusion_reason"].astype(str).value_counts().sort_index().items():
            rows.append({"kind": "exclusion", "measure_id": measure_dir.name.split("=", 1)[1], "reason": reason,
                         "records": int(count)})  # fmt: skip
    if period in store.published_periods(out, "rejects"):
        rejects = store.read_table(out, "rejects", period).select(["reason"]).to_pandas()
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
        getattr(report, name).to_csv(path, index=False)
        files.append(path)
    path = out_dir / "report.html"
    path.write_text(render(report), encoding="utf-8")
    return [path, *files]


def render(r: Report) -> str:
    from carrier_sla.report_html import page

    return page(r)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="the monthly filing report: one HTML file and its tables as CSV")
    p.add_argument("--store", required=True, type=Path)
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument("--state", help="only this state")
    p.add_argument("--out", required=True, type=Path, help="folder for report.html and the CSV tables")
    p.set_defaults(command_module="report")
    return p


def command(args: argparse.Namespace) -> int:
    report = build(args.store, args.period, args.state)
    files = write(report, args.out)
    state = f" {report.state}" if report.state else ""
    kind = f"PROVISIONAL as of {report.provisional_as_of}" if report.provisional else "final"
    excused = len(report.excused) if report.excused is not None else 0
    restated = ""
    if report.adjustments is not None and len(report.adjustments):
        net = sum(report.adjustments["adjustment"], Decimal("0.00"))
        restated = f"; restated: adjustments {net:+,.2f} against run {report.adjustments['paid_run_id'].iloc[0]}"
    excusals = f", {excused} cell(s) excused" if excused else ""
    print(f"report {report.period}{state} ({kind}), run {report.run_id}: {len(report.misses)} CLEC misses, "
          f"{report.total_paid:,.2f} paid{excusals}{restated}")  # fmt: skip
    for path in files:
        print(f"  {path}")
    return 0


def generated_at() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))
