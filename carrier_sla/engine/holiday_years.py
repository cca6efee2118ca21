"""The years of holidays a measure's business-day computations need, and the plan error when
the plan does not list them.

A plan lists its holidays per year (carrier_sla.plan.load.HolidaySpec); a year it does not list is
unknown, and a business day counted in it could be wrong. The years a measure needs, record by
record, are every year from the earliest to the latest local date its business-day
computations touch:
- a value that counts business days or business hours (`business_days`, `within_business_hours`):
  its `from` and `to` dates (the local dates of timestamps);
- a date derived with business days that the measure reads, in its value or its exclusions
  (`effective_received_date`, `standard_due_date`; fields.BUSINESS_DAY_FIELDS): that date and
  the received date it is counted from.
In a run, every record of the measure's data month counts, included or excluded (an exclusion
can compare with a business-day date); `validate --data` checks every accepted record of the
input. Each record against the list of its state's calendar. An order received in December
2025 and completed in January 2026 needs 2025 and 2026.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from carrier_sla.engine import evaluate
from carrier_sla.errors import HolidaysNotListed, PlanProblem
from carrier_sla.inputs.contract import Records
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.calendar import NULL
from carrier_sla.plan.fields import BUSINESS_DAY_FIELDS, fields_of
from carrier_sla.plan.load import Measure, Plan

BUSINESS_KINDS = ("business_days", "within_business_hours")
_FIRST_YEAR, _LAST_YEAR = 1900, 2199  # bounds of the year lookup; the calendars' years lie well inside


def business_day_fields(measure: Measure) -> tuple[str, ...]:
    """The fields whose local dates bound a measure's business-day computations (none: it uses none)."""
    v = measure.value
    names: list[str | None] = [v.from_field, v.to_field] if v.kind in BUSINESS_KINDS else []
    read = [v.from_field, v.to_field, v.anchor] + [
        name for rule in measure.exclusions for c in rule.when for name in (c.field, c.field_ref)
    ]
    derived = BUSINESS_DAY_FIELDS.get(measure.records, {})
    for name in read:
        if name in derived:
            names += [name, derived[name]]
    return tuple(dict.fromkeys(n for n in names if n is not None))


@dataclass(frozen=True)
class MissingYear:
    """A year the plan lists no holidays for, in the calendar of `state`, that `records` records of
    `measure` (of its data month `month`; None: of the whole input) need; `example`: the id of
    the first of them in read order, at `first` (file index, row)."""

    measure: str
    month: str | None
    state: str
    year: int
    records: int
    example: str | None
    first: tuple[int, int]


