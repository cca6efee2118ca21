"""Preflight of the inputs: every record type's files exist and carry the required columns, and
the plan lists the holidays of every year the records' business days reach."""

from __future__ import annotations

from pathlib import Path

from carrier_sla import holiday_years, ingest
from carrier_sla.errors import InputDataError
from carrier_sla.fields import record_schema
from carrier_sla.inputs import load, needed_record_types, read_whole
from carrier_sla.plan import Plan


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


def check_holiday_years(plan: Plan, data_dir: Path) -> str:
    """A line saying which years the records' business days reach (each listed by the plan), or
    HolidaysNotListed naming every year, measure and state short of holidays.

    Reads and checks every input row (the contract's rejects are left out, as in a run) and
    takes every accepted record of each measure's type, of any month: a run needs the years of
    its month's records only."""
    loaded = load(plan, ingest.discover(Path(data_dir), needed_record_types(plan)), read_whole)
    missing, reached = [], set()
    for measure in plan.measures:
        rec = loaded.records[measure.records]
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
