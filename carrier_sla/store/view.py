"""One view of a store, for every reader: open a store at its current view or at a past run,
list the months and runs it holds, read any table of a month, and get the plan a month was judged under.

    view = open_store("out/store")            # the current view, resolved once
    view.periods()                            # ["2026-08", "2026-09", "2026-10"]
    view.results("2026-10")                   # a pandas DataFrame; .table(...) gives Arrow
    view.plan("2026-10")                      # the Plan the run that published 2026-10 used
    view.run("20261031T020000Z-1a2b3c")       # the store as that run published it

A view is resolved once when it is opened (STORE/current -> runs/RUN_ID/view, never modified
after its publication), so everything read through one StoreView belongs to one publication even
while a run publishes. The readers (report, package, explain, diff, what-if, history, the portal)
read the store only through this module: none of them lists folders, builds a table's path, opens
a Parquet file or resolves STORE/current itself. One function reads a published table's files
(`_read_folder`): StoreView's tables, and `read_table(store, table, period)` for callers that hold a
store's path (the engine reads the months before the one it runs through it).

Before a (table, month) is read, its files are checked against the manifest of the run that wrote
them (carrier_sla.store.verify.require_period: presence and size), once per view: a damaged store
is a StoreDamaged error (exit 5), never a silently shorter table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from carrier_sla.errors import CarrierSlaError, StoreDamaged, StoreError, UsageError
from carrier_sla.plan.load import Plan, load_plan, plan_from_document, resolve_plan_path
from carrier_sla.store import layout, verify

MEASURE_PARTITIONS = ("measure_id=",)  # records/period=P/measure_id=ID


def read_table(
    store: Path | str,
    table: str,
    period: str,
    columns: Sequence[str] | None = None,
    where: Mapping[str, object] | None = None,
) -> pa.Table:
    """One published table of a month (all its files), from the current view of `store` resolved once (or
    from `store` itself when it is a view); StoreError when the month has none, StoreDamaged when a file its
    run wrote is missing, has another size than when written, or cannot be read.

    `columns`: only those of the named columns the table has (a column of a later version missing from an
    older run's table is left out, not an error); `where`: rows whose columns equal the values."""
    root = layout.view_root(Path(store))
    folder = root / table / f"period={period}"
    if not folder.is_dir():
        raise StoreError(f"{Path(store) / table / f'period={period}'}: no published {table} for period {period}")
    verify.require_period(root, period, (table,))
    return _read_folder(root, table, period, columns, where)


def _read_folder(
    root: Path,
    table: str,
    period: str,
    columns: Sequence[str] | None,
    where: Mapping[str, object] | None,
    folder: Path | None = None,
    measure_id: str | None = None,
) -> pa.Table:
    """A table's files of one month (or, with `folder` and `measure_id`, of one measure's records),
    checked to be of this output schema version, with the partition keys of its path (`period`, and
    `measure_id` under records) appended as text columns, as a Hive reader gives them."""
    folder = folder if folder is not None else root / table / f"period={period}"
    try:
        dataset = ds.dataset(folder, format="parquet", partitioning=None if measure_id else layout.partitioning(table))
        if dataset.files:
            layout.require_schema_version(layout.store_of(root), dataset.files[0])
        names = None if columns is None else [c for c in columns if c in dataset.schema.names]
        condition = None
        for column, value in (where or {}).items():
            if column == "period" or (column == "measure_id" and measure_id is not None):
                continue  # partition keys of this folder: every row has them
            term = ds.field(column) == value
            condition = term if condition is None else condition & term
        data = dataset.to_table(columns=names, filter=condition)
    except (OSError, pa.ArrowInvalid) as exc:
        raise StoreDamaged(str(layout.store_of(root)), [f"{folder}: unreadable ({exc})"]) from exc
    keys = {"measure_id": measure_id} if measure_id is not None else {}
    keys["period"] = period
    for key, value in keys.items():
        if key not in data.column_names and (columns is None or key in columns):
            data = data.append_column(key, pa.array([value] * data.num_rows, pa.string()))
    return data


class StoreView:
    """The tables of a store as one publication shows them: the current view, or a past run's."""

    def __init__(self, store: Path | str, run_id: str | None = None):
        self.store = Path(store)
        self.at_run = run_id  # the run the view was opened at (None: the current view)
        self._checked: set[tuple[str, str]] = set()
        if not self.store.is_dir():
            raise UsageError(f"{self.store}: no such store")
        if run_id is None:
            self.root = layout.view_root(self.store)
            self.run_id = self.root.parent.name if self.root != self.store else None
            return
        folder = self.store / "runs" / run_id
        if "/" in run_id or run_id.startswith(".") or not run_id or not (folder / layout.VIEW).is_dir():
            raise UsageError(self._no_run(run_id))
        self.root = folder / layout.VIEW
        self.run_id = run_id

    def _no_run(self, run_id: str) -> str:
        """Why `run_id` cannot be opened: unknown, or a run that published nothing (its status)."""
        with_view = [r for r in self.run_ids() if (self.store / "runs" / r / layout.VIEW).is_dir()]
        listing = f"runs with a view: {', '.join(with_view) or 'none'}; `carrier-sla history` lists every run"
        known = run_id in self.run_ids() and "/" not in run_id
        status = self.manifest(run_id=run_id).get("status", "unknown") if known else None
        why = f"run {run_id} has no published view (status {status})" if known else f"unknown run {run_id!r}"
        return f"no published run {run_id!r} in {self.store}: {why} ({listing})"

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

    @property
    def label(self) -> str:
        """Where the view lies in the store: `current`, or `runs/RUN_ID/view` for a view opened at a run."""
        return layout.CURRENT if self.at_run is None else f"runs/{self.at_run}/{layout.VIEW}"

    def run_ids(self) -> list[str]:
        """Every run of the store that wrote a manifest (published, failed or killed), by id (= start time)."""
        runs = self.store / "runs"
        return sorted(p.parent.name for p in runs.glob("*/manifest.json")) if runs.is_dir() else []

    # ------------------------------------------------------------------ what the view holds

    @property
    def published(self) -> bool:
        """Whether the view holds anything (False for a store no run has published to yet)."""
        return self.root != self.store

    def require_published(self) -> StoreView:
        """The view itself; UsageError when nothing was published to the store yet."""
        if not self.published:
            raise UsageError(f"{self.store}: nothing published yet (no {layout.CURRENT} view)")
        return self

    def periods(self, *tables: str) -> list[str]:
        """The months with a published table of `tables` (default: results) in this view, in order."""
        found: set[str] = set()
        for table in tables or ("results",):
            found.update(layout.published_periods(self.root, table))
        return sorted(found)

    def has(self, table: str, period: str) -> bool:
        return (self.root / table / f"period={period}").is_dir()

    @cached_property
    def provenance(self) -> dict[str, dict[str, str]]:
        """{table: {"period=YYYY-MM": run id}}: which run published each table of each month."""
        return layout.read_provenance(self.root) if self.published else {}

    def run_of(self, period: str, table: str = "results") -> str | None:
        """The id of the run that published `table` of `period` in this view (None when none did)."""
        return self.provenance.get(table, {}).get(f"period={period}")

    def runs_of(self, period: str, tables: Sequence[str] | None = None) -> dict[str, str]:
        """{table: run id} of the tables (default: all) of `period` in this view."""
        key = f"period={period}"
        return {t: by[key] for t, by in self.provenance.items() if key in by and (tables is None or t in tables)}

    def run_folder(self, run_id: str) -> Path:
        """runs/RUN_ID of the store: the run's manifest, log, plan and (a failed run's) rejects."""
        return self.store / "runs" / run_id

    def manifest_path(self, run_id: str) -> Path:
        return self.run_folder(run_id) / "manifest.json"

    def manifest(self, period: str | None = None, run_id: str | None = None, table: str = "results") -> dict[str, Any]:
        """The manifest of a run: `run_id`, or the run that published `table` of `period` in this view."""
        if run_id is None:
            if period is None:
                raise UsageError("manifest: give a period or a run id")
            run_id = self.run_of(period, table)
            if run_id is None:
                raise StoreError(f"{self.store}: no published {table} for period {period} in its {self.label} view")
        found = verify.read_manifest(self.store, run_id)
        if isinstance(found, verify.Problem):
            raise StoreError(f"{self.store}/{found}: the manifest of run {run_id}")
        return found

    def plan(self, period: str, known: Plan | None = None) -> Plan:
        """The plan `period` was judged under (that of the run which published its results): the one
        definition is recorded_plan below."""
        return recorded_plan(self.root, period, known=known)

    def check(self, period: str, tables: Sequence[str] | None = None) -> None:
        """StoreDamaged when a file the view's runs wrote for `period` (of `tables`, default all) is missing or
        has another size than when written (carrier_sla.store.verify.require_period); checked once per view."""
        wanted = tuple(tables) if tables is not None else layout.ALL_TABLES
        todo = tuple(t for t in wanted if (t, period) not in self._checked)
        if todo:
            verify.require_period(self.root, period, todo)
            self._checked.update((t, period) for t in todo)

    # ------------------------------------------------------------------ tables

    def table(
        self,
        name: str,
        period: str,
        columns: Sequence[str] | None = None,
        *,
        where: Mapping[str, object] | None = None,
        measure_id: str | None = None,
        verified: bool = True,
    ) -> pa.Table:
        """One published table of a month, as Arrow; StoreError when the month has none.

        `columns`: those of them the table has; `where`: rows whose columns equal the values;
        `measure_id` (records only): that measure's records alone, read from its own folder.
        `verified=False` skips the check of the files against their run's manifest: only for a run
        that replaces the month and reads its earlier publication as it is (the run repairs a store
        whose manifest of that publication is damaged); readers always verify."""
        if measure_id is None:
            if not self.has(name, period):
                raise StoreError(f"{self.store} ({self.label}): no published {name} for period {period}")
            if verified:
                self.check(period, (name,))
            return _read_folder(self.root, name, period, columns, where)
        folder = self._measure_folder(period, measure_id)
        if folder is None:
            raise StoreError(f"{self.store} ({self.label}): no records of {measure_id} published for period {period}")
        self.check(period, ("records",))
        return _read_folder(self.root, "records", period, columns, where, folder=folder, measure_id=measure_id)

    def frame(self, name: str, period: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One published table of a month, as a pandas DataFrame."""
        return self.table(name, period, columns).to_pandas()

    def results(self, period: str) -> pd.DataFrame:
        """One row per cell: its populations, figures, test, threshold and status."""
        return self.frame("results", period)

    def measures(self, period: str) -> list[str]:
        """The measures with records published for `period`, in order."""
        folder = self.root / "records" / f"period={period}"
        if not folder.is_dir():
            return []
        names = (p.name for p in folder.iterdir() if p.is_dir())
        return sorted(n.split("=", 1)[1] for n in names if n.startswith(MEASURE_PARTITIONS))

    def _measure_folder(self, period: str, measure_id: str) -> Path | None:
        for key in MEASURE_PARTITIONS:
            folder = self.root / "records" / f"period={period}" / f"{key}{measure_id}"
            if folder.is_dir():
                return folder
        return None

    def records(self, period: str, measure_id: str | None = None) -> pd.DataFrame:
        """One row per record and measure it counted in (or was excluded from), with the reason;
        with `measure_id` the records of that measure only (read from its folder alone)."""
        return self.table("records", period, measure_id=measure_id).to_pandas()

    def rejects(self, period: str) -> pd.DataFrame:
        """One row per input row the run could not use, with the reason."""
        return self.frame("rejects", period)

    def remedies(self, period: str) -> pd.DataFrame:
        """The payment ledger: one row per missed cell and payment line."""
        return self.frame("remedies", period)

    def escalation(self, period: str) -> pd.DataFrame:
        """Per payee and tier: consecutive months missed, the state the next month escalates from."""
        return self.frame("escalation", period)

    def statements(self, period: str) -> pd.DataFrame:
        """Every payee's statement of the month, as written (statements/period=P/statement-PAYEE.csv, read as
        text: amounts as their decimal strings; each statement ends with its total line)."""
        folder = self.root / "statements" / f"period={period}"
        if not folder.is_dir():
            raise StoreError(f"{self.store} ({self.label}): no published statements for period {period}")
        self.check(period, ("statements",))
        frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted(folder.glob("statement-*.csv"))]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def statement_file(self, period: str, payee: str) -> Path | None:
        """The CSV statement of one payee of `period` (None when the view holds none)."""
        path = self.root / "statements" / f"period={period}" / f"statement-{payee}.csv"
        if not path.is_file():
            return None
        self.check(period, ("statements",))
        return path

    def adjustments(self, period: str) -> pd.DataFrame:
        """Paid, restated and adjustment per cell of a month restated after payment."""
        return self.frame("adjustments", period)

    def fingerprint(self, table: str, period: str, measure_id: str | None = None) -> frozenset[tuple[str, int, int]]:
        """The identity of a (table, month)'s files (relative path, device, inode): two views whose
        fingerprints are equal hold the very same files (the hard links of an unchanged table), so
        their contents are equal without being read. Empty when the view holds none."""
        if measure_id is None:
            folder: Path | None = self.root / table / f"period={period}"
        else:
            folder = self._measure_folder(period, measure_id)
        if folder is None or not folder.is_dir():
            return frozenset()
        stats = {p: p.stat() for p in folder.rglob("*") if p.is_file()}
        return frozenset((str(p.relative_to(folder)), s.st_dev, s.st_ino) for p, s in stats.items())

    # ------------------------------------------------------------------ runs

    def failed_rejects(self, run_id: str) -> pd.DataFrame:
        """The rejected rows of a run that failed on its reject limit (runs/RUN_ID/rejects.parquet, never published)."""
        path = self.run_folder(run_id) / "rejects.parquet"
        if not path.is_file():
            raise StoreError(f"{self.store}: run {run_id} left no rejects (only a run failed on its reject limit does)")
        try:
            return pq.read_table(path).to_pandas()
        except (OSError, pa.ArrowInvalid) as exc:
            raise StoreDamaged(str(self.store), [f"{path}: unreadable ({exc})"]) from exc

    def inputs(self, period: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        """The input files a run read (path, record type, rows read and rejected, sha256), from its manifest."""
        return list(self.manifest(period, run_id).get("inputs", []))


def recorded_plan(out: Path, period: str, known: Plan | None = None) -> Plan:
    """The plan `period` was judged under: that of the run whose results of the period the current view
    holds (its runs/RUN_ID/plan.json, with the sha256 of its manifest); `known` itself when its sha256
    is the manifest's (the same plan file, read already). For runs made before plan.json was kept: the
    manifest's plan file, when its sha256 is still the manifest's. StoreError otherwise."""
    root = layout.view_root(out)  # `out` may be a store (its current view) or a view (a past run's)
    run_id = layout.read_provenance(root).get("results", {}).get(f"period={period}")
    if run_id is None:
        raise StoreError(f"{out}: the view does not say which run published the results of {period}")
    folder = layout.store_of(root) / "runs" / run_id
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
        f"run {run_id} kept no plan.json, and no plan file has its sha256 {want.get('sha256')}: the plan "
        f"{period} was judged under (the plan of the run that published it) cannot be read back"
    )


def open_store(store: Path | str, run_id: str | None = None) -> StoreView:
    """The current view of `store` (or, with `run_id`, the view that run published)."""
    return StoreView(store, run_id)
