"""The store's run history: every run's manifest, and which runs the current view is made of."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from carrier_sla import vocabulary
from carrier_sla.store import layout as store
from carrier_sla.store import verify
from carrier_sla.store.view import open_store

COLUMNS = ("run_id", "started_at", "status", "exit", "period", "kind", "plan", "inputs", "verdicts", "paid", "current")


def inputs_digest(inputs: list[dict[str, Any]]) -> str:
    """One short digest of a run's input files and excusals (paths and sha256), to tell runs' inputs apart."""
    h = hashlib.sha256()
    for item in sorted(inputs, key=lambda i: i["path"]):
        h.update(f"{item['path']}\0{item['sha256']}\n".encode())
    return h.hexdigest()[:12] if inputs else ""


def runs(out: Path, period: str | None = None, warnings: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per run of the store, oldest first; with `period`, the runs that published it
    (its results, or its remedies recomputed after a restatement). StoreDamaged when the current
    view is (carrier_sla.store.verify); a run whose manifest cannot be read, and which the current view
    does not need, is left out with a line in `warnings`."""
    view = open_store(out)  # UsageError when there is no such store
    verify.require_intact(out)
    provenance = view.provenance
    rows = []
    for run_id in view.run_ids():
        m = verify.read_manifest(out, run_id)
        if isinstance(m, verify.Problem):  # not in the current view: require_intact would have said so
            if warnings is not None:
                warnings.append(f"{m}; run {run_id} left out")
            continue
        remedies = m.get("remedies", {}).get("periods", {})
        periods = [m.get("period")] + [p for p, r in remedies.items() if r.get("recomputed_after_restatement")]
        restated = periods[1:]
        retracted = m.get("retracted", []) if m.get("kind") == "retract" else []
        periods += [p for p in retracted if p not in periods]
        if period is not None and period not in periods:
            continue
        current = sorted(
            f"{table}/{key.split('=', 1)[1]}"
            for table, by_period in provenance.items()
            for key, producer in by_period.items()
            if producer == run_id and (period is None or key == f"period={period}")
        )
        verdicts = m.get("verdicts", {})
        this = remedies.get(m.get("period"), {})
        rows.append(
            {
                "run_id": m.get("run_id", run_id),
                "started_at": m.get("started_at", ""),
                "finished_at": m.get("finished_at"),
                "status": m.get("status", "unknown"),
                "exit": m.get("exit_code"),
                "period": m.get("period"),
                "restated_remedies": restated,
                "kind": "retract" if m.get("kind") == "retract" else "provisional" if m.get("provisional") else "final",
                "retracted": retracted,
                "as_of": m.get("as_of"),
                "plan": f"{m['plan']['id']} {m['plan']['version']}" if "plan" in m else "",
                "plan_sha256": m.get("plan", {}).get("sha256", ""),
                "inputs": inputs_digest(m.get("inputs", []) + (m.get("excusals") or {}).get("files", [])),
                "verdicts": verdicts,
                "paid": this.get("total"),
                "currency": m.get("remedies", {}).get("currency"),
                # a restatement: per month republished final over final, its net adjustment (carrier_sla.engine.trueup)
                "adjustments": {p: r["restatement"]["adjustment"] for p, r in remedies.items() if r.get("restatement")},
                "current": current,
                "error": m.get("error"),
            }
        )
    rows.sort(key=lambda r: (r["started_at"], r["run_id"]))
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: one line per run."""

    def cell(row: dict[str, Any], column: str) -> str:
        value = row[column]
        if column == "verdicts":
            return f"{value.get('met', 0)} met / {value.get('miss', 0)} miss" if value else ""
        if column == "current":
            tables = sorted({c.split("/")[0] for c in value})
            return "all tables" if set(tables) == set(store.ALL_TABLES) else ",".join(tables)
        if column == "kind" and row["as_of"]:
            return f"provisional as of {row['as_of']}"
        if column == "started_at":
            return str(value)[:19].replace("T", " ")
        if column == "period" and row["retracted"]:
            return f"{value} retracted" + (f" (+{','.join(row['retracted'][1:])})" if row["retracted"][1:] else "")
        if column == "period" and row["restated_remedies"]:
            return f"{value} (+remedies {','.join(row['restated_remedies'])})"
        if column == "paid" and value is not None:
            paid = vocabulary.money(value, row.get("currency"))
            if not row.get("adjustments"):
                return paid
            adjusted = ", ".join(f"{p} {vocabulary.money(a, sign=True)}" for p, a in row["adjustments"].items())
            return f"{paid} (restated, adjustments {adjusted})"
        return "" if value is None else str(value)

    table = [list(COLUMNS)] + [[cell(r, c) for c in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in table)
