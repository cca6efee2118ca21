"""Approved exclusions: the results and records the commission excused (domain.md, "Root cause").

The ILEC asks the commission to excuse specific misses (force majeure, a CLEC's own conduct); what
it approves is an optional input, `excusals` (excusals.csv, excusals.parquet or a folder
excusals/ of them; schemas/records/excusals.schema.json), one row per excusal with its `period`
(the reporting month it changes), `reason`, `reference` (the docket or order) and `approved_on`:

- a cell excusal names one result cell: measure_id, state, product, submeasure, carrier_id (a CLEC,
  or `all` for the all-CLEC aggregate). The cell keeps its verdict and every figure, is marked
  `excused` with `excusal_reference` and `excusal_reason`, and pays nothing: for remedies it counts
  as a month without a verdict, so its escalation count stays as it was (for_remedies);
- a record excusal names a record (record_id, optionally record_type and measure_id): the record is
  excluded from the month's measures (that measure only, when given) with the exclusion reason
  `approved:REFERENCE`, checked before the plan's own exclusion rules (with_record_exclusions).

Every row is checked against the schema (a malformed row anywhere in the file is an input error,
exit 3, naming the file and row). A run uses the rows of its month; one of them that matches no
cell, or no record of the month, is an input error naming it, and nothing is published.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from carrier_sla import vocabulary
from carrier_sla.errors import InputDataError
from carrier_sla.inputs import ingest
from carrier_sla.plan.fields import SCHEMA_DIR
from carrier_sla.plan.load import Plan

RECORD_TYPE = "excusals"
APPROVED = "approved:"  # exclusion reason of an excused record: approved:REFERENCE
# carrier_id of a cell excusal of the all-CLEC aggregate in the excusals input (its contract came
# first; the store and the commands spell it vocabulary.AGGREGATE)
AGGREGATE = "all"
EXCUSED = "excused"  # the status remedies see for an excused cell (never stored in results)
CELL_FIELDS = (*vocabulary.MEASURE_CELL, "carrier_id")  # a cell excusal's key
RESULT_COLUMNS = ("excused", "excusal_reference", "excusal_reason")


@dataclass(frozen=True)
class Excusal:
    """One row of the excusals input."""

    source: str
    row: int  # 1-based data row of its file
    period: str
    reason: str
    reference: str
    approved_on: str
    measure_id: str | None = None
    state: str | None = None
    product: str | None = None
    submeasure: str | None = None
    carrier_id: str | None = None
    record_type: str | None = None
    record_id: str | None = None

    @property
    def is_record(self) -> bool:
        return self.record_id is not None

    @property
    def code(self) -> str:
        return APPROVED + self.reference

    def where(self) -> str:
        return f"{self.source} row {self.row}"

    def describe(self) -> str:
        """What it excuses, in words."""
        if self.is_record:
            of = f" of {self.record_type}" if self.record_type else ""
            return f"record {self.record_id}{of} in {self.measure_id or 'every measure'} of {self.period}"
        who = "the all-CLEC aggregate" if self.carrier_id == AGGREGATE else self.carrier_id
        return f"cell {self.measure_id} {self.state} {self.product} submeasure {self.submeasure} {who} of {self.period}"


@dataclass(frozen=True)
class Excusals:
    """Every row of the input (all months), and the files it came from."""

    files: tuple[ingest.InputFile, ...]
    rows: tuple[Excusal, ...]

    def of_period(self, period: str) -> tuple[Excusal, ...]:
        return tuple(x for x in self.rows if x.period == period)

    def manifest(self, period: str, applied: pd.DataFrame | None, records: dict[str, int]) -> dict[str, Any]:
        """The manifest's `excusals`: files with sha256, rows, what the month's rows excused."""
        cells = []
        if applied is not None and len(applied):
            excused = applied[applied["excused"].fillna(False).astype(bool)]
            for row in excused.to_dict("records"):
                cells.append(
                    {k: row[k] for k in ("measure_id", "state", "product", "submeasure", "scope", "status")}
                    | {"carrier_id": row["carrier_id"] if isinstance(row["carrier_id"], str) else None}
                    | {"reference": row["excusal_reference"]}
                )
        return {
            "files": [{"path": str(f.path), "sha256": f.sha256()} for f in self.files],
            "rows": len(self.rows),
            "rows_of_period": len(self.of_period(period)),
            "cells": cells,
            "records": dict(sorted(records.items())),
        }


# ------------------------------------------------------------------------------ reading


def _schema() -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{RECORD_TYPE}.schema.json").read_text())


def discover(data_dir: Path) -> list[ingest.InputFile]:
    """The excusals files of the input folder, if it has any (the input is optional)."""
    data_dir = Path(data_dir)
    present = [data_dir / f"{RECORD_TYPE}{s}" for s in ingest.SUFFIXES] + [data_dir / RECORD_TYPE]
    if not any(p.exists() for p in present):
        return []
    return ingest.discover(data_dir, (RECORD_TYPE,))[RECORD_TYPE]


def _text(value: Any) -> str | None:
    """A cell of the input as text (None for null or empty); dates as YYYY-MM-DD."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def read(data_dir: Path) -> Excusals | None:
    """Every row of the excusals input, checked; None without the input. InputDataError (exit 3)
    listing every malformed row, with its file and row."""
    files = discover(data_dir)
    if not files:
        return None
    validator = jsonschema.Draft202012Validator(_schema(), format_checker=jsonschema.FormatChecker())
    names = list(_schema()["properties"])
    rows, problems = [], []
    for source in files:
        table = ingest.read_file(source)
        ingest.check_columns(source, table)
        present = [n for n in names if n in table.column_names]
        for i, raw in enumerate(table.select(present).to_pylist(), start=1):
            item = {k: t for k, v in raw.items() if (t := _text(v)) is not None}
            errors = sorted(validator.iter_errors(item), key=lambda e: list(e.path))
            if errors:
                problems += [f"{source.path} row {i}: {_message(e, item)}" for e in errors]
                continue
            rows.append(Excusal(str(source.path), i, **{k: item.get(k) for k in names}))  # type: ignore[arg-type]
    problems += _duplicates(rows)
    if problems:
        raise InputDataError(
            f"excusals: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems),
            file=problems[0].split(" row ")[0],
        )
    return Excusals(tuple(files), tuple(rows))


