"""The confidential per-CLEC package: one CLEC's results, records and remedies of one month.

`carrier-sla package --store STORE --period P --carrier C --out DIR [--run RUN_ID]` writes to DIR:
results.parquet/.csv (C's result rows and the all-CLEC aggregate rows of the same cells),
records/measure_id=ID.parquet and records.csv (C's record-level audit rows, its `lines` rows for
rates), remedies.parquet/.csv (the ledger lines paid to C: Tier 1 only), statement.csv (a copy of
C's statement), adjustments.parquet/.csv (a restated month: C's lines paid, restated and adjusted),
rejects.parquet/.csv (only when the rejects table names each row's carrier),
manifest.json (source runs, plan, sha256 and rows of every file) and README.txt (contents, column
notes, the confidentiality notice). Never a record or result row of another carrier: the
selections are pure functions below, and every table is checked again just before it is written.
The data come from one view, resolved once: STORE/current, or with --run STORE/runs/RUN_ID/view.
Files are written into a temporary sibling folder renamed to DIR at the end, so a failure never
leaves a half package; DIR may exist only when empty.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import textwrap
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from carrier_sla import __version__, vocabulary
from carrier_sla.engine.pipeline import check_period
from carrier_sla.errors import StoreError, UsageError
from carrier_sla.store import csv_safe
from carrier_sla.store import layout as store
from carrier_sla.store.view import open_store

PACKAGE_FORMAT_VERSION = "1"
USED_TABLES = ("results", "records", "rejects", "remedies", "statements", "adjustments")  # the tables a package reads
CELL = vocabulary.MEASURE_CELL
CARRIER_COLUMNS = ("carrier_id", "payee")  # columns that name a carrier, checked on every table written
CARRIER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")  # the input contract's pattern


# ---- selections: pure functions of the store's tables -------------------------------------------


def plain(table: pa.Table) -> pa.Table:
    """The table with dictionary columns decoded to their value type and no schema metadata."""
    fields = [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in table.schema]
    return table.cast(pa.schema(fields)).replace_schema_metadata(None)


def _cell_key(table: pa.Table) -> pa.ChunkedArray:
    parts = [pc.fill_null(pc.cast(table[c], pa.string()), "") for c in CELL]
    return pc.binary_join_element_wise(*parts, "\x1f")


def select_results(results: pa.Table, carrier: str) -> pa.Table:
    """C's result rows (scope clec) and the aggregate rows (scope clec_aggregate, carrier_id _all) of
    the cells C has a row in, matched on (measure_id, submeasure, state, product); store order."""
    results = plain(results)
    own = pc.fill_null(pc.and_(pc.equal(results["scope"], "clec"), pc.equal(results["carrier_id"], carrier)), False)
    key = _cell_key(results)
    aggregate = pc.and_(
        pc.equal(results["scope"], "clec_aggregate"), pc.equal(results["carrier_id"], vocabulary.AGGREGATE)
    )
    same_cell = pc.is_in(key, value_set=pc.unique(key.filter(own)))
    return results.filter(pc.or_(own, pc.fill_null(pc.and_(aggregate, same_cell), False)))


def select_records(records: pa.Table, carrier: str, measure_id: str) -> pa.Table:
    """C's rows of one measure's records table, with a measure_id column in front."""
    records = plain(records)
    if "measure_id" in records.column_names:  # the partition key the store view appends: put in front
        records = records.drop_columns(["measure_id"])
    mine = records.filter(pc.fill_null(pc.equal(records["carrier_id"], carrier), False))
    return mine.add_column(0, "measure_id", pa.array([measure_id] * mine.num_rows, pa.string()))


def select_remedies(remedies: pa.Table, carrier: str) -> pa.Table:
    """The ledger lines paid to C (its Tier 1 lines); Tier 2 lines are paid to state funds."""
    remedies = plain(remedies)
    return remedies.filter(pc.fill_null(pc.equal(remedies["payee"], carrier), False))


def select_rejects(rejects: pa.Table, carrier: str) -> pa.Table | None:
    """C's rejected rows when the rejects table names each row's carrier (a carrier_id column);
    None when it does not, as such rows cannot be attributed to a carrier."""
    if "carrier_id" not in rejects.column_names:
        return None
    rejects = plain(rejects)
    return rejects.filter(pc.fill_null(pc.equal(rejects["carrier_id"], carrier), False))


def check_isolated(name: str, table: pa.Table, carrier: str) -> None:
    """Refuse (StoreError) to write a table whose carrier_id or payee names anyone but C (or the
    all-CLEC aggregate, which names no CLEC)."""
    for column in CARRIER_COLUMNS:
        if column in table.column_names:
            values = pc.unique(table[column].drop_null()).to_pylist()
            others = sorted(v for v in values if v not in (carrier, vocabulary.AGGREGATE))
            if others:
                raise StoreError(f"{name}: rows of {len(others)} other carrier(s) selected; package not written")


def ledger_total(remedies: pa.Table) -> Decimal:
    """Sum of the ledger's amount column, to the cent (0.00 without lines)."""
    return column_total(remedies, "amount")


