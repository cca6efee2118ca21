"""`carrier-sla what-if`: recompute a published month under a modified plan, publishing nothing.

The baseline is what the store publishes for the month: its results and ledger, and the plan
document of the run that produced the results (runs/RUN_ID/plan.json). The what-if plan is
another plan (--plan) or that document changed by --set specs, applied in order (exclusion.CODE=off,
MEASURE.exclusion.CODE=off, /json/pointer=VALUE: the grammar is in carrier_sla.plan.whatif_spec).
The changed document is validated like any plan (PlanError lists every problem with its pointer).
The month is recomputed from the input data with the pipeline's stages (load_inputs, compute) and
the store's escalation state of the month before, read only: nothing is written into the store.
The report compares records excluded, cells (status, method, values, p-value) and money (ledger
total, per payee, per measure) between the baseline and the what-if.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from carrier_sla import vocabulary
from carrier_sla.engine import cluster, period_results, pipeline, remedy_chain
from carrier_sla.engine import load as inputs
from carrier_sla.engine import period as period_loop
from carrier_sla.errors import StoreError, UsageError
from carrier_sla.inputs import excusals, ingest, spill
from carrier_sla.plan.load import Plan
from carrier_sla.plan.whatif_spec import what_if_plan
from carrier_sla.store import csv_safe
from carrier_sla.store.view import open_store
from carrier_sla.timings import Timings

CELL = list(vocabulary.CELL_KEY)
LINE = list(vocabulary.PAYMENT_KEY)
NUMBERS = ["clec_n", "clec_value", "retail_value", "p_value"]
STATUSES = vocabulary.STATUSES
SHOWN = 40  # status changes listed in the text output (all of them in --json and --out)


# ------------------------------------------------------------------------ baseline and what-if


@dataclass(frozen=True)
class Side:
    """One side of the comparison: cells, ledger lines (amounts in cents) and exclusion counts."""

    cells: pd.DataFrame  # CELL, status, method, NUMBERS
    ledger: pd.DataFrame  # LINE + occurrences, cents
    excluded: pd.DataFrame  # measure_id, code, records


@dataclass(frozen=True)
class Baseline:
    run_id: str
    manifest: dict[str, Any]
    document: dict[str, Any] | None  # None: the run kept no plan.json and its plan file has changed since
    side: Side


def read_baseline(out: Path, period: str) -> Baseline:
    """The store's published results and ledger of `period` and the run (manifest, plan) behind them."""
    view = open_store(out)  # resolved once: every table below from the same publication
    run_id = view.run_of(period)
    if run_id is None:
        months = ", ".join(view.periods()) or "none"
        raise UsageError(f"period {period} is not published in the store {out} (published: {months})")
    manifest = view.manifest(run_id=run_id)
    try:  # the plan the month was judged under; None when it cannot be read back (what-if then needs --plan)
        document = view.plan(period).document
    except StoreError:
        document = None
    view.check(period)  # every file its runs wrote is there
    results = view.results(period)
    ledger = view.remedies(period) if view.has("remedies", period) else None
    counts = []
    for measure_id in view.measures(period):  # one measure at a time: the memory of the largest one
        reasons = view.table("records", period, ["exclusion_reason"], measure_id=measure_id)["exclusion_reason"]
        counts.append(pd.DataFrame({"measure_id": measure_id, "code": reasons.to_pandas().astype(object)}))
    codes = pd.concat(counts, ignore_index=True) if counts else pd.DataFrame(columns=["measure_id", "code"])
    return Baseline(run_id, manifest, document, Side(_cells(results), _lines(ledger), _excluded(codes)))