def _message(error: jsonschema.ValidationError, item: dict[str, Any]) -> str:
    if error.validator == "not":  # the then-branch: a record excusal that also names a cell
        named = [k for k in ("state", "product", "submeasure", "carrier_id") if k in item]
        return f"a record excusal (record_id) names no cell: leave {', '.join(named)} empty"
    column = ".".join(str(p) for p in error.path)
    return f"{column}: {error.message}" if column else error.message


def _duplicates(rows: list[Excusal]) -> list[str]:
    """The same cell, or the same record and measure, excused twice in one month."""
    seen: dict[tuple, Excusal] = {}
    out = []
    for x in rows:
        key = (
            (x.period, "record", x.record_type, x.record_id, x.measure_id)
            if x.is_record
            else (x.period, "cell", *(getattr(x, f) for f in CELL_FIELDS))
        )
        if key in seen:
            out.append(f"{x.where()}: {x.describe()} is excused already by {seen[key].where()}")
        seen.setdefault(key, x)
    return out


# ------------------------------------------------------------------------------ records


def with_record_exclusions(plan: Plan, rows: Iterable[Excusal]) -> Plan:
    """The plan with the month's record excusals as each measure's approved exclusions (checked
    before the plan's own rules); the plan itself when there are none. Its document (what the run
    keeps as plan.json) and sha256 are the plan's: the excusals are input, not plan."""
    records = [x for x in rows if x.is_record]
    if not records:
        return plan
    measures = []
    for measure in plan.measures:
        by_code: dict[str, set[str]] = {}
        for x in records:
            if x.measure_id in (None, measure.id) and x.record_type in (None, measure.records):
                by_code.setdefault(x.code, set()).add(str(x.record_id))
        approved = tuple((code, tuple(sorted(ids))) for code, ids in sorted(by_code.items()))
        measures.append(replace(measure, approved=approved) if approved else measure)
    return replace(plan, measures=tuple(measures))


