"""The evidence a CLEC disputes first: the cell's excluded records, and the listed records' input as written.

`excluded_records` lists the CLEC's excluded records of a cell (id, the plan rule's code, source file
and row), beside the included records that weigh most (carrier_sla.readers.explain_cell.top_records).

Attribution: records/ holds every record of a measure's period, included or not, with its carrier,
state, product and submeasure label, the label made from the record's own dimension values (a null
value spelt `null`, as audit.submeasure_label does). An excluded record belongs to the one cell of
those values, the cell whose `clec_records_evaluated` counts it. A record whose dimension value is
unknown (PO-5's `no_channel`) is therefore listed in the cell of that null value (`channel=null`);
the cells it could otherwise belong to say how many such records there are (`unknown_dimension`).

The input as written is not kept in the store: `read_rows` re-reads the listed rows from the input
files named in the run's manifest, with the run's own reader (carrier_sla.inputs.spill.batches: the same
columns and row numbers), once each file's sha256 equals the manifest's; a file that changed or
cannot be read is said, and none of its rows is shown. Next to each row's text the engine's own
derivation under the run's plan (carrier_sla.inputs.contract, carrier_sla.engine.evaluate.derive) gives each
timestamp's local time and UTC offset in the record's state and the derived dates the measure uses;
the record's value is the run's, from records/. `with_input` puts it all into the explanation: per listed
record `input` (column -> text as written, null where empty) and `derived` (column -> the values derived
from it: `local`, and derived fields such as `effective_received_date`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from carrier_sla.engine.evaluate import derive
from carrier_sla.errors import CarrierSlaError
from carrier_sla.inputs import ingest, spill
from carrier_sla.inputs.contract import check_table, record_ids
from carrier_sla.plan.calendar import NS_PER_S, NULL
from carrier_sla.plan.fields import DERIVED, DERIVED_FROM, fields_of, record_schema
from carrier_sla.plan.load import Measure, Plan
from carrier_sla.readers.explain_cell import SOURCE_ORDER, json_value, num, text_table

NOT_COMPUTABLE = "value_not_computable"  # evaluate's reason for a value that cannot be computed

# ------------------------------------------------------------------------------- the listing (pure)


def rule_fields(measure: Measure) -> list[str]:
    """The fields of its own records that a measure's rule reads: period, value, exclusions, dimensions."""
    v = measure.value
    names: list[Any] = [measure.period_by, v.from_field, v.to_field, v.anchor, v.minus, v.limit_by]
    names += list(v.match_on) if isinstance(v.match_on, list | tuple) else [v.match_on]
    names += [n for e in measure.exclusions for c in e.when for n in (c.field, c.field_ref)]
    names += [d.field for d in measure.dimensions]
    return [n for n in dict.fromkeys(names) if isinstance(n, str) and n in fields_of(measure.records)]


def input_columns(record_type: str, names: list[str]) -> list[str]:
    """The input columns behind field names (a derived field's source column), in the contract's order."""
    wanted = {DERIVED_FROM[record_type].get(n, n) for n in names}
    return [c for c in record_schema(record_type)["properties"] if c in wanted]


def shown_fields(measure: Measure, exclusion_reason: str | None) -> list[str]:
    """The input columns shown for a listed record: the timestamps and dates the measure reads (and the hours
    a duration subtracts), and for an excluded record the columns its exclusion rule names (the evidence)."""
    kinds = fields_of(measure.records)
    names = [n for n in rule_fields(measure) if kinds[n] in ("timestamp", "date")] + [measure.value.minus]
    rules = [e for e in measure.exclusions if e.code == exclusion_reason]
    names += [n for e in rules for c in e.when for n in (c.field, c.field_ref)]
    return input_columns(measure.records, [n for n in names if n])