def column_total(table: pa.Table, column: str) -> Decimal:
    """Sum of a money column, to the cent (0.00 without lines)."""
    total = pc.sum(table[column]).as_py() if table.num_rows else None
    return (total or Decimal(0)).quantize(Decimal("0.01"))


# ---- the store's view ---------------------------------------------------------------------------


class View:
    """The tables of one month of one published view of the store (carrier_sla.store.view.StoreView,
    resolved once: the current view or a run's), as the package reads them."""

    def __init__(self, store_path: Path, period: str, run_id: str | None):
        self.view = open_store(store_path, run_id).require_published()
        self.store, self.period, self.label = self.view.store, period, self.view.label
        self.view.check(period, USED_TABLES)  # every file its runs wrote is there
        if not self.view.has("results", period):
            known = ", ".join(self.view.periods()) or "none"
            raise UsageError(f"no results for period {period} in {self.store} ({self.label}); periods: {known}")
        self.runs = self.view.runs_of(period, USED_TABLES)

    def has(self, table: str) -> bool:
        return self.view.has(table, self.period)

    def read(self, table: str, carrier: str | None = None, measure_id: str | None = None) -> pa.Table:
        """A table of the period (one measure's records with `measure_id`), only C's rows when `carrier` is given."""
        where = {"carrier_id": carrier} if carrier else None
        return self.view.table(table, self.period, where=where, measure_id=measure_id)

    def run_manifest(self, table: str) -> dict[str, Any]:
        run_id = self.runs.get(table)
        if run_id is None:
            raise StoreError(f"{self.store}: no manifest of the run that published {table} of {self.period}")
        return self.view.manifest(run_id=run_id)


# ---- writing --------------------------------------------------------------------------------------


