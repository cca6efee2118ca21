"""The sections of one cell's explanation, reconstructed from the plan and the store's tables (pure).

Each function takes the plan, the measure, the cell's result row (missing values as None) and the
tables it needs (the measure's records/ rows, the period's remedies ledger and escalation table)
and returns one JSON-ready section: the plan rule in words (`rule`), the populations behind the
figures (`populations`, `counts`), the test that decided the cell (`verdict_section`), the ledger
lines with their arithmetic or why nothing was paid (`remedies_section`), and the records that
weigh most on the gap (`top_records`). carrier_sla.readers.explain puts them together, renders and does the I/O.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from carrier_sla import vocabulary
from carrier_sla.engine.verdicts import standard_for
from carrier_sla.plan.load import Condition, Measure, Plan
from carrier_sla.plan.remedy_rules import CENT

OPS = {"eq": "=", "ne": "!=", "in": "in", "not_in": "not in", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
UNARY = {"is_null": "is null", "not_null": "is not null", "is_true": "is true", "is_false": "is false"}
UNITS = {"percent": "%", "business_days": " business days", "hours": " h", "per_100_lines": " per 100 lines"}
KEY = vocabulary.CELL_KEY
SOURCE_ORDER = ["source_file", "source_row", "record_id"]  # ties of the worst records: input order
LISTED = ["record_id", "carrier_id", "value", "source_file", "source_row"]  # a listed record's records/ columns

# ------------------------------------------------------------------------------- formatting


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float | np.floating) and np.isnan(x))


def num(x: Any, places: int = 2) -> str:
    """A number for people: thousands separators, whole numbers without decimals, n/a when missing."""
    if _missing(x):
        return "n/a"
    x = float(x)
    if np.isinf(x):
        return "-inf" if x < 0 else "inf"
    return f"{int(x):,}" if x.is_integer() and abs(x) < 1e15 else f"{x:,.{places}f}"


def val(x: Any, unit: str, places: int = 2) -> str:
    """A figure in its reporting unit with `places` decimals: 78.79%, 4.42 business days."""
    return "n/a" if _missing(x) else f"{float(x):,.{places}f}{UNITS.get(unit, f' {unit}' if unit else '')}"


def pval(p: Any) -> str:
    if _missing(p):
        return "n/a"
    return "0 (below 1e-300)" if p == 0 else f"{p:.4f}" if p >= 0.001 else f"{p:.2e}"


def money(x: Decimal) -> str:
    return vocabulary.money(x)


def text_table(rows: list[list[str]], indent: str = "  ", right: tuple[int, ...] = ()) -> list[str]:
    """Rows of text cells as aligned lines; the columns in `right` right-aligned (numbers)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    cells = [
        [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))] for r in rows
    ]
    return [(indent + "  ".join(r)).rstrip() for r in cells]


def json_value(x: Any) -> Any:
    """A value for JSON: numpy scalars as Python, NaN as null, +-inf and Decimal as text."""
    x = x.item() if isinstance(x, np.generic) else x
    if isinstance(x, float) and not np.isfinite(x):
        return None if np.isnan(x) else str(x)
    return str(x) if isinstance(x, Decimal) else x