def excluded_records(measure: Measure, clec: pd.DataFrame, limit: int) -> dict[str, Any]:
    """The cell's excluded CLEC records: the plan's exclusion order (then the engine's reason), then input order."""
    excluded = clec[~clec["included"]]
    codes = [e.code for e in measure.exclusions]
    reason = excluded["exclusion_reason"].astype("string").fillna(NOT_COMPUTABLE)
    rank = reason.map(lambda c: codes.index(c) if c in codes else len(codes))
    picked = excluded.assign(_rank=rank.to_numpy()).sort_values(["_rank", *SOURCE_ORDER])
    rows = picked.head(limit)
    return {
        "rule": "in the plan's exclusion order, then input order",
        "total": len(picked),
        "records": [
            {"record_id": str(r), "carrier_id": str(c), "exclusion_reason": str(x), "source_file": str(f)}
            | {"source_row": int(s)}
            for r, c, x, f, s in zip(
                rows["record_id"],
                rows["carrier_id"],
                rows["exclusion_reason"].astype("string").fillna(NOT_COMPUTABLE),
                rows["source_file"],
                rows["source_row"],
                strict=True,
            )
        ],
    }


def unknown_dimension(cell: dict[str, Any], others: pd.DataFrame) -> list[dict[str, Any]]:
    """Cells of the same carrier(s), state and product whose label differs from the cell's only in dimension
    values that are unknown (`null`): their records could not be put in this cell. `others` holds the
    carrier's records of the cell's product whose submeasure is not the cell's."""
    if cell["submeasure"] == "all" or others.empty:
        return []
    mine = dict(part.split("=", 1) for part in cell["submeasure"].split(";"))
    out = []
    for label, count in others["submeasure"].astype("string").value_counts().sort_index().items():
        parts = dict(part.split("=", 1) for part in str(label).split(";") if "=" in part)
        if parts.keys() == mine.keys() and all(parts[k] in (mine[k], "null") for k in mine):
            out.append({"submeasure": str(label), "records": int(count)})
    return out


def listed(e: dict[str, Any]) -> dict[str, set[int]]:
    """The input rows of the records an explanation lists, by source file."""
    wanted: dict[str, set[int]] = {}
    for section in ("top_records", "excluded_records"):
        for r in e[section]["records"]:
            wanted.setdefault(r["source_file"], set()).add(r["source_row"])
    return wanted


# ------------------------------------------------------------------------------- input rows (I/O)


def _local_text(local: int, utc: int) -> str | None:
    """A local wall-clock time with its UTC offset: 2026-10-01 14:30:00-06:00 (fractions only when present)."""
    if local == NULL or utc == NULL:
        return None
    seconds, nanos = divmod(local, NS_PER_S)
    text = (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(seconds))).strftime("%Y-%m-%d %H:%M:%S")
    text += f".{nanos:09d}".rstrip("0") if nanos else ""
    offset = (local - utc) // NS_PER_S
    sign, offset = ("-" if offset < 0 else "+"), abs(offset)
    return f"{text}{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"


def _date_text(days: int) -> str | None:
    return None if days == NULL else (dt.date(1970, 1, 1) + dt.timedelta(days=int(days))).isoformat()


def derived_values(plan: Plan, record_type: str, table: pa.Table, rows: np.ndarray) -> list[dict[str, Any]]:
    """Per row of `table` (input rows as read, at 1-based `rows`): what the engine derives under `plan`:
    NAME_local for each timestamp (local time and UTC offset in the row's state), the derived fields."""
    rec, _ = check_table(record_type, table, plan, file_index=0, rows=rows)
    rec = derive(plan, rec)
    kinds = fields_of(record_type)
    out: list[dict[str, Any]] = [{} for _ in range(table.num_rows)]
    for name, kind in kinds.items():
        if kind == "timestamp" and f"{name}_local" in rec.cols:
            local, utc = rec.cols[f"{name}_local"], rec.cols[f"{name}_utc"]
            for i in range(table.num_rows):
                out[i][f"{name}_local"] = _local_text(int(local[i]), int(utc[i]))
    for name in DERIVED[record_type]:
        if name in rec.cols:
            for i, v in enumerate(rec.cols[name]):
                out[i][name] = bool(v) if kinds[name] == "bool" else _date_text(int(v))
    return out


