"""carrier-sla explain: one verdict reconstructed end to end, for an analyst or a CLEC's lawyer.

For one cell (measure, state, product, submeasure, CLEC or the all-CLEC aggregate) of one period,
read from a store's view (the current one, or a run's with --run): the run and plan that produced
it (the plan from the run's own runs/RUN_ID/plan.json), the plan rule, the population behind the
figures (records evaluated, included, excluded by reason, for the CLEC and the retail analog), the
figures, the test and why its critical value or alpha applied, the ledger lines with their
arithmetic written out (or why nothing was paid), the records that contributed most to the gap
and the CLEC's excluded records, each listed record with its input as written next to the derived
values. `explanation` is pure and returns a JSON-ready dict; `render` writes it as text; `explain` reads
the store through its StoreView (`load`, `run_plan`) and the input rows (carrier_sla.readers.explain_evidence)
and returns the explanation; `carrier-sla explain` (carrier_sla.cli.explain) prints it.

The sections themselves (rule, population, test, remedies, records) are reconstructed by the pure
functions of carrier_sla.readers.explain_cell; this module puts them together, writes them and reads the store.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from carrier_sla import vocabulary
from carrier_sla.errors import StoreError, UsageError
from carrier_sla.plan.load import Plan
from carrier_sla.plan.periods import check_period
from carrier_sla.readers import explain_evidence as evidence
from carrier_sla.readers.explain_cell import (
    KEY,
    _rows_of,
    counts,
    json_value,
    money,
    num,
    plain_row,
    populations,
    pval,
    remedies_section,
    rule,
    text_table,
    top_records,
    val,
    verdict_section,
)
from carrier_sla.store.view import StoreView, open_store

# ------------------------------------------------------------------------------- the explanation


def explanation(
    plan: Plan,
    cell: dict[str, Any],
    records: pd.DataFrame,
    *,
    run: dict[str, Any],
    ledger: pd.DataFrame | None,
    escalation: pd.DataFrame | None,
    top: int = 10,
    excluded: int = 50,
    adjustments: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Everything behind one cell's verdict as one JSON-ready dict, sections in the order they are told.

    `cell` is the result row (missing values as None), `records` the measure's records/ rows of the
    cell's state, `ledger`, `escalation` and `adjustments` the period's remedies, escalation and
    restatement adjustments tables (None if absent); `top` and `excluded` bound the included and
    excluded records listed.
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
        "cell": {k: cell[k] for k in KEY} | {d.field: json_value(cell.get(d.field)) for d in measure.dimensions},
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
            "clec_unknown_dimension": evidence.unknown_dimension(cell, pops["clec_other_cells"]),
        },
        "figures": {
            "unit": measure.unit,
            "clec": {k: json_value(cell[f"clec_{k}"]) for k in ("n", "numerator", "value")},
            "retail": {k: json_value(cell[f"retail_{k}"]) for k in ("n", "numerator", "value", "stdev")},
            "benchmark": json_value(cell["benchmark"]),
        },
        "test": verdict_section(plan, measure, cell),
        "remedies": _remedies(plan, measure, cell, ledger, escalation),
        "excusal": _excusal(cell),
        "restatement": [
            {k: json_value(v) for k, v in plain_row(x).items() if k != "period"}
            for x in _rows_of(adjustments, cell).to_dict("records")
        ],
        "top_records": top_records(measure, pops["clec"], top),
        "excluded_records": evidence.excluded_records(measure, pops["clec"], excluded),
        "checks": checks,
    }


def _excusal(cell: dict[str, Any]) -> dict[str, Any] | None:
    """The commission's excusal of the cell (carrier_sla.inputs.excusals), if any."""
    if not cell.get("excused"):
        return None
    return {"reference": cell.get("excusal_reference"), "reason": cell.get("excusal_reason")}