class _Folder:
    """The temporary package folder: writes files and remembers each file's row count."""

    def __init__(self, root: Path, metadata: dict[str, str]):
        self.root = root
        self.metadata = metadata
        self.rows: dict[str, int | None] = {}

    def table(self, name: str, table: pa.Table, carrier: str, csv: bool = True) -> None:
        check_isolated(name, table, carrier)
        store.write_parquet(self.root / f"{name}.parquet", table, self.metadata)
        self.rows[f"{name}.parquet"] = table.num_rows
        if csv:
            pcsv.write_csv(csv_safe.table(table), self.root / f"{name}.csv")
            self.rows[f"{name}.csv"] = table.num_rows

    def records(self, parts: list[pa.Table], carrier: str) -> None:
        """records/measure_id=ID.parquet per measure with rows, and all of them in records.csv."""
        (self.root / "records").mkdir()
        if not parts:
            return
        schema = pa.unify_schemas([p.schema for p in parts])
        with (self.root / "records.csv").open("wb") as handle, pcsv.CSVWriter(handle, schema) as writer:
            for part in parts:
                self.table(f"records/measure_id={part['measure_id'][0]}", part, carrier, csv=False)
                writer.write_table(csv_safe.table(_conform(part, schema)))
        self.rows["records.csv"] = sum(p.num_rows for p in parts)

    def copy(self, source: Path, name: str) -> None:
        shutil.copyfile(source, self.root / name)
        with source.open("rb") as handle:
            self.rows[name] = max(sum(1 for _ in handle) - 1, 0)

    def text(self, name: str, content: str) -> None:
        (self.root / name).write_text(content)
        self.rows[name] = None

    def inventory(self) -> list[dict[str, Any]]:
        """path, sha256, rows and bytes of every file written, in path order."""
        items = []
        for name in sorted(self.rows):
            data = (self.root / name).read_bytes()
            items.append({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "rows": self.rows[name],
                          "bytes": len(data)})  # fmt: skip
        return items


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table with the columns of `schema` in its order (missing ones null)."""
    columns = [table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def build_package(
    store_path: Path, period: str, carrier: str, out: Path, *, run_id: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Write the package of `carrier` for `period` to `out`; returns its manifest.

    UsageError (exit 2) for a bad period, carrier or run, a period the view does not hold, a
    carrier without result rows or remedies in the period, or an `out` that is not an empty
    folder; StoreError for an unreadable store, a ledger that disagrees with its run manifest,
    a selection naming another carrier, or a failed write (the partial folder is removed).
    """
    check_period(period)
    if not CARRIER_ID.match(carrier):
        raise UsageError(f"carrier {carrier!r} is not a carrier id (letters, digits, _ . -)")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty folder: choose a new package folder")
    view = View(store_path, period, run_id)
    results = select_results(view.read("results"), carrier)
    remedies = select_remedies(view.read("remedies"), carrier) if view.has("remedies") else None
    paid = remedies is not None and remedies.num_rows > 0
    adjustments = select_remedies(view.read("adjustments"), carrier) if view.has("adjustments") else None
    adjustments = adjustments if adjustments is not None and adjustments.num_rows else None
    paid = paid or adjustments is not None
    if not int(pc.sum(pc.equal(results["scope"], "clec")).as_py() or 0) and not paid:
        raise UsageError(f"carrier {carrier!r} has no CLEC results and no remedies in period {period} ({view.label})")
    measures = view.view.measures(period)
    records = [select_records(view.read("records", carrier, m), carrier, m) for m in measures]
    records = [r for r in records if r.num_rows]
    rejects_all = view.read("rejects") if view.has("rejects") else pa.table({})
    rejects = select_rejects(rejects_all, carrier)
    results_run = view.run_manifest("results")
    plan = {k: results_run.get("plan", {}).get(k) for k in ("id", "version", "sha256")}
    remedy_summary = None
    if remedies is not None:
        summary = view.run_manifest("remedies").get("remedies", {})
        month = summary.get("periods", {}).get(period)
        total = ledger_total(remedies)
        published = Decimal(month["totals_by_payee"].get(carrier, "0")) if month else total  # older manifests
        if total != published:
            raise StoreError(f"remedies of {carrier} in {period}: ledger lines sum to {total}, the run manifest "
                             f"says {published}; package not written")  # fmt: skip
        remedy_summary = {"currency": summary.get("currency"), "total": f"{total}", "lines": remedies.num_rows}
    statement = view.view.statement_file(period, carrier)
    created = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    metadata = {
        "carrier_sla.version": __version__,
        "carrier_sla.package_format_version": PACKAGE_FORMAT_VERSION,
        "carrier_sla.package_carrier": carrier,
        "carrier_sla.period": period,
        "carrier_sla.run_id": view.runs.get("results", ""),
        "carrier_sla.plan_id": str(plan["id"]),
        "carrier_sla.plan_version": str(plan["version"]),
        "carrier_sla.plan_sha256": str(plan["sha256"]),
    }
    manifest: dict[str, Any] = {
        "carrier_id": carrier,
        "period": period,
        "created_at": created,
        "package_format_version": PACKAGE_FORMAT_VERSION,
        "carrier_sla_version": __version__,
        "source": {"view": view.label, "runs": dict(sorted(view.runs.items()))},
        "plan": plan,
        "provisional": bool(results_run.get("provisional")),
        "provisional_as_of": results_run.get("provisional_as_of"),
        "remedies": remedy_summary,
        "rejects": {
            "included": rejects is not None,
            "rows": None if rejects is None else rejects.num_rows,
            "rows_not_attributable": rejects_all.num_rows if rejects is None else None,
        },
        "statement": statement.name if statement is not None else None,
        "adjustments": None
        if adjustments is None
        else {
            "lines": adjustments.num_rows,
            "adjustment": f"{column_total(adjustments, 'adjustment')}",
            "paid_run_id": adjustments["paid_run_id"][0].as_py(),
            "restated_run_id": adjustments["restated_run_id"][0].as_py(),
        },
    }

    def fill(folder: _Folder) -> None:
        folder.table("results", results, carrier)
        folder.records(records, carrier)
        if remedies is not None:
            folder.table("remedies", remedies, carrier)
        if adjustments is not None:
            folder.table("adjustments", adjustments, carrier)
        if rejects is not None:
            folder.table("rejects", rejects, carrier)
        if statement is not None:
            folder.copy(statement, "statement.csv")
        folder.text("README.txt", readme(manifest, results, records))
        manifest["files"] = folder.inventory()
        folder.text("manifest.json", json.dumps(manifest, indent=2) + "\n")

    _write_atomically(out, metadata, fill)
    return manifest


