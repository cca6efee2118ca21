"""carrier-sla diff: what changed between two runs of a store, or between the current views of two stores.

A view is every table of every period as one run published it (STORE/runs/RUN_ID/view), or a
store's current view (STORE/current). Per period, from A to B:

- verdicts: cells (measure_id, submeasure, state, product, scope, carrier_id) whose status changed,
  cells added or removed, counts per transition ("met->miss"; "absent" where a cell is missing);
- figures of the cells in both views (FIGURES): only those that changed, with B - A; floats are
  equal within a relative tolerance of 1e-9 (as math.isclose), two nulls are equal; a cell excused
  (or no longer excused) shows as a change of excusal_reference;
- payments: ledger lines (tier, payee, measure_id, submeasure, state, product) added, removed or
  with other occurrences or amount, and totals per payee, in exact decimal arithmetic;
- input records: per measure, records (record_type, record_id) added, removed, or changed in one
  of RECORD_FIELDS. Tables are compared with pandas merges, one measure at a time; a measure whose
  files both views share (the hard links of an unchanged table) is equal without being read.

Periods: --period (repeatable); else the periods both views hold when the two runs computed
different months; else every period of either view (one held by one view only is all added or
all removed). A difference is information: exit 0 with or without differences, 2 (UsageError)
for an unknown store, run or period or a wrong combination of arguments.

This module reads the two views (StoreView) and compares them into one PeriodDiff per period;
carrier_sla.readers.diff_report writes the report (text, JSON, CSV); carrier_sla.cli.diff is the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from carrier_sla import vocabulary
from carrier_sla.errors import UsageError
from carrier_sla.plan.periods import check_period
from carrier_sla.store.view import StoreView, open_store

CELL_KEY = list(vocabulary.CELL_KEY)
FIGURES = (
    "clec_n",
    "clec_value",
    "retail_value",
    "statistic",
    "p_value",
    "critical_value",
    "method",
    "excusal_reference",
)
TEXT_FIGURES = ("method", "excusal_reference")  # excusal_reference: the commission's excusal of the cell, if any
LEDGER_KEY = list(vocabulary.PAYMENT_KEY)
RECORD_KEY = ["record_type", "record_id"]
RECORD_FIELDS = ("included", "exclusion_reason", "value", "state", "product", "carrier_id", "submeasure")
REL_TOL = 1e-9
ZERO = Decimal("0.00")
KINDS = ("changed", "added", "removed")


@dataclass(frozen=True)
class Side:
    """One side of the diff: a run's view of a store, or a store's current view."""

    view: StoreView
    run_period: str | None = None  # the month the run computed (a run's view)

    @property
    def store(self) -> Path:
        return self.view.store

    @property
    def run_id(self) -> str | None:
        return self.view.at_run

    def periods(self) -> set[str]:
        """The periods any table of the view holds."""
        return set(self.view.periods("results", "remedies", "records"))

    def describe(self) -> dict[str, Any]:
        view = str(self.view.root)  # STORE/runs/RUN_ID/view, also for a current view (resolved when opened)
        return {"store": str(self.store), "run_id": self.run_id, "run_period": self.run_period, "view": view}


@dataclass(frozen=True)
class PeriodDiff:
    """The differences of one period as full tables, A -> B; `payees` lists every payee's totals."""

    presence: str  # both, added (only in B) or removed (only in A)
    plans: dict[str, str | None]
    currency: str | None
    verdicts: pd.DataFrame
    figures: pd.DataFrame
    payments: pd.DataFrame
    payees: pd.DataFrame
    records: pd.DataFrame

    @property
    def empty(self) -> bool:
        tables = (self.verdicts, self.figures, self.payments, self.records)
        return all(t.empty for t in tables) and bool((self.payees["difference"] == ZERO).all())


def resolve_sides(stores: list[Path], runs: list[str]) -> tuple[Side, Side]:
    """The two views: two runs of one store (one --store, two --run), or the current views of two stores."""
    if len(stores) == 1 and len(runs) == 2:
        return _run_side(stores[0], runs[0]), _run_side(stores[0], runs[1])
    if len(stores) == 2 and not runs:
        return _current_side(stores[0]), _current_side(stores[1])
    raise UsageError(
        "diff compares one --store with two --run, or two --store (their current views) without --run; "
        f"got {len(stores)} --store and {len(runs)} --run"
    )


def _run_side(store: Path, run_id: str) -> Side:
    view = open_store(store, run_id)  # UsageError naming the runs with a view when it has none
    return Side(view, view.manifest(run_id=run_id).get("period"))


def _current_side(store: Path) -> Side:
    return Side(open_store(store).require_published())