def _partition(manifest: dict[str, Any], record_type: str, path: Path) -> tuple[tuple[str, str], ...]:
    """The Hive key=value segments of a file inside its type's folder (as ingest.discover gives them)."""
    folder = Path(manifest.get("data_dir") or ".") / record_type
    try:
        parts = path.relative_to(folder).parts[:-1]
    except ValueError:
        return ()
    return tuple((k, v) for k, _, v in (p.partition("=") for p in parts if "=" in p))


def _rows_of(source: ingest.InputFile, rows: set[int]) -> pa.Table:
    """The rows (1-based) of one input file, read as the run read it, stopping after the last one."""
    parts, start, last = [], 0, max(rows)
    for batch in spill.batches(source):
        if batch.num_rows:
            at = [r - 1 - start for r in sorted(rows) if start < r <= start + batch.num_rows]
            if at:
                parts.append(batch.take(pa.array(at, pa.int64())))
            start += batch.num_rows
        if start >= last:
            break
    return pa.concat_tables(parts) if parts else pa.table({})


def read_rows(
    plan: Plan, manifest: dict[str, Any], wanted: dict[str, set[int]]
) -> tuple[list[dict[str, Any]], dict[tuple[str, int], dict[str, Any]]]:
    """The listed input rows, re-read from the run's input files: a check per file (its sha256 now against
    the manifest's), and per (file, row) of an unchanged file its record id, every contract column as
    written (text; null where empty) and the engine's derived values."""
    inputs = {str(i.get("path")): i for i in manifest.get("inputs", [])}
    files, found = [], {}
    for path in sorted(wanted):
        entry = inputs.get(path)
        check: dict[str, Any] = {"path": path, "record_type": None, "sha256_run": None, "sha256_now": None}
        if entry is None:
            files.append(check | {"status": "not_in_manifest", "detail": "the run's manifest does not list it"})
            continue
        # the path as the run was given it, else as it resolved in the run's working directory
        located = Path(path) if Path(path).exists() or "absolute_path" not in entry else Path(entry["absolute_path"])
        source = ingest.InputFile(entry["record_type"], located)
        check |= {"record_type": source.record_type, "sha256_run": entry.get("sha256")}
        try:
            check["sha256_now"] = source.sha256()
            if check["sha256_now"] != check["sha256_run"]:
                files.append(check | {"status": "changed", "detail": "its sha256 is not the one the run read"})
                continue
            partition = _partition(manifest, source.record_type, Path(path))
            source = ingest.InputFile(source.record_type, source.path, partition)
            table = _rows_of(source, wanted[path])
        except (OSError, CarrierSlaError) as exc:
            files.append(check | {"status": "unreadable", "detail": str(exc)})
            continue
        rows = np.array(sorted(wanted[path]), dtype=np.int64)[: table.num_rows]
        columns = [c for c in record_schema(source.record_type)["properties"] if c in table.column_names]
        text = {c: table.column(c).cast(pa.string()).to_pylist() for c in columns}
        ids = record_ids(source.record_type, table).to_pylist()
        derived = derived_values(plan, source.record_type, table, rows)
        for i, row in enumerate(rows.tolist()):
            found[(path, row)] = {
                "record_id": ids[i],
                "written": {c: text[c][i] for c in columns},
                "derived": derived[i],
            }
        files.append(check | {"status": "unchanged", "detail": "its sha256 is the one the run read"})
    return files, found


# ------------------------------------------------------------------------------- into the explanation (pure)