def plain_row(row: dict[Any, Any]) -> dict[str, Any]:
    """A row with missing values as None and numpy scalars as Python values."""
    return {str(k): None if _missing(v) else (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}


# ------------------------------------------------------------------------------- the plan in words


def condition_text(c: Condition) -> str:
    """A plan condition as text: `order_type not in [new, change]`, `requested_due_date > standard_due_date`."""
    if c.op in UNARY:
        return f"{c.field} {UNARY[c.op]}"
    rhs = c.field_ref or (f"[{', '.join(map(str, c.value))}]" if isinstance(c.value, tuple) else str(c.value))
    return f"{c.field} {OPS[c.op]} {rhs}"


def value_text(measure: Measure) -> str:
    """How the plan computes one record's value, in words."""
    v = measure.value
    if v.kind == "within_business_hours":
        limits = ", ".join(f"{k} {num(h)}" for k, h in v.limit_values)
        within = f"(by {v.limit_by}: {limits})" if v.limit_by else num(v.limit_hours)
        return f"1 when {v.to_field} is within {within} business hours of {v.from_field}, else 0"
    if v.kind == "on_or_before":
        return f"1 when {v.anchor} is on or before {v.to_field}, else 0"
    if v.kind == "business_days":
        return f"business days d with {v.from_field} <= d < {v.to_field} (floored at 0)"
    if v.kind == "duration_hours":
        text = f"hours from {v.from_field} to {v.to_field}" + (f" minus {v.minus}" if v.minus else "")
        return text + (f"; 1 when at most {num(v.at_most)} h, else 0" if v.at_most is not None else "")
    if v.kind == "related_record":
        where = " and ".join(condition_text(c) for c in v.where)
        window = f"{v.window_days} calendar days" if v.window_days is not None else f"{num(v.window_hours)} h"
        return (
            f"1 when a {v.records} record ({v.related_time}) with the same {' and '.join(v.match_on)} is "
            f"{v.outcome} within {window} {v.direction} {v.anchor}" + (f" (counting only {where})" if where else "")
        )
    if v.kind == "count" and measure.rate_base is not None:
        base = measure.rate_base
        return f"1 per record, per {num(base.per)} {base.field} of {base.records}"
    return v.kind


def threshold_why(plan: Plan, cell: dict[str, Any]) -> str:
    """Which critical value or alpha the plan gives the cell, and why (its sample-size row, a miss the month before)."""
    st, n = plan.statistics, int(cell["clec_n"])
    if st.critical_value is not None:
        return f"critical value {st.critical_value:g}: the plan's single critical value"
    tables = dict(st.critical_values)
    if tables:
        tier, low = (cell["scope"] if cell["scope"] in tables else "clec"), 0
        for max_n, value in tables[tier]:
            if max_n is None or n <= max_n:
                span = f"{num(low + 1)}-{num(max_n)}" if max_n is not None else f"above {num(low)}"
                table = f"the plan's sample-size table ({tier})"
                return f"critical value {value:g} from {table} for n_clec {span} (this cell: {num(n)})"
            low = max_n
    after = st.alpha_after_miss
    if after is not None and after != st.alpha and cell["alpha"] is not None and np.isclose(cell["alpha"], after):
        return f"alpha_after_miss {after:g}: the cell missed the month before (plan alpha {st.alpha:g})"
    return f"alpha {st.alpha:g} from the plan" + (" (the cell did not miss the month before)" if after else "")


def rule(plan: Plan, measure: Measure, cell: dict[str, Any]) -> dict[str, Any]:
    """The plan's rule for the cell: the measure, its exclusions, the standard, the statistics that apply."""
    std = standard_for(
        measure, cell["state"], cell["product"], {d.field: cell.get(d.field) for d in measure.dimensions}
    )
    st, n, stats = plan.statistics, int(cell["clec_n"]), []
    if std is not None and std.type == "parity":
        routes = "; ".join(f"n_clec <= {r.max_clec_n}: {r.method}" for r in dict(st.routing).get(measure.type, ()))
        stats.append(f"routing of {measure.type} cells: {routes or 'none'}; otherwise {st.parity_method}")
        routed = st.method_for(measure.type, n)
        line = f"this cell (n_clec {num(n)}) is routed to {routed}"
        if "decided by the exact test instead" in str(cell.get("status_reason") or ""):
            line += f"; undefined here, so {cell.get('method')} decides (undefined_statistic: {st.undefined_statistic})"
        stats.append(line)
        if st.undefined_statistic == "exact_test":
            stats.append("where the modified z or t is undefined, the exact test of the cell's kind decides")
        for tier, rows in st.critical_values:
            table = ", ".join(f"n <= {num(m)}: {v:g}" if m is not None else f"above: {v:g}" for m, v in rows)
            stats.append(f"critical values ({tier}): {table}")
        if st.alpha is not None:
            after = f", {st.alpha_after_miss:g} for a cell that missed the month before" if st.alpha_after_miss else ""
            stats.append(f"alpha {st.alpha:g}{after}")
        if st.method_for(measure.type, n) == "permutation":
            lattice = dict(st.lattice).get(measure.unit)
            how = (
                f"exact on a lattice of {lattice:g} {measure.unit}, off it"
                if lattice
                else f"no lattice for {measure.unit}:"
            )
            seeds = f"seeded from the plan's seed {st.seed} and the cell key"
            draws = (
                f"sequential Monte Carlo (h = {st.sequential_h}): stops at the h-th resampled sum at least as "
                f"bad (p = h / L after L draws), else after {num(st.resamples)} draws"
                if st.sequential_h is not None
                else f"Monte Carlo with {num(st.resamples)} resamples"
            )
            stats.append(f"permutation: {how} {draws}, {seeds}")
    elif std is not None and std.type == "benchmark":
        stats.append("benchmark: stare and compare, equal counts as met")
        if measure.type in st.allowance_types:
            stats.append("small-sample allowance: allowed misses = max(1, floor(n x (1 - target))), in exact decimal")
    names = ("title", "type", "unit", "direction", "records", "period_by", "arrears_months")
    return {name: getattr(measure, name) for name in names} | {
        "value_kind": measure.value.kind,
        "value": value_text(measure),
        "exclusions": [
            {"code": e.code, "when": " and ".join(map(condition_text, e.when)), "description": e.description}
            for e in measure.exclusions
        ],
        "standard": None
        if std is None
        else {
            "type": std.type,
            "target": std.target,
            "when": "; ".join(f"{k} in [{', '.join(map(str, v))}]" for k, v in std.when) or "every cell",
        },
        "statistics": stats,
    }


# ------------------------------------------------------------------------------- records


def populations(plan: Plan, measure: Measure, cell: dict[str, Any], records: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The cell's CLEC records and its retail-analog records (the analog product of the retail carrier in the
    same state, with the same dimension values where the cell is split), for rates their lines rows, and the
    CLEC's records of the cell's product in its other submeasures."""
    carrier, kind, product = (records[c].astype("string") for c in ("carrier_id", "record_type", "product"))
    if cell["scope"] == "clec":
        mine = carrier == cell["carrier_id"]
    else:  # every CLEC: neither the retail carrier nor a test carrier, as the aggregate counts them
        mine = carrier.notna() & ~carrier.isin([plan.retail_carrier_id, *plan.test_carrier_ids])
    retail = (carrier == plan.retail_carrier_id) & (product == (plan.product(cell["product"]).retail_analog or ""))
    if cell["submeasure"] != "all":  # e.g. dispatch=true;channel=null, spelt as audit.submeasure_label does
        for part in cell["submeasure"].split(";"):
            field, text = part.split("=", 1)
            retail &= records[field].astype("string").str.lower().fillna("null") == text
    item, lines = kind == measure.records, kind == "lines"
    same_product = product == cell["product"]
    same_cell = (records["submeasure"].astype("string") == cell["submeasure"]) & same_product
    pick = {
        "clec": item & mine & same_cell,
        "clec_other_cells": item & mine & same_product & ~same_cell,  # other submeasures of the product
        "retail": item & retail,
        "clec_lines": lines & mine & (product == cell["product"]),
        "retail_lines": lines & retail,
    }
    return {name: records[mask.fillna(False).astype(bool)] for name, mask in pick.items()}


def counts(frame: pd.DataFrame, lines: pd.DataFrame, measure: Measure) -> dict[str, Any]:
    """Records evaluated, included, and each exclusion reason with its count (plan order, then engine reasons)."""
    found = frame["exclusion_reason"].astype("string").dropna().value_counts()
    codes = [e.code for e in measure.exclusions]
    out: dict[str, Any] = {
        "evaluated": len(frame),
        "included": int(frame["included"].sum()),
        "excluded": {c: int(found[c]) for c in [*codes, *sorted(set(found.index) - set(codes))] if found.get(c, 0)},
    }
    if measure.rate_base is not None:
        out |= {"lines_in_service": float(lines["value"].sum()), "lines_rows": len(lines)}
    return out


def top_records(measure: Measure, clec: pd.DataFrame, top: int) -> dict[str, Any]:
    """The CLEC's included records that weigh most on the gap: the worst values of a mean; the failures of a
    proportion or rate (value 0 where higher is better, 1 where lower is better); ties in input order."""
    included = clec[clec["included"]]
    if measure.type == "mean":
        worst_first = measure.direction == "lower_better"
        picked = included.sort_values(["value", *SOURCE_ORDER], ascending=[not worst_first, True, True, True])
        what = f"included CLEC records with the {'largest' if worst_first else 'smallest'} values"
    else:
        bad = 0 if measure.direction == "higher_better" else 1
        picked = included[included["value"] == bad].sort_values(SOURCE_ORDER)
        what = f"included CLEC records with value {bad}" + (", not meeting the standard" if bad == 0 else "")
    rows = picked.head(top)
    return {
        "rule": what,
        "total": len(picked),
        "records": [
            {"record_id": str(r), "carrier_id": str(c), "value": json_value(v), "source_file": str(f)}
            | {"source_row": int(s)}
            for r, c, v, f, s in zip(*(rows[k] for k in LISTED), strict=True)
        ],
    }


# ------------------------------------------------------------------------------- test and remedies


def verdict_section(plan: Plan, measure: Measure, cell: dict[str, Any]) -> dict[str, Any]:
    """The test that decided the cell: method, statistic, p-value, threshold and why, and the decision."""
    method, status, cv = cell["method"], cell["status"], cell["critical_value"]
    decision = cell["status_reason"] or status
    judged = status in ("met", "miss")
    if judged and method == "modified_z":
        against = (
            f"critical value {cv:g}" if cv is not None else f"the normal quantile of alpha {num(cell['alpha'], 4)}"
        )
        decision = f"z = {num(cell['statistic'], 4)} {'>' if status == 'miss' else '<='} {against}: {status}"
    elif judged and str(method).startswith("stare_and_compare"):
        clec, target = val(cell["clec_value"], measure.unit), val(cell["benchmark"], measure.unit)
        decision = f"CLEC {clec} against the benchmark {target}: {status}"
        if cell["allowed_misses"] is not None:
            hits, n = cell["clec_numerator"], cell["clec_n"]
            failures = n - hits if measure.direction == "higher_better" else hits
            decision += f" ({num(failures)} failures, {num(cell['allowed_misses'])} allowed)"
    elif judged and cell["p_value"] is not None:
        tail = f"{num(cell['alpha'], 4)}" + (f" (the tail area of {cv:g})" if cv is not None else "")
        decision = f"p = {pval(cell['p_value'])} {'<' if status == 'miss' else '>='} {tail}: {status}"
        decision += f"; {cell['status_reason']}" if cell["status_reason"] else ""
    figures = ("method", "statistic", "p_value", "critical_value", "alpha", "df", "resamples", "seed", "allowed_misses")
    names = {"modified_z": "z", "modified_t": "t (on logs)"}
    named = names.get(str(method), "z-equivalent of p") if cell["statistic"] is not None else None
    return {k: json_value(cell[k]) for k in figures} | {
        "statistic_name": named,
        "why": threshold_why(plan, cell) if judged and cell["standard"] == "parity" else None,
        "status": status,
        "status_reason": cell["status_reason"],
        "decision": decision,
    }


def _arithmetic(plan: Plan, measure: Measure, cell: dict[str, Any], line: dict[str, Any]) -> list[str]:
    """A ledger line's arithmetic written out, from the figures the ledger kept (remedies.py)."""
    rem = plan.remedies
    assert rem is not None  # a ledger line exists only under a plan with remedies
    n, cv, thr, raw, occ = (line[k] for k in ("clec_n", "clec_value", "threshold", "occurrences_raw", "occurrences"))
    unit, uncapped, per = line["unit_amount"], line["amount_uncapped"], line["basis"] == "measurement"
    out = []
    if per:
        out.append("per measurement: one payment per missed cell")
    elif cell["method"] == "stare_and_compare_with_allowance":
        hits = cell["clec_numerator"]
        failures = n - hits if measure.direction == "higher_better" else hits
        out.append(
            f"occurrences = failures {num(failures)} - allowed misses {num(cell['allowed_misses'])} = {num(raw, 4)}"
        )
    else:
        z = line["critical_value_used"]
        what = "the benchmark" if cell["standard"] == "benchmark" else f"retail at z* = {z:g}"
        out.append(f"threshold {val(thr, measure.unit, 4)} (the result that would just have passed: {what})")
        worse, better = (cv, thr) if measure.direction == "lower_better" else (thr, cv)
        if measure.type == "mean":
            gap = f"min(1, |{num(cv, 4)} - {num(thr, 4)}| / {num(thr, 4)}) x {num(n)}"
        else:
            gap = f"({num(worse, 4)} - {num(better, 4)}) / {num(measure.scale)} x {num(n)}"
            gap += " lines" if measure.type == "rate" else ""
        out.append(f"occurrences = {gap} = {num(raw, 4)}")
    if line["note"]:
        out.append(f"note: {line['note']}")
    if not per:
        out.append(f"rounded {rem.rounding}: {num(raw, 4)} -> {num(occ, 4)}")
    tier = rem.tier(line["tier"])
    amounts = ", ".join(money(a) for a in dict(tier.amounts)[line["category"]])
    out.append(
        f"unit amount: {tier.name} {line['category']}, consecutive missed month {line['consecutive_months']} "
        f"(the tier pays from month {tier.from_month}; amounts {amounts}, the last repeating) = {money(unit)}"
    )
    out.append(f"{'1 measurement' if per else f'{num(occ, 4)} occurrences'} x {money(unit)} = {money(uncapped)}")
    if (check := (unit * Decimal(repr(float(occ)))).quantize(CENT, ROUND_HALF_UP)) != uncapped:
        out.append(f"warning: {money(unit)} x {num(occ, 4)} is {money(check)}, not the ledger's {money(uncapped)}")
    if line["cap"]:
        out.append(f"{line['cap']} cap of {line['state']} reached: reduced pro rata to {money(line['amount'])}")
    out.append(f"paid {vocabulary.money(line['amount'], line['currency'])} to {line['payee']}")
    return out


def _rows_of(frame: pd.DataFrame | None, cell: dict[str, Any]) -> pd.DataFrame:
    """The rows of a ledger or escalation table with the cell's key."""
    if frame is None or frame.empty:
        return pd.DataFrame()
    mask = frame["carrier_id"].astype(str) == cell["carrier_id"]
    for k in vocabulary.MEASURE_CELL + (("scope",) if "scope" in frame else ()):
        mask &= frame[k].astype(str) == cell[k]
    return frame[mask]


def remedies_section(
    plan: Plan, measure: Measure, cell: dict[str, Any], ledger: pd.DataFrame | None, escalation: pd.DataFrame | None
) -> dict[str, Any]:
    """The cell's ledger lines with their arithmetic, or why it paid nothing."""
    rem = plan.remedies
    rows = _rows_of(ledger, cell)  # no columns at all when the month's ledger has no line
    lines = [plain_row(x) for x in rows.sort_values("tier").to_dict("records")] if len(rows) else []
    out: dict[str, Any] = {
        "currency": rem.currency if rem else None,
        "lines": [
            {k: json_value(v) for k, v in x.items() if k != "period"}
            | {"arithmetic": _arithmetic(plan, measure, cell, x)}
            for x in lines
        ],
        "none_reason": None,
    }
    if lines:
        return out
    r = rem.rule(measure.id) if rem else None
    tiers = [t for t in rem.tiers if t.name in r.tiers and t.scope == cell["scope"]] if rem and r else []
    if rem is None:
        reason = f"plan {plan.id} {plan.version} has no remedies: it pays nothing"
    elif r is None:
        reason = f"the plan's remedies do not name {measure.id}"
    elif not tiers:
        reason = f"no tier of {measure.id} ({', '.join(r.tiers)}) pays for scope {cell['scope']}"
    elif cell["status"] != "miss":
        after = "the escalation count resets to 0" if cell["status"] == "met" else "the escalation count is unchanged"
        reason = f"status {cell['status']}: only a miss pays ({after})"
    elif ledger is None:
        reason = "no remedies ledger is published for this period"
    else:
        esc = _rows_of(escalation, cell)
        reasons = []
        for tier in tiers:
            months = esc[esc["tier"] == tier.name]["consecutive_months"].tolist() if len(esc) else []
            if months and months[0] < tier.from_month:
                since = f"{tier.name} pays from consecutive missed month {tier.from_month}"
                reasons.append(f"{since}; this cell is at month {months[0]}")
            else:
                reasons.append(
                    f"{tier.name}: no ledger line for this missed cell (escalation months: {months or 'none'})"
                )
        reason = "; ".join(reasons)
    return out | {"none_reason": reason}
