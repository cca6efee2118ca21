"""Preflight of a plan (or a folder of its versions) and the inputs: every record type's files
exist and carry the required columns, the plan lists the holidays of every year the records'
business days reach, and the excusals (optional) are well-formed and name what the plan knows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from carrier_sla.engine import holiday_years
from carrier_sla.engine.load import load, needed_record_types, read_whole
from carrier_sla.errors import InputDataError, UsageError
from carrier_sla.inputs import excusals, ingest
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.fields import record_schema
from carrier_sla.plan.load import Plan
from carrier_sla.plan.versions import PlanVersions, months_text


def validate_versions(versions: PlanVersions, data_dir: Path | None) -> list[str]:
    """The lines `validate` prints: each version (a plan folder: their months, without gaps or
    overlaps: load_versions refused any), and with `data_dir` the inputs' columns, the holidays
    their records need (each version over the months it is in force) and the excusals."""
    lines = []
    if versions.folder:
        first = versions.months(versions.versions[0])[0]
        last = versions.months(versions.versions[-1])[1]
        lines.append(
            f"plan folder {versions.source}: {len(versions.versions)} version(s) of {versions.id}, in force "
            f"{months_text(first, last)} without gaps or overlaps"
        )
    for plan in versions.versions:
        lines.append(
            ("  " if versions.folder else "")
            + f"plan {plan.id} {plan.version} OK: {len(plan.measures)} measures, {len(plan.products)} products, "
            f"{len(plan.states)} states (sha256 {plan.sha256[:12]})"
            + (
                f", in force {months_text(*versions.months(plan))} ({Path(plan.source).name})"
                if versions.folder
                else ""
            )
        )
    if data_dir is None:
        return lines
    for plan in versions.versions:
        lines += [line for line in check_data_columns(plan, data_dir) if line not in lines]
    for plan in versions.versions:
        span = versions.months(plan) if versions.folder else None
        line = check_holiday_years(plan, data_dir, span)
        lines.append(f"{line} ({plan.version})" if versions.folder else line)
    lines += check_excusals(versions, data_dir)
    return lines


def check_excusals(versions: PlanVersions, data_dir: Path) -> list[str]:
    """A line per excusals file, or InputDataError listing every malformed row and every measure,
    state or product the plan version of its month does not know."""
    found = excusals.read(Path(data_dir))
    if found is None:
        return []
    problems = []
    for x in found.rows:
        try:
            plan = versions.for_period(x.period)
        except UsageError as exc:
            problems.append(f"{x.where()}: {exc}")
            continue
        known = {
            "measure_id": {m.id for m in plan.measures},
            "state": set(plan.state_codes),
            "product": {p.code for p in plan.products if not p.is_retail},
        }
        for column, values in known.items():
            value = getattr(x, column)
            if value is not None and value not in values:
                problems.append(f"{x.where()}: {column} {value!r} is not in plan {plan.id} {plan.version}")
    if problems:
        raise InputDataError(
            f"excusals: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems), file=problems[0]
        )
    cells = sum(1 for x in found.rows if not x.is_record)
    return [
        f"excusals: {', '.join(str(f.path) for f in found.files)}: {len(found.rows)} row(s) ({cells} cell(s), "
        f"{len(found.rows) - cells} record(s)), each well-formed; a run checks that its month's match"
    ]


def check_data_columns(plan: Plan, data_dir: Path) -> list[str]:
    """One line per input file found; raise InputDataError listing every missing column."""
    found = ingest.discover(Path(data_dir), needed_record_types(plan))
    lines, problems = [], []
    for rtype, files in found.items():
        required = record_schema(rtype)["required"]
        for source in files:
            names = ingest.read_columns_only(source)
            missing = [c for c in required if c not in names]
            if missing:
                problems.append(f"{source.path}: missing required column(s) {', '.join(missing)}")
            else:
                lines.append(f"{rtype}: {source.path} has every required column")
    if problems:
        first = problems[0]
        raise InputDataError("\n".join(problems), file=first.split(":")[0])
    return lines


def check_holiday_years(plan: Plan, data_dir: Path, months: tuple[str, str | None] | None = None) -> str:
    """A line saying which years the records' business days reach (each listed by the plan), or
    HolidaysNotListed naming every year, measure and state short of holidays.

    Reads and checks every input row (the contract's rejects are left out, as in a run) and
    takes every accepted record of each measure's type, of any month: a run needs the years of
    its month's records only. `months` (first, last or None): only the records of the reporting
    months a version of a plan folder is in force."""
    loaded = load(plan, ingest.discover(Path(data_dir), needed_record_types(plan)), read_whole)
    missing, reached = [], set()
    for measure in plan.measures:
        rec = loaded.records[measure.records]
        if months is not None:
            rec = rec.take(np.flatnonzero(_in_months(rec, measure, months)))
        missing += holiday_years.missing_years(plan, measure, rec)
        reached |= holiday_years.years_reached(measure, rec)
    holiday_years.require(plan, missing)
    if not reached:
        return "holidays: no record's business days to count"
    return f"holidays: the records' business days reach {_years_text(sorted(reached))}, each listed by the plan"


def _years_text(years: list[int]) -> str:
    """2025-2026, 2030 for [2025, 2026, 2030]."""
    runs: list[list[int]] = []
    for year in years:
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _in_months(rec, measure, months: tuple[str, str | None]) -> np.ndarray:
    """Records of a measure placed in the reporting months `months` (first, last or None: open)."""
    local = rec.cols[f"{measure.period_by}_local"]
    first = calmod.month_span_ns(calmod.period_index(months[0]) - measure.arrears_months)[0]
    inside = local >= first
    if months[1] is not None:
        inside &= local < calmod.month_span_ns(calmod.period_index(months[1]) - measure.arrears_months)[1]
    return inside