def _write_atomically(out: Path, metadata: dict[str, str], fill: Callable[[_Folder], None]) -> None:
    """Run fill(folder) on a temporary sibling of `out`, then rename it to `out`; on any failure
    remove the temporary folder, so `out` is either complete or as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        fill(_Folder(tmp, metadata))
        os.rename(tmp, out)  # replaces an empty folder; fails if `out` filled up meanwhile
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise StoreError(f"cannot write the package {out}: {exc}") from exc
        raise


def readme(manifest: dict[str, Any], results: pa.Table, records: list[pa.Table]) -> str:
    """README.txt: what the package holds, where it comes from, column notes, the notice."""
    c, p, plan = manifest["carrier_id"], manifest["period"], manifest["plan"]
    by_run: dict[str, list[str]] = {}
    for table, run in manifest["source"]["runs"].items():
        by_run.setdefault(run, []).append(table)
    runs = "; ".join(f"run {run} ({', '.join(tables)})" for run, tables in by_run.items())
    own = int(pc.sum(pc.equal(results["scope"], "clec")).as_py() or 0)
    per_measure = ", ".join(f"{r['measure_id'][0]} {r.num_rows:,}" for r in records) or "none"
    rejects, remedies, adjusted = manifest["rejects"], manifest["remedies"], manifest["adjustments"]
    excused = (
        int(pc.sum(pc.fill_null(results["excused"], False)).as_py() or 0) if "excused" in results.column_names else 0
    )
    items = [
        f"results.parquet, results.csv: {results.num_rows:,} rows: {own:,} result rows of {c} (scope clec) and the "
        "all-CLEC aggregate rows (scope clec_aggregate, carrier_id empty) of the same cells.",
        f"records/measure_id=ID.parquet (one file per measure), records.csv (all measures): the records of {c} "
        f"evaluated for each measure, with a measure_id column ({per_measure} rows).",
        f"remedies.parquet, remedies.csv: the {remedies['lines']} ledger lines paid to {c} (Tier 1), total "
        f"{remedies['currency']} {remedies['total']}. Tier 2 payments to state funds are not included."
        if remedies
        else "No remedies: the plan computes none for this period.",
        f"statement.csv: the payment statement of {c} (its ledger lines, then a total line)."
        if manifest["statement"]
        else f"No statement.csv: no statement was published for {c}.",
        *(
            [
                f"adjustments.parquet, adjustments.csv: this month was restated. Per cell the amount paid to {c} "
                f"(run {adjusted['paid_run_id']}), the restated amount (run {adjusted['restated_run_id']}) and the "
                f"adjustment, restated minus paid: {adjusted['adjustment']} in all ({adjusted['lines']} lines); "
                "statement.csv shows the same per line."
            ]
            if adjusted
            else []
        ),
        *(
            [
                f"{excused} of the result rows are excused by the commission (column excused; excusal_reference names "
                "the docket or order, excusal_reason why): their verdict and figures stand, and they pay nothing."
            ]
            if excused
            else []
        ),
        f"rejects.parquet, rejects.csv: the {rejects['rows']:,} input rows of {c} the run rejected."
        if rejects["included"]
        else "Rejected input rows are NOT included: the store's rejects table does not record the carrier of a "
        f"rejected row, so none can be attributed to {c} ({rejects['rows_not_attributable']:,} input rows were "
        "rejected in the period in all). Ask the filer for the rejects of your own input files.",
        "manifest.json: carrier, period, source runs, plan, and the sha256 and row count of every other file.",
    ]
    notes = [
        "results: one row per cell (measure_id, submeasure, state, product; scope; carrier_id). clec_n is the "
        "records included (lines in service for rates), clec_numerator the records meeting the standard "
        "(percentages), the sum of values (means) or the troubles (rates); clec_value is a percent, a mean, or a "
        "rate per 100 lines; retail_* the same for the retail analog (parity cells; empty for benchmarks). "
        "statistic is oriented so that positive means the CLEC was served worse; p_value is one-tailed; status is "
        "met, miss, no_activity, no_retail_analog, undetermined or diagnostic, status_reason says why.",
        "records: record_id, record_type (orders, troubles, lines), included (counted in the measure) or excluded "
        "with exclusion_reason (the plan rule's code), value (0/1 for percentages, the interval or duration for "
        "means, 1 per trouble for rates), source_file and source_row (1-based data row) of the input row. Rate "
        f"measures also list {c}'s lines-in-service rows.",
        "remedies: tier, payee, the cell, category, consecutive_months, occurrences, unit_amount, amount_uncapped "
        "and amount (decimal, to the cent), cap (when a cap reduced the amount), and the result the payment comes "
        "from (method, clec_value, retail_value or benchmark, threshold).",
    ]
    provisional = (
        f"PROVISIONAL: month to date as of {manifest['provisional_as_of']}; the final run may differ.\n\n"
        if manifest["provisional"]
        else ""
    )
    return "\n".join(
        [
            f"CONFIDENTIAL: performance package of {c} for {p}",
            "",
            _wrap(
                f"This package contains only data of CLEC {c} and all-CLEC aggregate figures. It holds no record "
                "and no result row of any other carrier: the aggregate rows and the retail columns of results are "
                "figures computed over all CLECs together and over the incumbent's retail customers.",
                "",
            ),
            "",
            provisional
            + _wrap(
                f"Made by carrier-sla {manifest['carrier_sla_version']} on {manifest['created_at']} from the store "
                f"view {manifest['source']['view']}: {runs}. Plan {plan['id']} {plan['version']} "
                f"(sha256 {plan['sha256']}).",
                "",
            ),
            "",
            "Files",
            *(_wrap(item, "  ") for item in items),
            "",
            "Column notes",
            *(_wrap(note, "  ") for note in notes),
            "",
        ]
    )


def _wrap(text: str, indent: str) -> str:
    """A paragraph (no indent) or a list item (indent, then two more on its further lines)."""
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent + "  " if indent else "")