def _day_spans(rec: Records, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each record's earliest and latest local date among the fields (NULL, NULL when all are null)."""
    kinds = fields_of(rec.record_type)
    columns = [
        calmod.local_days(rec.cols[f"{n}_local"]) if kinds[n] == "timestamp" else np.asarray(rec.cols[n], np.int64)
        for n in names
    ]
    days = np.stack(columns)
    null = days == NULL
    latest = np.where(null, NULL, days).max(axis=0)
    earliest = np.where(null, np.iinfo(np.int64).max, days).min(axis=0)
    return np.where(latest == NULL, NULL, earliest), latest


def _years(days: np.ndarray) -> np.ndarray:
    years = days.astype("M8[D]").astype("M8[Y]").astype(np.int64) + 1970
    return np.clip(years, _FIRST_YEAR, _LAST_YEAR)


def years_reached(measure: Measure, rec: Records) -> set[int]:
    """Every year the records' business-day computations reach (for validate's report)."""
    names = business_day_fields(measure)
    if not names or rec.n == 0:
        return set()
    earliest, latest = _day_spans(rec, names)
    known = latest != NULL
    spans = set(zip(_years(earliest[known]).tolist(), _years(latest[known]).tolist(), strict=True))
    return {year for first, last in spans for year in range(first, last + 1)}


def _all_listed(plan: Plan, rec: Records, names: tuple[str, ...]) -> bool:
    """Whether every year from the earliest to the latest local date of the fields, over all the records,
    is listed in the calendar of every state the records name: then no record needs a year not listed
    (each record's years lie within those), found from two dates instead of a year per record."""
    kinds = fields_of(rec.record_type)
    lows, highs = [], []
    for name in names:
        timestamp = kinds[name] == "timestamp"
        column = rec.cols[f"{name}_local"] if timestamp else np.asarray(rec.cols[name], np.int64)
        known = column != NULL
        if known.any():  # the extreme times' local dates are the extreme local dates
            extremes = np.array([np.min(column, where=known, initial=np.iinfo(np.int64).max), column.max()])
            low, high = calmod.local_days(extremes) if timestamp else extremes
            lows.append(int(low))
            highs.append(int(high))
    if not lows:  # no dates: no year is needed
        return True
    first, last = (int(y) for y in _years(np.array([min(lows), max(highs)], dtype=np.int64)))
    holidays = {s.code: s.holidays for s in plan.states}
    for state in rec.cats["state"]:
        listed = set(holidays[state].listed_years) if state in holidays else set()
        if any(year not in listed for year in range(first, last + 1)):
            return False
    return True


def missing_years(plan: Plan, measure: Measure, rec: Records, month: str | None = None) -> list[MissingYear]:
    """The years `rec` (records of the measure's type) need that their states' calendars do not list."""
    names = business_day_fields(measure)
    if not names or rec.n == 0 or _all_listed(plan, rec, names):
        return []
    earliest, latest = _day_spans(rec, names)
    known = latest != NULL
    first, last = _years(np.where(known, earliest, 0)), _years(np.where(known, latest, 0))
    holidays = {s.code: s.holidays for s in plan.states}
    file_index = rec.file_index if rec.file_index is not None else np.zeros(rec.n, dtype=np.int64)
    row = rec.row if rec.row is not None else np.arange(rec.n)
    out = []
    for state, idx in calmod.state_groups(rec.codes["state"], rec.cats["state"]):
        idx = idx[known[idx]]
        listed = np.zeros(_LAST_YEAR - _FIRST_YEAR + 1, dtype=bool)
        listed[[y - _FIRST_YEAR for y in holidays[state].listed_years if _FIRST_YEAR <= y <= _LAST_YEAR]] = True
        unlisted_before = np.concatenate([[0], np.cumsum(~listed)])  # years not listed before each year
        lo, hi = first[idx] - _FIRST_YEAR, last[idx] - _FIRST_YEAR
        short = unlisted_before[hi + 1] > unlisted_before[lo]
        if not short.any():
            continue
        rows, lo, hi = idx[short], lo[short], hi[short]
        for year in np.flatnonzero(~listed):
            needs = rows[(lo <= year) & (year <= hi)]
            if len(needs):
                at = int(needs[np.lexsort((row[needs], file_index[needs]))[0]])  # the first in read order
                example = rec.ids[at].as_py() if rec.ids is not None else None
                where = (int(file_index[at]), int(row[at]))
                out.append(MissingYear(measure.id, month, state, int(year) + _FIRST_YEAR, len(needs), example, where))
    return out


def missing_in_period(plan: Plan, period: str, records: dict[str, Records], cache: dict) -> list[MissingYear]:
    """The years the period's records need, measure by measure (each of its data month), that the
    plan does not list. `cache`: evaluate.period_rows' cache, shared with the evaluation."""
    out = []
    for measure in plan.measures:
        if business_day_fields(measure):
            rows = evaluate.period_rows(records, measure, period, cache)
            out += missing_years(plan, measure, rows, evaluate.data_period(period, measure))
    return out


def combine(missing: list[MissingYear]) -> list[MissingYear]:
    """Findings of several batches of records (partitions) as one batch of them all would give them."""
    merged: dict[tuple, MissingYear] = {}
    for m in missing:
        key = (m.measure, m.month, m.state, m.year)
        before = merged.get(key)
        if before is None:
            merged[key] = m
        else:
            earlier = before if before.first <= m.first else m
            merged[key] = replace(earlier, records=before.records + m.records)
    return list(merged.values())


def problems(plan: Plan, missing: list[MissingYear]) -> list[PlanProblem]:
    """One problem per missing year, measure and state, at the pointer of the list it is missing from."""
    own = {
        s["code"]: i
        for i, s in enumerate((plan.document or {}).get("states", []))
        if isinstance(s, dict) and "holidays" in s
    }
    out = []
    for m in missing:
        pointer = f"/states/{own[m.state]}/holidays" if m.state in own else "/calendar/holidays"
        example = f" (e.g. {m.example})" if m.example else ""
        out.append(
            PlanProblem(
                pointer,
                f"no holidays listed for {m.year}, a year {m.measure}'s business days reach for {m.records:,} "
                f"record(s) of {m.month or 'the input'} in {m.state}{example}: list {m.year}'s holidays "
                f"(`carrier-sla holidays --country US --years {m.year}` prints a country's list), [] if it has none",
            )
        )
    return out


def require(plan: Plan, missing: list[MissingYear]) -> None:
    """Raise HolidaysNotListed naming every year the records need and the plan does not list."""
    if missing:
        raise HolidaysNotListed(plan.source or plan.id, problems(plan, missing), [m.year for m in missing])
