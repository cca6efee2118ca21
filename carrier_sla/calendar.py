"""Time zones, business days and business hours, per state.

Times are carried as int64 nanoseconds: `*_utc` real instants, `*_local` wall-clock time
of the record's state. Dates are int64 days since 1970-01-01. NULL (int64 minimum, the
same bit pattern as numpy's NaT) marks a missing value in both.

- Local -> UTC: an ambiguous wall time (clocks going back) is the earlier instant; a wall
  time that does not exist (clocks going forward) has no instant and is reported.
- Business days: the plan's weekmask minus the holidays of the state's calendar (the
  `holidays` package, country/subdivision, plus extra dates listed in the plan).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import holidays as holidays_pkg
import numpy as np
import pandas as pd

from carrier_sla.plan import CalendarSpec, HolidaySpec, Plan

NULL = np.iinfo(np.int64).min
NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
YEARS = range(1995, 2061)  # span of the business-day calendars; dates outside are rejected by contract


def localize(local_ns: np.ndarray, zone: str) -> np.ndarray:
    """UTC instants of wall-clock times in `zone`; NULL where the wall time does not exist."""
    idx = pd.DatetimeIndex(local_ns.view("M8[ns]"))
    utc = idx.tz_localize(zone, ambiguous=np.ones(len(idx), dtype=bool), nonexistent="NaT")
    return np.asarray(utc.asi8, dtype=np.int64)


def to_local(utc_ns: np.ndarray, zone: str) -> np.ndarray:
    """Wall-clock times in `zone` of UTC instants."""
    idx = pd.DatetimeIndex(utc_ns.view("M8[ns]")).tz_localize("UTC").tz_convert(zone).tz_localize(None)
    return np.asarray(idx.asi8, dtype=np.int64)


def local_days(local_ns: np.ndarray) -> np.ndarray:
    """Local dates (days since epoch) of wall-clock times; NULL stays NULL."""
    out = np.floor_divide(local_ns, NS_PER_DAY)
    out[local_ns == NULL] = NULL
    return out


def seconds_of_day(local_ns: np.ndarray) -> np.ndarray:
    return np.mod(local_ns, NS_PER_DAY) // NS_PER_S


@cache
def _holiday_dates(spec: HolidaySpec) -> tuple[np.datetime64, ...]:
    days = holidays_pkg.country_holidays(spec.country, subdiv=spec.subdivision, years=YEARS)
    dates = set(days.keys()) | set(spec.extra_dates)
    return tuple(np.datetime64(d, "D") for d in sorted(dates))


@dataclass(frozen=True)
class BusinessCalendar:
    """Business days and hours of one state."""

    cal: np.busdaycalendar
    start_s: int
    end_s: int
    cutoff_s: int

    @property
    def hours_per_day(self) -> float:
        return (self.end_s - self.start_s) / 3600

    def is_business_day(self, days: np.ndarray) -> np.ndarray:
        return np.is_busday(days.view("M8[D]"), busdaycal=self.cal)

    def roll_forward(self, days: np.ndarray, offset: int | np.ndarray = 0) -> np.ndarray:
        """The business day `offset` business days after `days` (rolled forward first)."""
        return np.busday_offset(days.view("M8[D]"), offset, roll="forward", busdaycal=self.cal).view(np.int64)

    def count(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Business days d with start <= d < end (negative when end < start)."""
        return np.busday_count(start.view("M8[D]"), end.view("M8[D]"), busdaycal=self.cal)

    def business_seconds(self, local_ns: np.ndarray) -> np.ndarray:
        """Business seconds elapsed since the epoch at each wall-clock time.

        Differences of two positions are the business time between them: business hours
        are [start, end) local clock time on business days.
        """
        days = np.floor_divide(local_ns, NS_PER_DAY)
        sod = np.mod(local_ns, NS_PER_DAY) / NS_PER_S
        whole_days = np.busday_count(np.zeros(len(days), "M8[D]"), days.view("M8[D]"), busdaycal=self.cal)
        today = np.clip(sod - self.start_s, 0, self.end_s - self.start_s)
        today = np.where(self.is_business_day(days), today, 0.0)
        return whole_days * float(self.end_s - self.start_s) + today


def business_calendar(plan: Plan, state: str) -> BusinessCalendar:
    spec = next(s for s in plan.states if s.code == state)
    return _business_calendar(plan.calendar, spec.holidays)


@cache
def _business_calendar(cal: CalendarSpec, holidays: HolidaySpec) -> BusinessCalendar:
    return BusinessCalendar(
        cal=np.busdaycalendar(weekmask=[int(c) for c in cal.weekmask], holidays=list(_holiday_dates(holidays))),
        start_s=cal.business_start_s,
        end_s=cal.business_end_s,
        cutoff_s=cal.order_cutoff_s,
    )


def state_groups(codes: np.ndarray, categories: list[str]) -> list[tuple[str, np.ndarray]]:
    """(state, row indices) for each state present, from categorical codes (-1 = missing)."""
    groups = []
    for i, state in enumerate(categories):
        rows = np.flatnonzero(codes == i)
        if len(rows):
            groups.append((state, rows))
    return groups


def calendar_day(day: dt.date) -> int:
    """Days since epoch of a date."""
    return (day - dt.date(1970, 1, 1)).days


def month_start_day(period: str) -> int:
    return int(np.datetime64(period + "-01", "D").astype(np.int64))


def month_of_days(days: np.ndarray) -> np.ndarray:
    """Month index (months since 1970-01) of each day; NULL stays NULL."""
    out = days.view("M8[D]").astype("M8[M]").view(np.int64).copy()
    out[days == NULL] = NULL
    return out


def period_index(period: str) -> int:
    return int(np.datetime64(period, "M").astype(np.int64))


def period_text(index: int) -> str:
    return str(np.datetime64(index, "M"))