def _remedies(
    plan: Plan, measure: Any, cell: dict[str, Any], ledger: pd.DataFrame | None, escalation: pd.DataFrame | None
) -> dict[str, Any]:
    """The remedies section; an excused cell pays nothing, whatever its verdict, and says why."""
    section = remedies_section(plan, measure, cell, ledger, escalation)
    if cell.get("excused") and not section["lines"]:
        section["none_reason"] = (
            f"excused by {cell.get('excusal_reference')} ({cell.get('excusal_reason')}): the verdict stands, "
            "nothing is paid, and the escalation count stays as it was"
        )
    return section


# ------------------------------------------------------------------------------- text


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
    who = "all CLECs" if c["carrier_id"] == vocabulary.AGGREGATE else c["carrier_id"]
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
    out += text_table([[x["code"], x["when"]] for x in rl["exclusions"]], "    ") if rl["exclusions"] else ["    none"]
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
    out += ["", "Population", *text_table(rows, right=(1, 2)), *(f"  check: {x}" for x in e["checks"])]
    if any(code.startswith("approved:") for code in found):
        out.append("  approved:REFERENCE: records the commission excused (the excusals input), before the plan's rules")
    out += [
        f"  also {num(x['records'])} record(s) of {who}, {c['state']}, {c['product']} with an unknown dimension value:"
        f" submeasure {x['submeasure']}"
        for x in p["clec_unknown_dimension"]
    ]

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
    if e.get("excusal"):
        x = e["excusal"]
        out.append(f"  excused by {x['reference']}: {x['reason']} (the verdict stands; nothing is paid)")

    out += ["", "Remedies"]
    for line in e["remedies"]["lines"]:
        out.append(f"  {line['tier']} to {line['payee']}: {vocabulary.money(line['amount'], line['currency'])}")
        out += [f"    {x}" for x in line["arithmetic"]]
    out += [f"  none: {e['remedies']['none_reason']}"] if e["remedies"]["none_reason"] else []
    for line in e.get("restatement", []):
        out.append(
            f"  restated: {line['tier']} to {line['payee']}: paid {money(Decimal(line['paid']))} (run "
            f"{line['paid_run_id']}), restated {money(Decimal(line['restated']))} (run {line['restated_run_id']}), "
            f"adjustment {Decimal(line['adjustment']):+,.2f}" + (f"; {line['note']}" if line.get("note") else "")
        )

    k = e["top_records"]
    out += [
        "",
        f"Records that contributed most to the gap: {k['rule']}: {len(k['records'])} of {num(k['total'])} shown",
    ]
    if k["records"]:
        rows = [["record_id", "value", "source_file", "source_row"]]
        rows += [[x["record_id"], num(x["value"]), x["source_file"], str(x["source_row"])] for x in k["records"]]
        out += text_table(rows, right=(1, 3))
    out += evidence.render(e)
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
    """The one result row of the key (carrier vocabulary.AGGREGATE: the all-CLEC aggregate); UsageError naming
    what exists otherwise."""
    period = str(results["period"].iloc[0]) if len(results) else "this period"
    m = results[results["measure_id"].astype(str) == measure]
    if m.empty:
        known = ", ".join(dict.fromkeys(results["measure_id"].astype(str)))
        raise UsageError(f"no results for measure {measure!r} in {period} (measures: {known})")
    aggregate = carrier == vocabulary.AGGREGATE
    c = m[m["scope"] == "clec_aggregate"] if aggregate else m[(m["scope"] == "clec") & (m["carrier_id"] == carrier)]
    if c.empty:
        known = ", ".join([vocabulary.AGGREGATE, *sorted(m[m["scope"] == "clec"]["carrier_id"].astype(str).unique())])
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
        cells = "\n".join(text_table([columns, *shown.to_numpy().tolist()]))
        if sel.empty:
            raise UsageError(f"no {measure} cell of {who} in {period}; the cells of {measure} for {carrier}:\n{cells}")
        narrow = "narrow down with --state/--product/--submeasure"
        raise UsageError(f"{len(sel)} {measure} cells of {who} in {period}; {narrow}:\n{cells}")
    return plain_row(sel.iloc[0].to_dict())