def choose_periods(a: Side, b: Side, requested: list[str]) -> list[str]:
    """The periods to compare (see the module docstring); an unknown period is a usage error."""
    in_a, in_b = a.periods(), b.periods()
    listed = f"(A: {', '.join(sorted(in_a)) or 'none'}; B: {', '.join(sorted(in_b)) or 'none'})"
    for period in requested:
        if check_period(period) not in in_a | in_b:
            raise UsageError(f"period {period} is in neither view {listed}")
    if requested:
        return sorted(set(requested))
    chosen = in_a & in_b if a.run_period and b.run_period and a.run_period != b.run_period else in_a | in_b
    if not chosen:
        raise UsageError(f"no period to compare {listed}; give --period")
    return sorted(chosen)


def _read(
    side: Side, table: str, period: str, columns: list[str], keys: list[str], measure_id: str | None = None
) -> pd.DataFrame:
    """The columns of a table of the period (one measure's records with `measure_id`), dictionaries decoded,
    absent columns null, key columns as text with null as ''; no rows when the view holds none."""
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    held = side.view.has(table, period) if measure_id is None else measure_id in side.view.measures(period)
    if held:
        data = side.view.table(table, period, columns, measure_id=measure_id)
        for i, f in enumerate(data.schema):
            if pa.types.is_dictionary(f.type):
                data = data.set_column(i, f.name, data.column(i).cast(f.type.value_type))
        if data.num_rows:  # (an empty Arrow column of no chunks cannot be merged in pandas 3.0)
            frame = data.to_pandas().reindex(columns=columns)
    frame[keys] = frame[keys].fillna("").astype(str)
    return frame


def _records(side: Side, period: str, measure_id: str) -> pd.DataFrame:
    return _read(side, "records", period, [*RECORD_KEY, *RECORD_FIELDS], RECORD_KEY, measure_id)


def _same_files(a: Side, b: Side, table: str, period: str, measure_id: str | None = None) -> bool:
    """Whether both views hold the very same files (the hard links of an unchanged table)."""
    fa = a.view.fingerprint(table, period, measure_id)
    return bool(fa) and fa == b.view.fingerprint(table, period, measure_id)


def _read_pair(a: Side, b: Side, table: str, period: str, columns: list[str], keys: list[str]) -> list[pd.DataFrame]:
    left = _read(a, table, period, columns, keys)
    return [left, left if _same_files(a, b, table, period) else _read(b, table, period, columns, keys)]


def _same(x: pd.Series, y: pd.Series) -> np.ndarray:
    """Element-wise equality where two nulls are equal."""
    return np.asarray((x == y).fillna(False), dtype=bool) | np.asarray(x.isna() & y.isna())


def _close(x: pd.Series, y: pd.Series) -> np.ndarray:
    """Float equality within REL_TOL (relative, as math.isclose), two NaN equal."""
    u = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float)
    v = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        near = np.isfinite(u) & np.isfinite(v) & (np.abs(u - v) <= REL_TOL * np.maximum(np.abs(u), np.abs(v)))
    return np.asarray((u == v) | near | (np.isnan(u) & np.isnan(v)))


