"""The report of a diff: the JSON object (--json, summary.json), the text report, and the CSV files of --out.

Everything here reads the PeriodDiff tables carrier_sla.readers.diff computed and writes them out; nothing
is compared again. The text shows the first --top rows of each table; the JSON object holds every
verdict, figure and ledger change with the first --top record ids per measure and kind; the CSV
files hold every row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from carrier_sla import vocabulary
from carrier_sla.errors import UsageError
from carrier_sla.readers.diff import CELL_KEY, KINDS, RECORD_KEY, ZERO, PeriodDiff, Side
from carrier_sla.store import csv_safe

OUTPUTS = ("verdicts", "figures", "payments", "records")  # the CSV files of --out, one per PeriodDiff table


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: nulls as None, infinities as "inf"/"-inf" (strict JSON has none), the aggregate's
    carrier '' as None (Decimals become text through json.dumps(default=str))."""
    out = frame.astype(object).where(frame.notna(), None).replace({np.inf: "inf", -np.inf: "-inf"})
    if "carrier_id" in out:
        out["carrier_id"] = out["carrier_id"].replace("", None)
    return cast(list[dict[str, Any]], out.to_dict("records"))


def _kinds(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["change"].value_counts()
    return {kind: int(counts.get(kind, 0)) for kind in KINDS}


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts().items()}


def _first_records(records: pd.DataFrame, top: int) -> dict[str, dict[str, Any]]:
    """{measure: {kind: {count, first: [[record_type, record_id] ...]}}}, the first `top` in key order."""
    out: dict[str, dict[str, Any]] = {}
    first = records.groupby(["measure_id", "change"]).head(top)
    for key, n in records.groupby(["measure_id", "change"]).size().items():  # measures x kinds, not records
        measure, kind = cast(tuple[str, str], key)
        ids = first.loc[(first["measure_id"] == measure) & (first["change"] == kind), RECORD_KEY].to_numpy().tolist()
        out.setdefault(measure, {})[kind] = {"count": int(n), "first": ids}
    return out


def summarize(a: Side, b: Side, diffs: dict[str, PeriodDiff], top: int) -> dict[str, Any]:
    """The machine-readable report (--json, summary.json): full lists of verdict, figure and ledger
    changes and payee totals; record counts per measure and kind with the first `top` ids."""
    by_period = {
        period: {
            "presence": d.presence,
            "plans": d.plans,
            "identical": d.empty,
            "verdicts": {
                **_kinds(d.verdicts),
                "transitions": _counts(d.verdicts["transition"]),
                "cells": _rows(d.verdicts),
            },
            "figures": {"counts": _counts(d.figures["figure"]), "changes": _rows(d.figures)},
            "payments": {
                "currency": d.currency,
                **{c: sum(d.payees[c], ZERO) for c in d.payees.columns[1:]},
                "lines_changed": _kinds(d.payments),
                "by_payee": _rows(d.payees),
                "lines": _rows(d.payments),
            },
            "records": {**_kinds(d.records), "by_measure": _first_records(d.records, top)},
        }
        for period, d in diffs.items()
    }
    same = all(d.empty for d in diffs.values())
    return {"a": a.describe(), "b": b.describe(), "periods": list(diffs), "identical": same, "by_period": by_period}


def _show(frame: pd.DataFrame, top: int) -> list[str]:
    """The first `top` rows as an indented table, numbers to 6 significant digits."""
    if frame.empty or top == 0:
        return []
    head = frame.head(top)
    shown = head.astype(object).map(lambda v: f"{v:.6g}" if isinstance(v, float) else v).where(head.notna(), "")
    more = [f"  ... {len(frame) - top} more (--top N, or --out DIR for every row)"] if len(frame) > top else []
    return ["  " + line for line in shown.to_string(index=False).splitlines()] + more


def format_text(report: dict[str, Any], diffs: dict[str, PeriodDiff], top: int) -> str:
    """The plain-text report: per period verdict changes and money first, then figures and records."""
    out = []
    for label, side in (("A", report["a"]), ("B", report["b"])):
        run = f"run {side['run_id']} (period {side['run_period']}) of" if side["run_id"] else "current view of"
        out.append(f"{label}: {run} {side['store']}")
    out.append(f"periods compared: {', '.join(report['periods'])}" + ("; no differences" * report["identical"]))
    for period, d in diffs.items() if not report["identical"] else ():
        r = report["by_period"][period]
        where = {"both": "", "added": " (only in B)", "removed": " (only in A)"}[d.presence]
        plans = "" if d.plans["a"] == d.plans["b"] else f", plan {d.plans['a'] or '-'} -> {d.plans['b'] or '-'}"
        out += ["", f"== {period}{where}{plans}" + (": no differences" if d.empty else "")]
        if d.empty:
            continue
        v, pay, rec = r["verdicts"], r["payments"], r["records"]
        transitions = ", ".join(f"{k} {n}" for k, n in v["transitions"].items())
        kinds = f"{v['changed']} changed, {v['added']} added, {v['removed']} removed"
        out.append(f"verdicts: {kinds} ({transitions or '-'})")
        out += _show(d.verdicts[[*CELL_KEY, "status_a", "status_b"]], top)
        lines = pay["lines_changed"]
        cur = d.currency
        out.append(
            f"payments{'' if cur else ' (no ledger)'}: {vocabulary.money(pay['total_a'], cur)} -> "
            f"{vocabulary.money(pay['total_b'], cur)} ({vocabulary.money(pay['difference'], cur, sign=True)}); "
            f"ledger lines {lines['added']} added, {lines['removed']} removed, "
            f"{lines['changed']} changed"
        )
        out += _show(d.payees[d.payees["difference"] != ZERO], top) + _show(d.payments.drop(columns="change"), top)
        figures = ", ".join(f"{k} {n}" for k, n in r["figures"]["counts"].items())
        cells = len(d.figures.drop_duplicates(CELL_KEY))
        out.append(f"figures: {len(d.figures)} changes in {cells} cells ({figures or '-'})")
        out += _show(d.figures, top)
        out.append(f"input records: {rec['added']} added, {rec['removed']} removed, {rec['changed']} changed")
        for measure, kinds in sorted(rec["by_measure"].items()):
            parts = [
                f"{kind} {kinds[kind]['count']}: {' '.join(i for _, i in kinds[kind]['first'])}"
                + (" ..." if kinds[kind]["count"] > len(kinds[kind]["first"]) else "")
                for kind in KINDS
                if kind in kinds
            ]
            out.append(f"  {measure}: " + " | ".join(parts))
    return "\n".join(out)


def write_out(folder: Path, diffs: dict[str, PeriodDiff], report: dict[str, Any]) -> list[Path]:
    """Write verdicts.csv, figures.csv, payments.csv, records.csv (every row, with a period column)
    and summary.json (the --json object) into `folder`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {folder}: {exc}") from exc
    written = []
    for name in OUTPUTS:
        frame = pd.concat([getattr(d, name).assign(period=p) for p, d in diffs.items()], ignore_index=True)
        csv_safe.frame(frame[["period", *frame.columns.drop("period")]]).to_csv(folder / f"{name}.csv", index=False)
        written.append(folder / f"{name}.csv")
    (folder / "summary.json").write_text(json.dumps(report, indent=1, default=str, allow_nan=False) + "\n")
    return [*written, folder / "summary.json"]