def _frame(table: pa.Table) -> pd.DataFrame:
    """A table of the store as a frame, uint64 Monte Carlo seeds as exact integers (not through float64)."""
    frame = table.to_pandas()
    if "seed" in frame:
        frame["seed"] = pd.Series(table.column("seed").to_pylist(), index=frame.index, dtype=object)
    return frame


def load(store: Path, period: str, run_id: str | None) -> tuple[StoreView, str, pd.DataFrame]:
    """The view to read (the current one or a run's), its label, and the period's results."""
    view = open_store(store, run_id)
    label = "the current view" if run_id is None else f"the view of run {run_id}"
    if run_id is None:
        view.require_published()
    view.check(period)  # every file its runs wrote is there
    if not view.has("results", period):
        periods = ", ".join(view.periods()) or "none"
        raise UsageError(f"no results for period {period} in {label} of {store} (periods: {periods})")
    return view, label, _frame(view.table("results", period))


def run_plan(view: StoreView, period: str, run_id: str) -> tuple[Plan, str]:
    """The exact plan the month was judged under (StoreView.plan), and where it was read: the run's
    runs/RUN_ID/plan.json, or for runs made before that file was kept the plan file of the same sha256."""
    plan = view.plan(period)
    if Path(plan.source).parent == view.run_folder(run_id):  # the plan the run kept in its own folder
        return plan, plan.source
    return plan, f"{plan.source} (the run kept no plan.json; same sha256 as its manifest)"


def explain(
    store: Path,
    period: str,
    measure: str,
    carrier: str,
    *,
    state: str | None = None,
    product: str | None = None,
    submeasure: str | None = None,
    run_id: str | None = None,
    top: int = 10,
    excluded: int = 50,
) -> dict[str, Any]:
    """The explanation of one cell of `period` (carrier _all: the all-CLEC aggregate), read from the store's
    current view or, with `run_id`, that run's; UsageError (exit 2) when the key matches none or several cells."""
    check_period(period)
    if top < 0 or excluded < 0:
        raise UsageError("--top and --excluded must be 0 or more")
    view, label, results = load(Path(store), period, run_id)
    cell = find_cell(results, measure, carrier, state, product, submeasure)
    producer = view.run_of(period) or run_id
    if producer is None:
        raise StoreError(f"{label} of {store} does not say which run produced the results of {period}")
    manifest = view.manifest(run_id=producer)
    plan, source = run_plan(view, period, producer)
    if cell["measure_id"] not in {m.id for m in plan.measures}:
        raise StoreError(f"the plan of run {producer} has no measure {cell['measure_id']}")
    if cell["measure_id"] not in view.measures(period):
        raise StoreError(f"{store} ({view.label}): no records/ published for {cell['measure_id']} in {period}")
    tables = {
        t: _frame(view.table(t, period)) if view.has(t, period) else None
        for t in ("remedies", "escalation", "adjustments")
    }
    run = {
        "run_id": producer,
        "view": label,
        **{k: manifest.get(k) for k in ("status", "started_at", "finished_at", "as_of")},
        "manifest": str(view.manifest_path(producer)),
        "plan": {**{k: manifest.get("plan", {}).get(k) for k in ("id", "version", "sha256")}, "source": source},
        "remedies_run": view.run_of(period, "remedies"),
    }
    records = view.table("records", period, where={"state": cell["state"]}, measure_id=cell["measure_id"])
    result = explanation(
        plan,
        cell,
        _frame(records),
        run=run,
        ledger=tables["remedies"],
        escalation=tables["escalation"],
        top=top,
        excluded=excluded,
        adjustments=tables["adjustments"],
    )
    return evidence.with_input(result, plan, *evidence.read_rows(plan, manifest, evidence.listed(result)))