def compute_what_if(
    plan: Plan,
    out: Path,
    period: str,
    data_dir: Path,
    baseline: Baseline,
    partition_rows: int = spill.DEFAULT_PARTITION_ROWS,
) -> tuple[Side, bool]:
    """The month under `plan` from the input data, with the baseline run's as-of date and reject limit,
    the store's misses and escalation state of the month before (read only); and whether the input
    files are the baseline run's (same sha256). The month is computed as a run computes it
    (carrier_sla.engine.period), over partitions of `partition_rows` in a temporary folder when the
    input is larger: in bounded memory."""
    pipeline.check_in_force(plan, period)
    manifest = baseline.manifest
    as_of = dt.date.fromisoformat(manifest["as_of"]) if manifest.get("as_of") else None
    limit = float(manifest.get("max_reject_rate", pipeline.DEFAULT_MAX_REJECT_RATE))
    chain = remedy_chain.check_chain(out, period) if plan.remedies is not None else None
    found = ingest.discover(Path(data_dir), inputs.needed_record_types(plan))
    files = [f for sources in found.values() for f in sources]
    same = sorted(f.sha256() for f in files) == sorted(i["sha256"] for i in manifest.get("inputs", []))
    stricter = plan.statistics.alpha_after_miss is not None
    missed = period_results.previous_misses(out, period, plan) if stricter else set()
    excused = excusals.read(Path(data_dir))  # the month's approved exclusions apply as in a run
    excused_now = excused.of_period(period) if excused is not None else ()
    judged = excusals.with_record_exclusions(plan, excused_now)
    parts = spill.partition_count(plan, found, partition_rows)
    # partition files only in the folder; pyarrow's memory pool a run's (period.run_pool)
    with tempfile.TemporaryDirectory(prefix="carrier-sla-what-if-") as folder, period_loop.run_pool():
        computed = period_loop.compute(
            judged,
            period,
            period_loop.source_for(found, parts, Path(folder)),
            count_exclusions,
            cluster.InProcess(),
            max_reject_rate=limit,
            timings=Timings(),
            as_of=as_of,
            missed=missed,
        )
    results = computed.results
    counts: list[pd.DataFrame] = computed.sunk  # exclusions counted per measure and code, table by table
    results = excusals.apply_cells(results, excused_now, strict=False)
    results = results.assign(
        provisional=bool(manifest.get("provisional", False)), provisional_as_of=manifest.get("provisional_as_of")
    )
    ledger = None
    if chain is not None:  # this month only: later months are not part of the comparison
        paid = remedy_chain.compute_chain(plan, out, period, results, remedy_chain.Chain(chain.previous, ()))
        ledger = paid[0].ledger
    excluded = pd.concat([c for c in counts if len(c)] or [_excluded(pd.DataFrame(columns=["measure_id", "code"]))])
    excluded = excluded.groupby(["measure_id", "code"], sort=True)["records"].sum().reset_index()
    return Side(_cells(results), _lines(ledger), excluded.astype({"records": "int64"})), same


def count_exclusions(measure_id: str, table: pa.Table, part: int) -> pd.DataFrame:
    """What-if's sink: the records of a records/ table counted per exclusion code (the table is not kept)."""
    codes = table.column("exclusion_reason").to_pandas().astype(object)
    return _excluded(pd.DataFrame({"measure_id": measure_id, "code": codes}))


def _cells(results: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame({c: results[c].astype(str) for c in CELL})
    frame["status"] = results["status"].astype(str)
    frame["method"] = results["method"].astype(object).where(results["method"].notna(), "").astype(str)
    for column in NUMBERS:
        frame[column] = pd.to_numeric(results[column], errors="coerce").astype(float)
    return frame


def _lines(ledger: pd.DataFrame | None) -> pd.DataFrame:
    if ledger is None or ledger.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c in LINE else float) for c in [*LINE, "occ", "cents"]})
    frame = pd.DataFrame({c: ledger[c].astype(object).where(ledger[c].notna(), "").astype(str) for c in LINE})
    frame["occ"] = ledger["occurrences"].astype(float)
    frame["cents"] = [int(Decimal(a) * 100) for a in ledger["amount"]]  # one per ledger line, exact
    return frame


def _excluded(records: pd.DataFrame) -> pd.DataFrame:
    codes = records[records["code"].notna()]
    return codes.groupby(["measure_id", "code"], sort=True).size().rename("records").reset_index()


# ------------------------------------------------------------------------ the comparison