def _evidence(
    measure: Measure, record: dict[str, Any], found: dict[tuple[str, int], dict[str, Any]], used: set[str]
) -> dict[str, Any]:
    """A listed record with its input as written and the derived values next to it (None when not re-read)."""
    row = found.get((record["source_file"], record["source_row"]))
    if row is None:
        return record | {"input": None, "derived": None}
    if row["record_id"] != record["record_id"]:
        note = f"row {record['source_row']} of {record['source_file']} holds record {row['record_id']}"
        return record | {"input": None, "derived": None, "note": note}
    fields = shown_fields(measure, record.get("exclusion_reason"))
    derived: dict[str, dict[str, Any]] = {}
    for column in fields:
        values = {"local": row["derived"][f"{column}_local"]} if f"{column}_local" in row["derived"] else {}
        for name, source in DERIVED_FROM[measure.records].items():
            if source == column and name in used and name in row["derived"]:
                values[name] = json_value(row["derived"][name])
        derived |= {column: values} if values else {}
    return record | {"input": {c: row["written"].get(c) for c in fields}, "derived": derived}


def with_input(
    e: dict[str, Any],
    plan: Plan,
    files: list[dict[str, Any]],
    found: dict[tuple[str, int], dict[str, Any]],
) -> dict[str, Any]:
    """The explanation with each listed record's input as written next to its derived values, and the
    checks of the input files they were re-read from."""
    measure = plan.measure(e["cell"]["measure_id"])
    used = set(rule_fields(measure))
    zone = next((s.time_zone for s in plan.states if s.code == e["cell"]["state"]), None)
    out = dict(e)
    for section in ("top_records", "excluded_records"):
        out[section] = e[section] | {"records": [_evidence(measure, r, found, used) for r in e[section]["records"]]}
    out["inputs"] = {"time_zone": zone, "files": files}
    return out


# ------------------------------------------------------------------------------- text


_FILE_STATUS = {
    "unchanged": "unchanged since the run (sha256 {sha256_now}, as in the manifest)",
    "changed": "changed since the run (sha256 now {sha256_now}, the run read {sha256_run}): its rows are not shown",
    "unreadable": "cannot be read ({detail}): its rows are not shown",
    "not_in_manifest": "not among the run's inputs: its rows are not shown",
}


def _derived_text(values: dict[str, Any]) -> str:
    """The derived values next to one input column: `local 2026-10-01 14:30:00-06:00; completed_date 2026-10-01`."""
    text = {k: "n/a" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}
    return "; ".join(f"{k} {v}" for k, v in text.items())


def render(e: dict[str, Any]) -> list[str]:
    """The excluded records and the listed records' input as text lines (after the records behind the gap)."""
    aggregate = e["cell"]["scope"] != "clec"
    x = e["excluded_records"]
    out = ["", f"Excluded CLEC records of the cell: {len(x['records'])} of {num(x['total'])} shown ({x['rule']})"]
    if x["records"]:
        head = ["record_id", *(["carrier_id"] if aggregate else []), "exclusion_reason", "source_file", "source_row"]
        rows = [head]
        for r in x["records"]:
            carrier = [r["carrier_id"]] if aggregate else []
            rows.append([r["record_id"], *carrier, r["exclusion_reason"], r["source_file"], str(r["source_row"])])
        out += text_table(rows, right=(len(head) - 1,))
    listed_records = [*e["top_records"]["records"], *x["records"]]
    if not listed_records or "inputs" not in e:
        return out
    zone = e["inputs"]["time_zone"]
    out += ["", f"Input of the listed records as written, next to the derived values (local time: {zone})"]
    out += [f"  {f['path']}: {_FILE_STATUS[f['status']].format(**f)}" for f in e["inputs"]["files"]]
    for r in listed_records:
        who = f" ({r['carrier_id']})" if aggregate else ""
        what = f"excluded: {r['exclusion_reason']}" if "exclusion_reason" in r else f"included, value {num(r['value'])}"
        out.append(f"  {r['record_id']}{who}, {what}: {r['source_file']} row {r['source_row']}")
        if r["input"] is None:
            out.append(f"    input not shown: {r.get('note') or 'see the check of its file above'}")
            continue
        rows = [
            [column, "(empty)" if text is None else text, _derived_text(r["derived"].get(column, {}))]
            for column, text in r["input"].items()
        ]
        out += text_table(rows, "    ") if rows else []
    return out
