"""carrier-sla explain: one verdict reconstructed end to end, for an analyst or a CLEC's lawyer.

For one cell (measure, state, product, submeasure, CLEC or the all-CLEC aggregate) of one period,
read from a store's view (the current one, or a run's with --run): the run and plan that produced
it (the plan from the run's own runs/RUN_ID/plan.json), the plan rule, the population behind the
figures (records evaluated, included, excluded by reason, for the CLEC and the retail analog), the
figures, the test and why its critical value or alpha applied, the ledger lines with their
arithmetic written out (or why nothing was paid), and the records that contributed most to the gap.
`explanation` is pure and returns a JSON-ready dict; `render` writes it as text; `load`,
`run_plan` and `command` do the I/O.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from carrier_sla import store as storemod
from carrier_sla.errors import CarrierSlaError, StoreError, UsageError
from carrier_sla.plan import Condition, Measure, Plan, load_plan, plan_from_document, resolve_plan_path
from carrier_sla.plan_remedies import CENT
from carrier_sla.verdicts import standard_for

OPS = {"eq": "=", "ne": "!=", "in": "in", "not_in": "not in", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
UNARY = {"is_null": "is null", "not_null": "is not null", "is_true": "is true", "is_false": "is false"}
UNITS = {"percent": "%", "business_days": " business days", "hours": " h", "per_100_lines": " per 100 lines"}
KEY = ("measure_id", "state", "product", "submeasure", "scope", "carrier_id")
SOURCE_ORDER = ["source_file", "source_row", "record_id"]  # ties of the worst records: input order

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
    return f"{x:,.2f}"


def _json(x: Any) -> Any:
    """A value for JSON: numpy scalars as Python, NaN as null, +-inf and Decimal as text."""
    x = x.item() if isinstance(x, np.generic) else x
    if isinstance(x, float) and not np.isfinite(x):
        return None if np.isnan(x) else str(x)
    return str(x) if isinstance(x, Decimal) else x


def _plain(row: dict[Any, Any]) -> dict[str, Any]:
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
        return (
            f"1 when a {v.records} record ({v.related_time}) with the same {v.match_on} is {v.outcome} within "
            f"{num(v.window_hours)} h {v.direction} {v.anchor}" + (f" (counting only {where})" if where else "")
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
        stats.append(f"this cell (n_clec {num(n)}) is routed to {st.method_for(measure.type, n)}")
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
            stats.append(f"permutation: {how} Monte Carlo with {num(st.resamples)} resamples, {seeds}")
    elif std is not None and std.type == "benchmark":
        stats.append("benchmark: stare and compare, equal counts as met")
        if measure.type in st.allowance_types:
            stats.append("small-sample allowance: allowed misses = n x (1 - target) rounded half up, at least 1")
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
    same state, with the same dimension values where the cell is split), and for rates their lines rows."""
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
    same_cell = (records["submeasure"].astype("string") == cell["submeasure"]) & (product == cell["product"])
    pick = {
        "clec": item & mine & same_cell,
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
            {"record_id": str(r), "value": _json(v), "source_file": str(f), "source_row": int(s)}
            for r, v, f, s in zip(
                rows["record_id"], rows["value"], rows["source_file"], rows["source_row"], strict=True
            )
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
    return {k: _json(cell[k]) for k in figures} | {
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
    out.append(f"paid {money(line['amount'])} {line['currency']} to {line['payee']}")
    return out


def _rows_of(frame: pd.DataFrame | None, cell: dict[str, Any]) -> pd.DataFrame:
    """The rows of a ledger or escalation table with the cell's key (the aggregate's carrier null or empty)."""
    if frame is None or frame.empty:
        return pd.DataFrame()
    mask = frame["carrier_id"].fillna("").astype(str) == (cell["carrier_id"] or "")
    for k in KEY[:4] + (("scope",) if "scope" in frame else ()):
        mask &= frame[k].astype(str) == cell[k]
    return frame[mask]


def remedies_section(
    plan: Plan, measure: Measure, cell: dict[str, Any], ledger: pd.DataFrame | None, escalation: pd.DataFrame | None
) -> dict[str, Any]:
    """The cell's ledger lines with their arithmetic, or why it paid nothing."""
    rem = plan.remedies
    lines = (
        [_plain(x) for x in _rows_of(ledger, cell).sort_values("tier").to_dict("records")] if ledger is not None else []
    )
    out: dict[str, Any] = {
        "currency": rem.currency if rem else None,
        "lines": [
            {k: _json(v) for k, v in x.items() if k != "period"} | {"arithmetic": _arithmetic(plan, measure, cell, x)}
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


def explanation(
    plan: Plan,
    cell: dict[str, Any],
    records: pd.DataFrame,
    *,
    run: dict[str, Any],
    ledger: pd.DataFrame | None,
    escalation: pd.DataFrame | None,
    top: int = 10,
) -> dict[str, Any]:
    """Everything behind one cell's verdict as one JSON-ready dict, sections in the order they are told.

    `cell` is the result row (missing values as None), `records` the measure's records/ rows of the
    cell's state, `ledger` and `escalation` the period's remedies and escalation tables (None if absent).
    """
    measure = plan.measure(cell["measure_id"])
    pops = populations(plan, measure, cell, records)
    clec = counts(pops["clec"], pops["clec_lines"], measure)
    parity = cell["standard"] == "parity"
    checks = []
    if clec["evaluated"] != cell["clec_records_evaluated"]:
        checks.append(
            f"records/ holds {num(clec['evaluated'])} CLEC records of the cell; "
            f"the result says {num(cell['clec_records_evaluated'])} were evaluated"
        )
    return {
        "cell": {k: cell[k] for k in KEY} | {d.field: _json(cell.get(d.field)) for d in measure.dimensions},
        "period": cell["period"],
        "data_period": cell["data_period"],
        "provisional": bool(cell["provisional"]),
        "provisional_as_of": cell["provisional_as_of"],
        "run": run,
        "rule": rule(plan, measure, cell),
        "population": {
            "clec": clec,
            "retail": counts(pops["retail"], pops["retail_lines"], measure) if parity else None,
            "retail_carrier_id": plan.retail_carrier_id,
            "retail_product": plan.product(cell["product"]).retail_analog,
        },
        "figures": {
            "unit": measure.unit,
            "clec": {k: _json(cell[f"clec_{k}"]) for k in ("n", "numerator", "value")},
            "retail": {k: _json(cell[f"retail_{k}"]) for k in ("n", "numerator", "value", "stdev")},
            "benchmark": _json(cell["benchmark"]),
        },
        "test": verdict_section(plan, measure, cell),
        "remedies": remedies_section(plan, measure, cell, ledger, escalation),
        "top_records": top_records(measure, pops["clec"], top),
        "checks": checks,
    }


# ------------------------------------------------------------------------------- text


def _table(rows: list[list[str]], indent: str = "  ", right: tuple[int, ...] = ()) -> list[str]:
    """Rows of text cells as aligned lines; the columns in `right` right-aligned (numbers)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    cells = [
        [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))] for r in rows
    ]
    return [(indent + "  ".join(r)).rstrip() for r in cells]


def _figure(side: dict[str, Any], rule_: dict[str, Any]) -> str:
    n, numerator, value, unit = side["n"], side["numerator"], side["value"], rule_["unit"]
    if rule_["type"] == "mean":
        return f"n {num(n)}, sum {num(numerator)}, mean {val(value, unit)}"
    if rule_["type"] == "rate":
        return f"{num(numerator)} {rule_['records']} on {num(n)} lines = {val(value, unit)}"
    return f"{num(numerator)} of {num(n)} = {val(value, unit)}"


def render(e: dict[str, Any]) -> str:
    """The explanation as plain text, in the order of its sections."""
    c, r, rl, t, p, f = (e[k] for k in ("cell", "run", "rule", "test", "population", "figures"))
    who = c["carrier_id"] or "all CLECs"
    data = f" (records of {e['data_period']})" if e["data_period"] != e["period"] else ""
    kind = f"provisional as of {e['provisional_as_of']}" if e["provisional"] else "final"
    started = str(r["started_at"])[:19].replace("T", " ")
    out = [
        f"{c['measure_id']} {rl['title']}: {who}, {c['state']}, {c['product']}, submeasure {c['submeasure']}"
        f" (scope {c['scope']})",
        f"period      {e['period']}{data}, {kind}",
        f"run         {r['run_id']} ({r['status']}, started {started}), from {r['view']}",
        f"plan        {r['plan']['id']} {r['plan']['version']}, sha256 {r['plan']['sha256']}",
        f"            read from {r['plan']['source']}",
    ]
    if r.get("remedies_run") and r["remedies_run"] != r["run_id"]:
        out.append(f"remedies    of this period published by run {r['remedies_run']} (recomputed after a restatement)")
    better = "higher" if rl["direction"] == "higher_better" else "lower"
    arrears = f", reported {rl['arrears_months']} month(s) in arrears" if rl["arrears_months"] else ""
    out += [
        "",
        "Plan rule",
        f"  {rl['type']} in {rl['unit'] or 'units'}, {better} is better; {rl['records']} "
        f"placed in a month by {rl['period_by']}{arrears}",
        f"  value ({rl['value_kind']}): {rl['value']}",
        "  exclusions, the first that holds gives the reason (value_not_computable: the value cannot be computed):",
    ]
    out += _table([[x["code"], x["when"]] for x in rl["exclusions"]], "    ") if rl["exclusions"] else ["    none"]
    std = rl["standard"]
    if std is None:
        out.append("  standard: none of the plan's standards matches this cell")
    else:
        target = f" {val(std['target'], rl['unit'])}" if std["target"] is not None else ""
        out.append(f"  standard: {std['type']}{target} (applies to: {std['when']})")
    out += [f"  {line}" for line in rl["statistics"]]

    sides = [p["clec"]] + ([p["retail"]] if p["retail"] else [])
    rows = [[f"records/ of {c['measure_id']}, {c['state']}", f"{who} {c['product']}"]]
    rows[0] += [f"retail {p['retail_carrier_id']} {p['retail_product']}"] if p["retail"] else []
    rows += [[k, *(num(x[k]) for x in sides)] for k in ("evaluated", "included")]
    found = {k for x in sides for k in x["excluded"]}
    for code in dict.fromkeys([*(x["code"] for x in rl["exclusions"]), *sorted(found)]):
        rows += [[f"excluded: {code}", *(num(x["excluded"].get(code, 0)) for x in sides)]] if code in found else []
    if "lines_in_service" in p["clec"]:
        rows.append(["lines in service", *(num(x["lines_in_service"]) for x in sides)])
    out += ["", "Population", *_table(rows, right=(1, 2)), *(f"  check: {x}" for x in e["checks"])]

    out += ["", "Figures", f"  CLEC     {_figure(f['clec'], rl)}"]
    if f["retail"]["n"] is not None:
        sd = f" (stdev {val(f['retail']['stdev'], rl['unit'])})" if f["retail"]["stdev"] is not None else ""
        out.append(f"  retail   {_figure(f['retail'], rl)}{sd}")
    if f["benchmark"] is not None:
        out.append(f"  benchmark {val(f['benchmark'], rl['unit'])}")

    shown = [
        (t["statistic_name"], num(t["statistic"], 4)),
        ("p-value", pval(t["p_value"])),
        ("df", num(t["df"])),
        ("resamples", num(t["resamples"])),
        ("seed", "n/a" if t["seed"] is None else str(t["seed"])),
        ("allowed misses", num(t["allowed_misses"])),
    ]
    figures = "; ".join(f"{k} {v}" for k, v in shown if v != "n/a")
    out += ["", "Test", f"  method {t['method'] or 'none'}", *([f"  {figures}"] if figures else [])]
    out += [f"  {t['why']}"] if t["why"] else []
    out.append(f"  verdict: {t['decision']}")

    out += ["", "Remedies"]
    for line in e["remedies"]["lines"]:
        out.append(f"  {line['tier']} to {line['payee']}: {line['currency']} {money(Decimal(line['amount']))}")
        out += [f"    {x}" for x in line["arithmetic"]]
    out += [f"  none: {e['remedies']['none_reason']}"] if e["remedies"]["none_reason"] else []

    k = e["top_records"]
    out += [
        "",
        f"Records that contributed most to the gap: {k['rule']}: {len(k['records'])} of {num(k['total'])} shown",
    ]
    if k["records"]:
        rows = [["record_id", "value", "source_file", "source_row"]]
        rows += [[x["record_id"], num(x["value"]), x["source_file"], str(x["source_row"])] for x in k["records"]]
        out += _table(rows, right=(1, 3))
    return "\n".join(out)


# ------------------------------------------------------------------------------- store (I/O) and command


def find_cell(
    results: pd.DataFrame,
    measure: str,
    carrier: str,
    state: str | None = None,
    product: str | None = None,
    submeasure: str | None = None,
) -> dict[str, Any]:
    """The one result row of the key (carrier 'all': the aggregate); UsageError naming what exists otherwise."""
    period = str(results["period"].iloc[0]) if len(results) else "this period"
    m = results[results["measure_id"].astype(str) == measure]
    if m.empty:
        known = ", ".join(dict.fromkeys(results["measure_id"].astype(str)))
        raise UsageError(f"no results for measure {measure!r} in {period} (measures: {known})")
    aggregate = carrier.lower() == "all"
    c = m[m["scope"] == "clec_aggregate"] if aggregate else m[(m["scope"] == "clec") & (m["carrier_id"] == carrier)]
    if c.empty:
        known = ", ".join(["all", *sorted(m["carrier_id"].dropna().astype(str).unique())])
        raise UsageError(f"no {measure} cells for carrier {carrier!r} in {period} (carriers: {known})")
    wanted = {"state": state, "product": product, "submeasure": submeasure}
    sel = c
    for column, value in wanted.items():
        sel = sel[sel[column].astype(str) == value] if value is not None else sel
    columns = ["state", "product", "submeasure", "status"]
    listing = c[columns].astype(str).sort_values(columns)
    who = ("all CLECs" if aggregate else carrier) + "".join(f" {k}={v}" for k, v in wanted.items() if v is not None)
    if len(sel) != 1:
        shown = listing.loc[sel.index] if len(sel) else listing
        cells = "\n".join(_table([columns, *shown.to_numpy().tolist()]))
        if sel.empty:
            raise UsageError(f"no {measure} cell of {who} in {period}; the cells of {measure} for {carrier}:\n{cells}")
        narrow = "narrow down with --state/--product/--submeasure"
        raise UsageError(f"{len(sel)} {measure} cells of {who} in {period}; {narrow}:\n{cells}")
    return _plain(sel.iloc[0].to_dict())


def _read(folder: Path, **equal: str) -> pd.DataFrame:
    """A Parquet folder of the store as a frame (rows where the given columns equal the values); seeds exact."""
    try:
        where = ds.field(*equal) == next(iter(equal.values())) if equal else None
        table = ds.dataset(folder, format="parquet", partitioning="hive").to_table(filter=where)
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise StoreError(f"cannot read {folder}: {exc}") from exc
    frame = table.to_pandas()
    if "seed" in frame:  # uint64 Monte Carlo seeds as exact integers, not through float64
        frame["seed"] = pd.Series(table.column("seed").to_pylist(), index=frame.index, dtype=object)
    return frame


def load(store: Path, period: str, run_id: str | None) -> tuple[Path, str, dict[str, dict[str, str]], pd.DataFrame]:
    """The view to read (the current one or a run's), its label, its provenance, and the period's results."""
    if not store.is_dir():
        raise UsageError(f"{store}: no such store")
    if run_id is None:
        if not (store / storemod.CURRENT).exists():
            raise UsageError(f"{store}: nothing published yet")
        view, label, provenance = (
            (store / storemod.CURRENT).resolve(),
            "the current view",
            storemod.current_provenance(store),
        )
    else:
        view, label = store / "runs" / run_id / storemod.VIEW, f"the view of run {run_id}"
        if Path(run_id).name != run_id or not view.is_dir():
            known = sorted(p.parent.name for p in (store / "runs").glob(f"*/{storemod.VIEW}"))
            raise UsageError(f"no published run {run_id!r} in {store} (runs with a view: {', '.join(known) or 'none'})")
        path = view / storemod.PROVENANCE
        provenance = json.loads(path.read_text()) if path.exists() else {}
    folder = view / "results" / f"period={period}"
    if not folder.is_dir():
        periods = ", ".join(storemod.published_periods(view, "results")) or "none"
        raise UsageError(f"no results for period {period} in {label} of {store} (periods: {periods})")
    return view, label, provenance, _read(folder)


def run_plan(store: Path, run_id: str, manifest: dict[str, Any]) -> tuple[Plan, str]:
    """The exact plan a run used, and where it was read: runs/RUN_ID/plan.json; for runs made before that file
    was kept, the manifest's plan file or the bundled plan of its id, only when its sha256 is the manifest's."""
    path, want = store / "runs" / run_id / "plan.json", manifest.get("plan", {})
    try:
        if path.exists():
            return plan_from_document(json.loads(path.read_text()), str(path)), str(path)
        for candidate in filter(None, (want.get("source"), want.get("id"))):
            try:
                file = resolve_plan_path(candidate)
            except CarrierSlaError:
                continue
            if hashlib.sha256(file.read_bytes()).hexdigest() == want.get("sha256"):
                return load_plan(file), f"{file} (the run kept no plan.json; same sha256 as its manifest)"
    except (CarrierSlaError, ValueError, OSError) as exc:
        raise StoreError(f"cannot load the plan of run {run_id}: {exc}") from exc
    raise StoreError(f"run {run_id} kept no plan.json, and no plan file has its sha256 {want.get('sha256')}")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "explain",
        help="one verdict end to end: rule, population, test, remedies, worst records",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("--store", required=True, type=Path, help="the output store")
    p.add_argument("--period", required=True, help="reporting month YYYY-MM")
    p.add_argument("--measure", required=True, help="measure id, e.g. OP-3")
    p.add_argument("--carrier", required=True, help="CLEC id, or 'all' for the all-CLEC aggregate")
    p.add_argument("--state", help="narrow down to this state, e.g. CO")
    p.add_argument("--product", help="narrow down to this CLEC product, e.g. resale_pots")
    p.add_argument("--submeasure", help="e.g. all, dispatch=true")
    p.add_argument("--run", help="read this run's view (STORE/runs/RUN_ID/view) instead of the current one")
    p.add_argument("--json", action="store_true", help="one JSON object with the same content")
    p.add_argument("--top", type=int, default=10, help="records behind the gap to list (default 10)")
    p.set_defaults(command_module="explain")
    return p


def command(args: argparse.Namespace) -> int:
    """Print the explanation of one cell; UsageError (exit 2) when the key matches none or several cells."""
    from carrier_sla.pipeline import check_period

    check_period(args.period)
    if args.top < 0:
        raise UsageError("--top must be 0 or more")
    store, key = Path(args.store), f"period={args.period}"
    view, label, provenance, results = load(store, args.period, args.run)
    cell = find_cell(results, args.measure, args.carrier, args.state, args.product, args.submeasure)
    producer = provenance.get("results", {}).get(key) or args.run
    if producer is None:
        raise StoreError(f"{label} of {store} does not say which run produced the results of {args.period}")
    manifest_path = store / "runs" / producer / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {manifest_path}: {exc}") from exc
    plan, source = run_plan(store, producer, manifest)
    if cell["measure_id"] not in {m.id for m in plan.measures}:
        raise StoreError(f"the plan of run {producer} has no measure {cell['measure_id']}")
    records_dir = view / "records" / key / f"measure={cell['measure_id']}"
    if not records_dir.is_dir():
        raise StoreError(f"{records_dir}: no records/ published for {cell['measure_id']} in {args.period}")
    tables = {t: _read(view / t / key) if (view / t / key).is_dir() else None for t in ("remedies", "escalation")}
    run = {
        "run_id": producer,
        "view": label,
        **{k: manifest.get(k) for k in ("status", "started_at", "finished_at", "as_of")},
        "manifest": str(manifest_path),
        "plan": {**{k: manifest.get("plan", {}).get(k) for k in ("id", "version", "sha256")}, "source": source},
        "remedies_run": provenance.get("remedies", {}).get(key),
    }
    result = explanation(
        plan,
        cell,
        _read(records_dir, state=cell["state"]),
        run=run,
        ledger=tables["remedies"],
        escalation=tables["escalation"],
        top=args.top,
    )
    print(json.dumps(result, indent=1, default=str) if args.json else render(result))
    return 0