def compare_cells(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Cells whose status, method, CLEC n, CLEC or retail value or p-value differ (a cell on one side
    only has the status 'absent' on the other); columns FIGURE_before / FIGURE_after, status_changed."""
    both = before.merge(after, on=CELL, how="outer", suffixes=("_before", "_after"))
    for side in ("before", "after"):
        both[f"status_{side}"] = both[f"status_{side}"].fillna("absent")
        both[f"method_{side}"] = both[f"method_{side}"].fillna("")
    both["status_changed"] = both["status_before"] != both["status_after"]
    changed = both["status_changed"] | (both["method_before"] != both["method_after"])
    for column in NUMBERS:
        a, b = both[f"{column}_before"].to_numpy(float), both[f"{column}_after"].to_numpy(float)
        changed |= ~np.isclose(a, b, rtol=1e-12, atol=0.0, equal_nan=True)
    columns = [*CELL, "status_before", "status_after", "status_changed"]
    columns += [f"{c}_{s}" for c in ("method", *NUMBERS) for s in ("before", "after")]
    both = both.astype({"clec_n_before": "Int64", "clec_n_after": "Int64"})
    return both.loc[changed, columns].sort_values(CELL, kind="stable").reset_index(drop=True)


def compare_lines(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Every ledger line of either side: occurrences and cents before/after, and the difference."""
    both = before.merge(after, on=LINE, how="outer", suffixes=("_before", "_after"))
    for column in ("cents_before", "cents_after"):
        both[column] = both[column].fillna(0).astype("int64")
    both["cents_difference"] = both["cents_after"] - both["cents_before"]
    return both.sort_values(LINE, kind="stable").reset_index(drop=True)


def _money(cents: Any) -> str:
    return f"{Decimal(int(cents)).scaleb(-2):.2f}"


def _totals(lines: pd.DataFrame, by: str) -> list[dict[str, Any]]:
    """Money before/after/difference per value of `by`, the largest difference first."""
    sums = lines.groupby(by, sort=True)[["cents_before", "cents_after", "cents_difference"]].sum()
    sums = sums.iloc[np.argsort(-sums["cents_difference"].abs().to_numpy(), kind="stable")]
    return [
        {by: key, "before": _money(b), "after": _money(a), "difference": _money(d)}
        for key, (b, a, d) in zip(sums.index, sums.to_numpy(), strict=True)
    ]


def _plain(x: Any) -> Any:
    """JSON-ready: NaN as null."""
    return None if x is pd.NA or (isinstance(x, float) and x != x) else x


def summarize(
    out: Path,
    period: str,
    data_dir: Path,
    baseline: Baseline,
    plan: Plan,
    changes: list[str],
    what_if: Side,
    same_inputs: bool,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The JSON summary, the changed cells and the ledger lines compared."""
    cells = compare_cells(baseline.side.cells, what_if.cells)
    lines = compare_lines(baseline.side.ledger, what_if.ledger)
    before, after = baseline.side.cells["status"].value_counts(), what_if.cells["status"].value_counts()
    statuses = sorted(set(before.index) | set(after.index), key=lambda s: (*STATUSES, s).index(s))
    excl = baseline.side.excluded.merge(what_if.excluded, on=["measure_id", "code"], how="outer", suffixes=("_b", "_a"))
    excl = excl.fillna({"records_b": 0, "records_a": 0})
    excl = excl[excl["records_b"] != excl["records_a"]]
    moved = cells[cells["method_before"] != cells["method_after"]]
    methods = moved.groupby(["method_before", "method_after"]).size().reset_index(name="cells")
    methods = methods.sort_values("cells", ascending=False, kind="stable")
    method_changes = [
        {"from": a or None, "to": b or None, "cells": int(n)}
        for a, b, n in zip(methods["method_before"], methods["method_after"], methods["cells"], strict=True)
    ]
    base_plan = baseline.manifest.get("plan", {})
    summary: dict[str, Any] = {
        "published": False,
        "note": "what-if only: nothing was published, the store is unchanged",
        "store": str(out),
        "period": period,
        "baseline": {"run_id": baseline.run_id, "plan": {k: base_plan.get(k) for k in ("id", "version", "sha256")}},
        "what_if": {
            "plan": {"id": plan.id, "version": plan.version, "sha256": plan.sha256, "source": plan.source},
            "changes": changes,
        },
        "data": {"dir": str(data_dir), "same_inputs_as_baseline": same_inputs, "as_of": baseline.manifest.get("as_of")},
        "verdicts": {s: {"before": int(before.get(s, 0)), "after": int(after.get(s, 0))} for s in statuses},
        "exclusions": [
            {"measure_id": m, "code": c, "before": int(b), "after": int(a)}
            for m, c, b, a in excl[["measure_id", "code", "records_b", "records_a"]].itertuples(index=False)
        ],
        "method_changes": method_changes,
        "cells_changed": len(cells),
        "status_changes": [
            {k: _plain(v) for k, v in row.items() if k != "status_changed"}
            for row in cells[cells["status_changed"]].to_dict("records")
        ],
        "remedies": None,
    }
    if len(lines) or plan.remedies is not None:
        currency = plan.remedies.currency if plan.remedies else baseline.manifest.get("remedies", {}).get("currency")
        summary["remedies"] = {
            "currency": currency,
            "total": {
                "before": _money(lines["cents_before"].sum()),
                "after": _money(lines["cents_after"].sum()),
                "difference": _money(lines["cents_difference"].sum()),
            },
            "by_payee": _totals(lines, "payee"),
            "by_measure": _totals(lines, "measure_id"),
        }
    return summary, cells, lines


# ------------------------------------------------------------------------ output


def _status_table(changes: list[dict[str, Any]]) -> str:
    """Status changes as a text table: n, CLEC and retail values, p-value, each was/now."""
    frame = pd.DataFrame(changes[:SHOWN])
    frame["change"] = frame["status_before"] + " -> " + frame["status_after"]
    names = {"clec_n": ("n", "{:.0f}"), "clec_value": ("clec", "{:.2f}"), "retail_value": ("retail", "{:.2f}")}
    names["p_value"] = ("p", "{:.2g}")
    columns = ["measure_id", "state", "product", "submeasure", "carrier_id", "change"]
    for column, (name, form) in names.items():
        for side, label in (("before", "was"), ("after", "now")):
            values = frame[f"{column}_{side}"]
            frame[f"{name}_{label}"] = [form.format(v) if pd.notna(v) else "" for v in values]
            columns.append(f"{name}_{label}")
    return frame[columns].to_string(index=False)


def format_text(summary: dict[str, Any]) -> str:
    """The summary for a reader: what was compared, verdicts, status changes, money."""
    base, new = summary["baseline"], summary["what_if"]
    out = [
        f"WHAT-IF ONLY: nothing was published; {summary['store']} is unchanged.",
        f"period {summary['period']}: baseline run {base['run_id']} (plan {base['plan']['id']} "
        f"{base['plan']['version']}) vs plan {new['plan']['id']} {new['plan']['version']} ({new['plan']['source']})",
        *(f"  --set {c}" for c in new["changes"]),
    ]
    if not summary["data"]["same_inputs_as_baseline"]:
        out.append(
            f"WARNING: the input files in {summary['data']['dir']} differ from the baseline run's: "
            "the differences below are not only the plan's"
        )
    excluded, verdicts = summary["exclusions"], summary["verdicts"].items()
    if excluded:
        out.append("\nrecords excluded (measure, rule: before -> after):")
        out += [f"  {e['measure_id']:<6} {e['code']:<34} {e['before']:>8,} -> {e['after']:,}" for e in excluded]
    out.append("\nverdicts (all cells):  before  after  change")
    out += [f"  {s:<20} {v['before']:>7,} {v['after']:>6,} {v['after'] - v['before']:>+7,}" for s, v in verdicts]
    if summary["method_changes"]:
        out.append("\ntest method changed:")
        out += [f"  {m['from'] or '-'} -> {m['to'] or '-'}: {m['cells']:,} cell(s)" for m in summary["method_changes"]]
    changes = summary["status_changes"]
    out.append(f"\ncells whose status changed: {len(changes)} (with any figure changed: {summary['cells_changed']})")
    if changes:
        out.append(_status_table(changes))
        if len(changes) > SHOWN:
            out.append(f"  ... {len(changes) - SHOWN} more (all of them with --json or --out)")
    money = summary["remedies"]
    if money is None:
        out.append("\nremedies: neither plan pays remedies")
        return "\n".join(out)
    t = money["total"]
    out.append(
        f"\nremedies: total {vocabulary.money(t['before'], money['currency'])} -> "
        f"{vocabulary.money(t['after'], money['currency'])} "
        f"(difference {vocabulary.money(t['difference'], money['currency'], sign=True)})"
    )
    for by, key in (("payee", "payee"), ("measure", "measure_id")):
        rows = [r for r in money[f"by_{by}"] if Decimal(r["difference"])]
        out.append(f"  per {by}" + ("" if rows else ": no change"))
        out += [
            f"    {r[key]:<20} {Decimal(r['before']):>12,.2f} -> {Decimal(r['after']):>12,.2f} "
            f"({Decimal(r['difference']):+,.2f})"
            for r in rows
        ]
    return "\n".join(out)


def write_files(folder: Path, summary: dict[str, Any], cells: pd.DataFrame, lines: pd.DataFrame) -> list[Path]:
    """verdicts.csv (changed cells), payments.csv (every ledger line of either side), summary.json."""
    folder.mkdir(parents=True, exist_ok=True)
    payments = lines[LINE].assign(
        occurrences_before=lines["occ_before"],
        occurrences_after=lines["occ_after"],
        amount_before=lines["cents_before"].map(_money),
        amount_after=lines["cents_after"].map(_money),
        difference=lines["cents_difference"].map(_money),
    )
    paths = [folder / "verdicts.csv", folder / "payments.csv", folder / "summary.json"]
    csv_safe.frame(cells).to_csv(paths[0], index=False)
    csv_safe.frame(payments).to_csv(paths[1], index=False)
    paths[2].write_text(json.dumps(summary, indent=1) + "\n")
    return paths


def what_if(
    store: Path, period: str, data_dir: Path, plan: str | None = None, sets: tuple[str, ...] | list[str] = ()
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The published `period` against the month recomputed under the changed plan (`plan`, another plan
    file, bundled id or folder of versions, default the baseline run's; `sets`, the changes applied to it): the summary
    (JSON-ready), the changed cells and every ledger line of either side. Nothing is written."""
    period = pipeline.check_period(period)
    if not plan and not sets:
        raise UsageError("what-if needs --plan OTHER or at least one --set SPEC")
    baseline = read_baseline(store, period)
    changed = what_if_plan(plan, list(sets), baseline.document, baseline.run_id, period)
    side, same = compute_what_if(changed, store, period, data_dir, baseline)
    return summarize(store, period, data_dir, baseline, changed, list(sets), side, same)
