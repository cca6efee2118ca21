"""What a portal user may see, read through the store view; pure of the web framework.

Every function takes the carrier whose data is asked for, already checked against the user's
role by the caller (app.py), and returns only that carrier's rows plus the all-CLEC aggregate
figures of the same cells: the selections are the package's own (carrier_sla.readers.package),
so a page and a download show what `carrier-sla package` would give. Every name that comes from
a URL (period, run id, measure, cell key, record id, table) is looked up among what the store
view lists, never used to build a path: an unknown one raises NotFound (HTTP 404), whether it
does not exist or belongs to another carrier, so that ids do not leak.
"""

from __future__ import annotations

import io
import math
import tempfile
import threading
import zipfile
from collections import OrderedDict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv

from carrier_sla import vocabulary
from carrier_sla.errors import UsageError
from carrier_sla.readers import explain, package
from carrier_sla.readers.explain_cell import KEY, plain_row
from carrier_sla.readers.report_charts import bar_chart, line_chart
from carrier_sla.store import csv_safe
from carrier_sla.store.view import StoreView, open_store

CELL = vocabulary.MEASURE_CELL  # a CLEC cell in a URL (measure_id, submeasure, state, product), the carrier in the path
CSV_TABLES = ("results", "remedies", "rejects", "statement")  # the per-month CSV downloads (records: per measure)
TREND_MONTHS = 12


class NotFound(LookupError):
    """Nothing the user may see under this name (it does not exist, or is another carrier's)."""