class RecordMatches:
    """The records each measure's records/ tables excluded as approved: (measure, reason, record id)."""

    def __init__(self, active: bool = False) -> None:
        self.active = active  # False: the month has no record excusals, nothing to look for
        self.found: set[tuple[str, str, str]] = set()

    def observe(self, measure_id: str, table: pa.Table) -> None:
        if not self.active:
            return
        reason = table.column("exclusion_reason")
        if pa.types.is_dictionary(reason.type):  # a records/ table: look at the few codes, not every row
            chunks = [c for c in reason.chunks if len(c)]
            if not any(pc.any(pc.starts_with(c.dictionary, APPROVED)).as_py() for c in chunks):
                return
            reason = reason.cast(reason.type.value_type)
        hit = pc.fill_null(pc.starts_with(reason, APPROVED), False)
        if not pc.any(hit).as_py():
            return
        picked = table.filter(hit)
        ids = picked.column("record_id").cast(pa.string()).to_pylist()
        codes = picked.column("exclusion_reason").cast(pa.string()).to_pylist()
        self.found |= {(measure_id, code, rid) for code, rid in zip(codes, ids, strict=True)}

    def counts(self) -> dict[str, int]:
        """Records excluded per reason (a record excluded from several measures counted once)."""
        ids: dict[str, set[str]] = {}
        for _, code, rid in self.found:
            ids.setdefault(code, set()).add(rid)
        return {code: len(found) for code, found in ids.items()}

    def unmatched(self, rows: Iterable[Excusal]) -> list[Excusal]:
        """The record excusals of the month that excluded no record."""
        return [
            x
            for x in rows
            if x.is_record
            and not any(
                code == x.code and rid == x.record_id and x.measure_id in (None, m) for m, code, rid in self.found
            )
        ]


# ------------------------------------------------------------------------------ cells


def _cell_keys(results: pd.DataFrame) -> pd.Series:
    carrier = results["carrier_id"].where(results["scope"] != vocabulary.CLEC_AGGREGATE, AGGREGATE).fillna("")
    key = results[CELL_FIELDS[0]].astype(str)
    for column in CELL_FIELDS[1:-1]:
        key = key + "\x1f" + results[column].astype(str)
    return key + "\x1f" + carrier.astype(str)


def apply(results: pd.DataFrame, rows: Iterable[Excusal], records: RecordMatches) -> pd.DataFrame:
    """The month's excusals applied to its results (apply_cells); InputDataError naming every cell
    excusal that matches no cell and every record excusal that excluded no record (`records`: what
    the records/ tables excluded as approved)."""
    rows = tuple(rows)
    missing = [(x, "no such record") for x in records.unmatched(rows)]
    try:
        applied = apply_cells(results, rows)
    except _Unmatched as exc:
        missing += [(x, "no such cell") for x in exc.rows]
        applied = results
    if missing:
        missing.sort(key=lambda item: (item[0].source, item[0].row))
        lines = [f"  {x.where()}: {x.describe()} (reference {x.reference}): {why}" for x, why in missing]
        raise InputDataError(
            f"excusals: {len(missing)} excusal(s) of {missing[0][0].period} match nothing in the month's results "
            "and records; nothing published\n" + "\n".join(lines),
            file=missing[0][0].source,
        )
    return applied


class _Unmatched(Exception):
    def __init__(self, rows: list[Excusal]):
        self.rows = rows
        super().__init__(f"{len(rows)} cell excusal(s) match no cell")


def apply_cells(results: pd.DataFrame, rows: Iterable[Excusal], strict: bool = True) -> pd.DataFrame:
    """The results with `excused`, `excusal_reference` and `excusal_reason` (status and figures as
    they were); with `strict`, _Unmatched naming every cell excusal that matches no cell of the
    month (what-if, under a changed plan, leaves them out instead)."""
    cells = [x for x in rows if not x.is_record]
    out = results.assign(excused=False, excusal_reference=None, excusal_reason=None)
    if not cells:
        return out
    keys = _cell_keys(results)
    position = pd.Series(np.arange(len(results)), index=keys.to_numpy())
    unmatched = []
    excused = out["excused"].to_numpy(dtype=bool).copy()
    reference = out["excusal_reference"].to_numpy(dtype=object).copy()
    reason = out["excusal_reason"].to_numpy(dtype=object).copy()
    for x in cells:
        key = "\x1f".join(str(getattr(x, f)) for f in CELL_FIELDS)
        if key not in position.index:
            unmatched.append(x)
            continue
        at = int(position[key])
        excused[at], reference[at], reason[at] = True, x.reference, x.reason
    if unmatched and strict:
        raise _Unmatched(unmatched)
    return out.assign(excused=excused, excusal_reference=reference, excusal_reason=reason)


def for_remedies(results: pd.DataFrame) -> pd.DataFrame:
    """The results as remedies see them: an excused cell's status is `excused`, which pays nothing
    and leaves its escalation count unchanged (like a month without a verdict)."""
    if "excused" not in results or not results["excused"].fillna(False).astype(bool).any():
        return results
    excused = results["excused"].fillna(False).astype(bool).to_numpy()
    return results.assign(status=np.where(excused, EXCUSED, results["status"].to_numpy(dtype=object)))
