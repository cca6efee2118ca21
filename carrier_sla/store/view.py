"""One view of a store, for every reader: open a store at its current view or at a past run,
list the months it holds, read any table of a month, and get the plan a month was judged under.

    view = open_store("out/store")            # the current view, resolved once
    view.periods()                            # ["2026-08", "2026-09", "2026-10"]
    view.results("2026-10")                   # a pandas DataFrame; .table(...) gives Arrow
    view.plan("2026-10")                      # the Plan the run that published 2026-10 used
    view.run("20261031T020000Z-1a2b3c")       # the store as that run published it

A view is resolved once when it is opened (STORE/current -> runs/RUN_ID/view, never modified
after its publication), so everything read through one StoreView belongs to one publication even
while a run publishes. The readers (report, package, explain, diff, what-if, history, the portal)
read the store only through this class: none of them lists folders or opens Parquet files itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from carrier_sla.errors import CarrierSlaError, StoreError, UsageError
from carrier_sla.plan.load import Plan, load_plan, plan_from_document, resolve_plan_path
from carrier_sla.store import layout
from carrier_sla.store import layout as store

_PAYEE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # carrier ids and state funds: never a path
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class StoreView:
    """The tables of a store as one publication shows them: the current view, or a past run's."""

    def __init__(self, store: Path | str, run_id: str | None = None):
        self.store = Path(store)
        if not self.store.is_dir():
            raise UsageError(f"{self.store}: no such store")
        if run_id is None:
            self.root = layout.view_root(self.store)
            self.run_id = self.root.parent.name if self.root != self.store else None
        else:
            if "/" in run_id or run_id in ("", ".", ".."):
                raise UsageError(f"{run_id!r}: not a run id")
            self.root = self.store / "runs" / run_id / layout.VIEW
            if not self.root.is_dir():
                raise StoreError(f"{self.store}: run {run_id} published no view (see `carrier-sla history`)")
            self.run_id = run_id

    def __repr__(self) -> str:
        return f"StoreView({str(self.store)!r}, run_id={self.run_id!r})"

    # ------------------------------------------------------------------ views of the same store

    def run(self, run_id: str) -> StoreView:
        """The store as run `run_id` published it (every month of its view, unchanged since)."""
        return StoreView(self.store, run_id)

    def runs(self) -> list[str]:
        """The ids of the store's runs that published a view, oldest first: what `run(run_id)` opens."""
        folder = self.store / "runs"
        return sorted(p.parent.name for p in folder.glob(f"*/{layout.VIEW}") if p.is_dir()) if folder.is_dir() else []

    def current(self) -> StoreView:
        """The store's current view, resolved again now."""
        return StoreView(self.store)

    # ------------------------------------------------------------------ what the view holds

    @property
    def published(self) -> bool:
        """Whether the view holds anything (False for a store no run has published to yet)."""
        return self.root != self.store

    def periods(self, table: str = "results") -> list[str]:
        """The months with a published `table` in this view, in order."""
        return layout.published_periods(self.root, table)

    def has(self, table: str, period: str) -> bool:
        return (self.root / table / f"period={period}").is_dir()

    @cached_property
    def provenance(self) -> dict[str, dict[str, str]]:
        """{table: {"period=YYYY-MM": run id}}: which run published each table of each month."""
        return layout.read_provenance(self.root) if self.published else {}

    def run_of(self, period: str, table: str = "results") -> str | None:
        """The id of the run that published `table` of `period` in this view (None when none did)."""
        return self.provenance.get(table, {}).get(f"period={period}")

    def manifest(self, period: str | None = None, run_id: str | None = None) -> dict[str, Any]:
        """The manifest of a run: `run_id`, or the run that published `period`'s results in this view."""
        if run_id is None:
            if period is None:
                raise UsageError("manifest: give a period or a run id")
            run_id = self.run_of(period)
            if run_id is None:
                raise StoreError(f"{self.store}: no published results for period {period}")
        path = self.store / "runs" / run_id / "manifest.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: cannot read the manifest of run {run_id}: {exc}") from exc

    def plan(self, period: str, known: Plan | None = None) -> Plan:
        """The plan `period` was judged under (that of the run which published its results)."""
        return recorded_plan(self.root, period, known=known)

    # ------------------------------------------------------------------ tables

    def table(self, name: str, period: str, columns: Sequence[str] | None = None) -> pa.Table:
        """One published table of a month, as Arrow; StoreError when the month has none."""
        data = layout.read_table(self.root, name, period)
        return data.select(list(columns)) if columns is not None else data

    def frame(self, name: str, period: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One published table of a month, as a pandas DataFrame."""
        return self.table(name, period, columns).to_pandas()

    def results(self, period: str) -> pd.DataFrame:
        """One row per cell: its populations, figures, test, threshold and status."""
        return self.frame("results", period)

    def records(self, period: str, measure_id: str | None = None) -> pd.DataFrame:
        """One row per record and measure it counted in (or was excluded from), with the reason."""
        data = self.table("records", period)
        if measure_id is not None:
            import pyarrow.compute as pc

            key = "measure_id" if "measure_id" in data.column_names else "measure"
            data = data.filter(pc.equal(data[key].cast(pa.string()), measure_id))
        return data.to_pandas()

    def rejects(self, period: str) -> pd.DataFrame:
        """One row per input row the run could not use, with the reason."""
        return self.frame("rejects", period)

    def remedies(self, period: str) -> pd.DataFrame:
        """The payment ledger: one row per missed cell and payment line."""
        return self.frame("remedies", period)

    def escalation(self, period: str) -> pd.DataFrame:
        return self.frame("escalation", period)

    def statements(self, period: str) -> pd.DataFrame:
        return self.frame("statements", period)

    def statement(self, period: str, payee: str) -> str | None:
        """The text of one payee's payment statement of a month (statements/ holds one CSV per payee:
        its ledger lines, then a total line), as written; None when the month has none for `payee`."""
        if not _PAYEE.match(payee) or not _PERIOD.match(period):
            raise UsageError(f"{payee!r} of {period!r} is not a payee id and a month YYYY-MM")
        path = self.root / "statements" / f"period={period}" / f"statement-{payee}.csv"
        try:
            return path.read_text(encoding="utf-8") if path.is_file() else None
        except OSError as exc:
            raise StoreError(f"{path}: cannot read the statement: {exc.strerror}") from exc

    def adjustments(self, period: str) -> pd.DataFrame:
        """Paid, restated and adjustment per cell of a month restated after payment."""
        return self.frame("adjustments", period)


def recorded_plan(out: Path, period: str, known: Plan | None = None) -> Plan:
    """The plan `period` was judged under: that of the run whose results of the period the current view
    holds (its runs/RUN_ID/plan.json, with the sha256 of its manifest); `known` itself when its sha256
    is the manifest's (the same plan file, read already). For runs made before plan.json was kept: the
    manifest's plan file, when its sha256 is still the manifest's. StoreError otherwise."""
    root = store.view_root(out)  # `out` may be a store (its current view) or a view (a past run's)
    run_id = store.read_provenance(root).get("results", {}).get(f"period={period}")
    if run_id is None:
        raise StoreError(f"{out}: the view does not say which run published the results of {period}")
    folder = store.store_of(root) / "runs" / run_id
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{folder / 'manifest.json'}: cannot read the manifest of the run of {period}: {exc}") from exc
    want = manifest.get("plan", {})
    if known is not None and known.sha256 and known.sha256 == want.get("sha256"):
        return known
    try:
        if (folder / "plan.json").exists():
            plan = plan_from_document(json.loads((folder / "plan.json").read_text()), str(folder / "plan.json"))
            return replace(plan, sha256=want.get("sha256", plan.sha256))
        for candidate in filter(None, (want.get("source"), want.get("id"))):
            try:
                plan = load_plan(resolve_plan_path(candidate))
            except CarrierSlaError:
                continue
            if plan.sha256 == want.get("sha256"):
                return plan
    except (CarrierSlaError, ValueError, OSError) as exc:
        raise StoreError(f"cannot load the plan {period} was judged under (run {run_id}): {exc}") from exc
    raise StoreError(
        f"the run {run_id} that published {period} kept no plan.json, and no plan file has its sha256 "
        f"{want.get('sha256')}: the plan {period} was judged under cannot be read back"
    )


def open_store(store: Path | str, run_id: str | None = None) -> StoreView:
    """The current view of `store` (or, with `run_id`, the view that run published)."""
    return StoreView(store, run_id)