class Portal:
    """The store as the portal reads it: a view per request (the current one or a published run's)."""

    def __init__(self, store: Path | str, cache_size: int = 64):
        self.store = Path(store)
        self._cache: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ views, cached per publication

    def view(self, run_id: str | None = None) -> StoreView:
        current = open_store(self.store)
        if run_id is None:
            return current
        if run_id not in current.runs():
            raise NotFound(run_id)
        return current.run(run_id)

    def _cached(self, view: StoreView, what: str, period: str, load: Any) -> Any:
        """A table read once per published view (a view's files never change after publication)."""
        key = (str(view.root), what, period)
        with self._lock:  # pages are served from a thread pool
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = load()
        with self._lock:
            self._cache[key] = value
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    def results(self, view: StoreView, period: str) -> pd.DataFrame:
        """The month's results with seeds as exact integers (uint64 through float64 would round)."""

        def load() -> pd.DataFrame:
            table = view.table("results", period)
            frame = package.plain(table).to_pandas()
            if "seed" in frame:
                frame["seed"] = pd.Series(table.column("seed").to_pylist(), index=frame.index, dtype=object)
            return frame

        return self._cached(view, "results", period, load)

    def _table(self, view: StoreView, name: str, period: str) -> pd.DataFrame | None:
        if not view.has(name, period):
            return None
        return self._cached(view, name, period, lambda: package.plain(view.table(name, period)).to_pandas())

    def period(self, view: StoreView, period: str) -> str:
        if period not in view.periods():
            raise NotFound(period)
        return period

    def carriers(self, view: StoreView) -> list[str]:
        """The CLECs with result rows in any month of the view (for staff to switch between)."""
        found: set[str] = set()
        for period in view.periods():
            r = self.results(view, period)
            found |= set(r.loc[r["scope"] == vocabulary.CLEC, "carrier_id"].dropna().astype(str))
        return sorted(found - {vocabulary.AGGREGATE})  # the aggregate is never a carrier

    def check_carrier(self, view: StoreView, carrier: str) -> str:
        if carrier == vocabulary.AGGREGATE or carrier not in self.carriers(view):
            raise NotFound(carrier)
        return carrier

    # ------------------------------------------------------------------ pages

    def months(self, view: StoreView, carrier: str) -> list[dict[str, Any]]:
        """Every month of the view: final or provisional, restated or not, the carrier's cells, misses, owed."""
        out = []
        for period in reversed(view.periods()):
            manifest = view.manifest(period)
            own = self._own(self.results(view, period), carrier)
            adjustments = self._table(view, "adjustments", period)
            out.append(
                {
                    "period": period,
                    "provisional": bool(manifest.get("provisional")),
                    "provisional_as_of": manifest.get("provisional_as_of"),
                    "restated": adjustments is not None and len(adjustments) > 0,
                    "run_id": view.run_of(period),
                    "cells": len(own),
                    "misses": int((own["status"] == "miss").sum()),
                    "owed": self.owed(view, period, carrier),
                }
            )
        return out

    @staticmethod
    def _own(results: pd.DataFrame, carrier: str) -> pd.DataFrame:
        """The carrier's own cells (scope clec): never the aggregate's, whatever is asked."""
        if carrier == vocabulary.AGGREGATE:
            return results.iloc[0:0]
        return results[(results["scope"] == vocabulary.CLEC) & (results["carrier_id"] == carrier)]

    @staticmethod
    def _aggregate(results: pd.DataFrame) -> pd.DataFrame:
        """The all-CLEC aggregate's cells (scope clec_aggregate, carrier_id _all)."""
        aggregate = (results["scope"] == vocabulary.CLEC_AGGREGATE) & (results["carrier_id"] == vocabulary.AGGREGATE)
        return results[aggregate]

    def owed(self, view: StoreView, period: str, carrier: str) -> Decimal:
        """The ledger lines paid to the carrier in the month, to the cent (the package's total)."""
        ledger = self._table(view, "remedies", period)
        if ledger is None or ledger.empty:
            return Decimal("0.00")
        amounts = ledger.loc[ledger["payee"] == carrier, "amount"]
        return sum(amounts, Decimal(0)).quantize(Decimal("0.01"))

    def summary(self, view: StoreView, period: str, carrier: str) -> dict[str, Any]:
        """Verdicts by measure (measures with misses first), the missed cells with what each paid, money owed."""
        results = self.results(view, period)
        own = self._own(results, carrier)
        if own.empty:
            raise NotFound(carrier)
        plan = view.plan(period)
        titles = {m.id: m.title for m in plan.measures}
        ledger = self._table(view, "remedies", period)
        paid: dict[tuple[str, ...], Decimal] = {}
        if ledger is not None and not ledger.empty:
            mine = ledger[ledger["payee"] == carrier]
            for row in mine.to_dict("records"):
                key = tuple(str(row[k]) for k in CELL)
                paid[key] = paid.get(key, Decimal(0)) + row["amount"]
        measures: list[dict[str, Any]] = []
        for measure_id, rows in own.groupby("measure_id", sort=False):
            counts = rows["status"].value_counts()
            measures.append(
                {
                    "measure_id": str(measure_id),
                    "title": titles.get(str(measure_id), ""),
                    "cells": len(rows),
                    "miss": int(counts.get("miss", 0)),
                    "met": int(counts.get("met", 0)),
                    "other": int(len(rows) - sum(counts.get(v, 0) for v in vocabulary.VERDICTS)),
                }
            )
        order = [m.id for m in plan.measures]
        measures.sort(key=lambda m: (-m["miss"], order.index(m["measure_id"]) if m["measure_id"] in order else 999))
        cells = []
        for row in own.sort_values(list(vocabulary.READING_ORDER)).to_dict("records"):
            key = tuple(str(row[k]) for k in CELL)
            cells.append(self._cell_line(row, titles) | {"paid": paid.get(key)})
        cells.sort(key=lambda c: c["status"] != "miss")  # stable: misses first, each group in key order
        return {
            "measures": measures,
            "cells": cells,
            "owed": self.owed(view, period, carrier),
            "currency": plan.remedies.currency if plan.remedies else None,
        }

    @staticmethod
    def _cell_line(row: dict[Any, Any], titles: dict[str, str]) -> dict[str, Any]:
        return {
            k: row[k]
            for k in (
                *CELL,
                "status",
                "standard",
                "unit",
                "clec_n",
                "clec_value",
                "retail_value",
                "benchmark",
                "method",
                "p_value",
                "excused",
            )
        } | {"title": titles.get(str(row["measure_id"]), ""), "query": {k: str(row[k]) for k in CELL}}

    def find_cell(self, results: pd.DataFrame, carrier: str, key: dict[str, str]) -> dict[str, Any]:
        """The carrier's one result row of the cell key; NotFound when it has none."""
        if set(key) != set(CELL) or not all(isinstance(v, str) for v in key.values()):
            raise NotFound("cell")
        rows = self._own(results, carrier)
        for k in CELL:
            rows = rows[rows[k].astype(str) == key[k]]
        if len(rows) != 1:
            raise NotFound("cell")
        return plain_row(rows.iloc[0].to_dict())

    def cell(
        self, view: StoreView, period: str, carrier: str, key: dict[str, str], run_id: str | None = None
    ) -> dict[str, Any]:
        """What `carrier-sla explain` shows for the carrier's cell, the aggregate figures of the same cell,
        and the cell's trend over the months of the view."""
        results = self.results(view, period)
        cell = self.find_cell(results, carrier, key)
        plan = view.plan(period)
        manifest = view.manifest(period)
        records = view.records(period, cell["measure_id"])
        records = records[records["state"].astype(str) == cell["state"]]
        run = {
            "run_id": view.run_of(period),
            "view": "the current view" if run_id is None else f"the view of run {run_id}",
            **{k: manifest.get(k) for k in ("status", "started_at", "finished_at", "as_of")},
            "plan": {
                **{k: manifest.get("plan", {}).get(k) for k in ("id", "version", "sha256")},
                "source": f"the plan kept by run {view.run_of(period)}",
            },
            "remedies_run": view.run_of(period, "remedies"),
        }
        e = explain.explanation(
            plan,
            cell,
            records,
            run=run,
            ledger=self._table(view, "remedies", period),
            escalation=self._table(view, "escalation", period),
            adjustments=self._table(view, "adjustments", period),
        )
        aggregate = self._aggregate(results)
        for k in CELL:
            aggregate = aggregate[aggregate[k].astype(str) == cell[k]]
        e["aggregate"] = plain_row(aggregate.iloc[0].to_dict()) if len(aggregate) else None
        e["trend"] = self._cell_trend(view, period, carrier, cell)
        return e

    def _cell_trend(self, view: StoreView, period: str, carrier: str, cell: dict[str, Any]) -> str:
        months = [p for p in view.periods() if p <= period][-TREND_MONTHS:]
        series: dict[str, list[float]] = {"this CLEC": [], "all CLECs": [], "retail": []}
        for month in months:
            r = self.results(view, month)
            same = r
            for k in CELL:
                same = same[same[k].astype(str) == cell[k]]
            own = self._own(same, carrier)
            agg = self._aggregate(same)
            series["this CLEC"].append(_value(own, "clec_value"))
            series["all CLECs"].append(_value(agg, "clec_value"))
            series["retail"].append(_value(agg, "retail_value"))
        if all(math.isnan(v) for v in series["retail"]):
            del series["retail"]
        benchmark = cell["benchmark"] if cell["standard"] == "benchmark" else None
        title = f"{cell['measure_id']} {cell['state']} {cell['product']} {cell['submeasure']}"
        return line_chart(months, series, title, str(cell["unit"]), benchmark)

    def trends(self, view: StoreView, carrier: str, last: str | None = None) -> dict[str, Any]:
        """Per measure, the carrier's value pooled over its cells (sum of numerators over sum of counts),
        the all-CLEC and retail values pooled alike, over the last 12 months of the view; misses per month."""
        months = [p for p in view.periods() if last is None or p <= last][-TREND_MONTHS:]
        if not months:
            raise NotFound("months")
        plan = view.plan(months[-1])
        charts, misses = [], []
        for measure in plan.measures:
            series: dict[str, list[float]] = {"this CLEC": [], "all CLECs": [], "retail": []}
            benchmarks: set[float] = set()
            for month in months:
                r = self.results(view, month)
                r = r[r["measure_id"] == measure.id]
                own = self._own(r, carrier)
                agg = self._aggregate(r)
                series["this CLEC"].append(_pooled(own, "clec", measure.scale))
                series["all CLECs"].append(_pooled(agg, "clec", measure.scale))
                parity = agg[agg["standard"] == "parity"]
                series["retail"].append(_pooled(parity, "retail", measure.scale))
                benchmarks |= set(own.loc[own["standard"] == "benchmark", "benchmark"].dropna())
            if all(math.isnan(v) for v in series["this CLEC"]):
                continue
            if all(math.isnan(v) for v in series["retail"]):
                del series["retail"]
            benchmark = next(iter(benchmarks)) if len(benchmarks) == 1 else None
            charts.append(line_chart(months, series, f"{measure.id} {measure.title}", measure.unit, benchmark))
        for month in months:
            own = self._own(self.results(view, month), carrier)
            misses.append(float((own["status"] == "miss").sum()))
        bars = bar_chart(months, misses, f"missed cells of {carrier} per month")
        return {"months": months, "charts": charts, "misses": bars}

    # ------------------------------------------------------------------ records

    def record(self, view: StoreView, period: str, carrier: str, measure_id: str, record_id: str) -> list[dict]:
        """The carrier's rows of one record in one measure (one per cell it was evaluated in)."""
        measures = {m.id for m in view.plan(period).measures}
        if measure_id not in measures or measure_id not in view.measures(period):
            raise NotFound(measure_id)  # not a measure of the plan, or one with no records published
        records = view.records(period, measure_id)
        rows = records[(records["carrier_id"].astype(str) == carrier) & (records["record_id"].astype(str) == record_id)]
        if rows.empty:
            raise NotFound(record_id)
        return [plain_row(r) for r in rows.to_dict("records")]

    # ------------------------------------------------------------------ downloads

    def csv(self, view: StoreView, period: str, carrier: str, table: str, measure_id: str | None = None) -> bytes:
        """One of the carrier's tables of the month as CSV, text cells neutralised against formula injection;
        the rows are those of the package's file of the same name. NotFound, as for the package, when the
        carrier has neither a result row nor a ledger line in the month."""
        ledger = self._table(view, "remedies", period)
        paid = ledger is not None and not ledger.empty and bool((ledger["payee"] == carrier).any())
        if self._own(self.results(view, period), carrier).empty and not paid:
            raise NotFound(carrier)
        if table == "statement":
            path = view.statement_file(period, carrier)  # carrier and period are ids the view lists
            if path is None:
                raise NotFound(table)
            return path.read_bytes()  # as written, as the package copies it
        if table == "records":
            if measure_id not in {m.id for m in view.plan(period).measures} or measure_id not in view.measures(period):
                raise NotFound(str(measure_id))  # not a measure of the plan, or one with no records published
            records = view.table("records", period, measure_id=measure_id)  # that measure's folder alone
            data: pa.Table | None = package.select_records(records, carrier, measure_id)
        elif table == "results":
            data = package.select_results(view.table("results", period), carrier)
        elif table == "remedies" and view.has("remedies", period):
            data = package.select_remedies(view.table("remedies", period), carrier)
        elif table == "rejects" and view.has("rejects", period):
            data = package.select_rejects(view.table("rejects", period), carrier)
        else:
            raise NotFound(table)
        if data is None:
            raise NotFound(table)
        package.check_isolated(table, data, carrier)
        sink = io.BytesIO()
        pcsv.write_csv(csv_safe.table(data), sink)
        return sink.getvalue()

    def package_zip(self, period: str, carrier: str, run_id: str | None = None) -> bytes:
        """The zip of `carrier-sla package --period P --carrier C` (with --run for a run's view):
        the same files and manifest, in a folder package-C-P/."""
        with tempfile.TemporaryDirectory(prefix="carrier-sla-portal-") as tmp:
            out = Path(tmp) / f"package-{carrier}-{period}"
            try:
                package.build_package(self.store, period, carrier, out, run_id=run_id)
            except UsageError as exc:  # no results and no remedies of the carrier in the month
                raise NotFound(carrier) from exc
            sink = io.BytesIO()
            with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(p for p in out.rglob("*") if p.is_file()):
                    archive.write(path, f"{out.name}/{path.relative_to(out).as_posix()}")
            return sink.getvalue()


def _value(rows: pd.DataFrame, column: str) -> float:
    if len(rows) != 1:
        return math.nan
    value = rows[column].iloc[0]
    return math.nan if value is None or pd.isna(value) else float(value)


def _pooled(rows: pd.DataFrame, side: str, scale: float) -> float:
    """sum(numerator) / sum(n) x scale over the rows with activity (the measure's value of the pooled cells)."""
    n = pd.to_numeric(rows[f"{side}_n"], errors="coerce").fillna(0).sum() if len(rows) else 0
    if not n:
        return math.nan
    return float(pd.to_numeric(rows[f"{side}_numerator"], errors="coerce").fillna(0).sum() / n * scale)


__all__ = ["CELL", "CSV_TABLES", "KEY", "NotFound", "Portal"]