def _outer(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Outer merge on keys with a `change` column: changed (in both; still to check), added, removed."""
    m = a.merge(b, on=keys, how="outer", suffixes=("_a", "_b"), indicator=True)
    m["change"] = np.select([m["_merge"] == "right_only", m["_merge"] == "left_only"], ["added", "removed"], "changed")
    return m.drop(columns="_merge")


def diff_verdicts(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Cells whose status changed, added or removed; those with a miss on either side first."""
    m = _outer(a[[*CELL_KEY, "status"]], b[[*CELL_KEY, "status"]], CELL_KEY)
    m = m[(m["change"] != "changed") | ~_same(m["status_a"], m["status_b"])].copy()
    m["transition"] = m["status_a"].fillna("absent").astype(str) + "->" + m["status_b"].fillna("absent").astype(str)
    miss = np.asarray((m["status_a"] == "miss") | (m["status_b"] == "miss"))
    m["_order"] = np.where(miss, 0, 3) + pd.Categorical(m["change"], categories=KINDS).codes
    return m.sort_values(["_order", *CELL_KEY])[[*CELL_KEY, "change", "transition", "status_a", "status_b"]]


def diff_figures(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """One row per changed figure of a cell in both: a, b and (numbers) the difference b - a."""
    columns = [*CELL_KEY, *FIGURES]  # a figure a side lacks (excusal_reference before excusals) is null
    m = a.reindex(columns=columns).merge(b.reindex(columns=columns), on=CELL_KEY, suffixes=("_a", "_b"))
    parts = []
    for name in FIGURES:
        x, y = m[f"{name}_a"], m[f"{name}_b"]
        text = name in TEXT_FIGURES
        changed = ~(_same(x, y) if text else _close(x, y))
        part = m.loc[changed, CELL_KEY].assign(figure=name, a=x[changed].astype(object), b=y[changed].astype(object))
        part["difference"] = None if text else (y[changed] - x[changed]).astype(object)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True).reindex(columns=[*CELL_KEY, "figure", "a", "b", "difference"])
    return frame.sort_values(CELL_KEY, kind="stable").reset_index(drop=True)


def diff_payments(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ledger lines added, removed or changed (occurrences or amount), largest difference first, and
    every payee's totals; amounts are Decimal and every sum and difference exact."""
    columns = [*LEDGER_KEY, "occurrences", "amount"]
    m = _outer(a[columns], b[columns], LEDGER_KEY)
    same = _same(m["amount_a"], m["amount_b"]) & _close(m["occurrences_a"], m["occurrences_b"])
    m = m[(m["change"] != "changed") | ~same].copy()
    before, after = (m[c].where(m[c].notna(), ZERO) for c in ("amount_a", "amount_b"))
    m["difference"] = after - before
    m["_size"] = -m["difference"].map(abs).astype(float)
    order = [*LEDGER_KEY, "change", "occurrences_a", "occurrences_b", "amount_a", "amount_b", "difference"]
    lines = m.sort_values(["_size", *LEDGER_KEY])[order].reset_index(drop=True)
    payees = sorted(set(a["payee"]) | set(b["payee"]))
    sum_a, sum_b = (frame.groupby("payee")["amount"].sum() for frame in (a, b))
    totals = pd.DataFrame({"payee": payees, "total_a": [sum_a.get(p, ZERO) for p in payees]})  # a loop per payee
    totals["total_b"] = [sum_b.get(p, ZERO) for p in payees]
    totals["difference"] = totals["total_b"] - totals["total_a"]
    totals["_size"] = -totals["difference"].map(abs).astype(float)
    return lines, totals.sort_values(["_size", "payee"]).drop(columns="_size").reset_index(drop=True)


def diff_records(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Records added, removed or changed (the differing fields in `changed_fields`), by key."""
    m = _outer(a, b, RECORD_KEY)
    both = np.asarray(m["change"] == "changed")
    masks = {f: both & ~(_close if f == "value" else _same)(m[f"{f}_a"], m[f"{f}_b"]) for f in RECORD_FIELDS}
    keep = ~both | np.logical_or.reduce(list(masks.values()))
    out = m[keep].copy()
    labels = pd.Series("", index=out.index, dtype=object)
    for name, mask in masks.items():  # a loop over the fields, each step vectorized over the records
        labels = labels + np.where(mask[keep], name + ";", "")
    out["changed_fields"] = labels.str.rstrip(";")
    pairs = [c for f in RECORD_FIELDS for c in (f"{f}_a", f"{f}_b")]
    return out[[*RECORD_KEY, "change", "changed_fields", *pairs]].sort_values(RECORD_KEY)


def compare_period(a: Side, b: Side, period: str) -> PeriodDiff:
    """Read the period's results, ledger and records of both views and compare them."""
    for side in (a, b):
        side.view.check(period)  # every file its runs wrote is there
    ra, rb = _read_pair(a, b, "results", period, [*CELL_KEY, "status", *FIGURES, "plan_id", "plan_version"], CELL_KEY)
    la, lb = _read_pair(a, b, "remedies", period, [*LEDGER_KEY, "occurrences", "amount", "currency"], LEDGER_KEY)
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in [*RECORD_KEY, *RECORD_FIELDS]})
    measures = [diff_records(empty, empty).assign(measure_id="")]
    for measure_id in sorted(set(a.view.measures(period)) | set(b.view.measures(period))):
        # one measure at a time: the memory of the largest measure, not the month's
        if not _same_files(a, b, "records", period, measure_id):
            pair = (_records(a, period, measure_id), _records(b, period, measure_id))
            measures.append(diff_records(*pair).assign(measure_id=measure_id))
    records = pd.concat(measures, ignore_index=True)
    in_a, in_b = period in a.periods(), period in b.periods()
    plans = {
        s: f"{r['plan_id'].iloc[0]} {r['plan_version'].iloc[0]}" if len(r) else None
        for s, r in zip("ab", [ra, rb], strict=True)
    }
    currency = next(iter(pd.concat([la["currency"], lb["currency"]]).dropna()), None)
    return PeriodDiff(
        "both" if in_a and in_b else ("added" if in_b else "removed"),
        plans,
        currency,
        diff_verdicts(ra, rb),
        diff_figures(ra, rb),
        *diff_payments(la, lb),
        records[["measure_id", *RECORD_KEY, *records.columns.drop(["measure_id", *RECORD_KEY])]],
    )


def diff_stores(
    stores: list[Path], runs: list[str], periods: list[str] | None = None
) -> tuple[Side, Side, dict[str, PeriodDiff]]:
    """Two runs of one store (one store, two run ids) or the current views of two stores, compared per
    period (see the module docstring for the periods chosen); carrier_sla.readers.diff_report writes it out."""
    a, b = resolve_sides([Path(s) for s in stores], runs)
    return a, b, {period: compare_period(a, b, period) for period in choose_periods(a, b, periods or [])}
