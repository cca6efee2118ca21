"""Time zones, business days and business hours, per state.

Times are carried as int64 nanoseconds: `*_utc` real instants, `*_local` wall-clock time
of the record's state. Dates are int64 days since 1970-01-01. NULL (int64 minimum, the
same bit pattern as numpy's NaT) marks a missing value in both.

- Local -> UTC: an ambiguous wall time (clocks going back) is the earlier instant; a wall
  time that does not exist (clocks going forward) has no instant and is reported.
- Business days: the plan's weekmask minus the holidays the plan lists for the state (its
  own list, or the calendar's), per year; nothing here reads the `holidays` package. A year
  the plan does not list has no holidays in these tables: carrier_sla.engine.holiday_years stops a
  run whose records reach one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from carrier_sla.plan.load import CalendarSpec, HolidaySpec, Plan

NULL = np.iinfo(np.int64).min
NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
YEARS = range(1995, 2061)  # span of the business-day calendars; dates outside are rejected by contract


def localize(local_ns: np.ndarray, zone: str) -> np.ndarray:
    """UTC instants of wall-clock times in `zone`; NULL where the wall time does not exist."""
    return zones((zone,)).to_utc(local_ns, np.zeros(len(local_ns), dtype=np.int32))


def to_local(utc_ns: np.ndarray, zone: str) -> np.ndarray:
    """Wall-clock times in `zone` of UTC instants."""
    return zones((zone,)).to_local(utc_ns, np.zeros(len(utc_ns), dtype=np.int32))


# the span of the offset tables: a little wider than the calendars' years; times outside it
# (rejected by contract as out of range) take the offset at the nearer end
_SPAN = (np.datetime64(f"{YEARS.start - 1}-01-01", "s"), np.datetime64(f"{YEARS.stop + 1}-01-01", "s"))
_STEP_S = 6 * 3600  # no zone changes its offset twice within 6 hours
_GAP = np.iinfo(np.int64).max  # the offset of a local time that does not exist


@cache
def _transitions(zone: str) -> tuple[np.ndarray, np.ndarray]:
    """The zone's UTC offset changes over the span: (instants, offsets) as int64 seconds, the
    first entry the span's start with the offset there; each offset holds from its instant on.
    Found on a 6-hour grid (pandas' zone data), each change then pinned to its second by
    bisection."""
    start, stop = (int(t.astype(np.int64)) for t in _SPAN)
    grid = np.arange(start, stop + _STEP_S, _STEP_S, dtype=np.int64)
    offsets = _offsets(grid, zone)
    changed = np.flatnonzero(offsets[1:] != offsets[:-1])
    lo, hi = grid[changed], grid[changed + 1]  # offsets[lo] is the old one, offsets[hi] the new
    while len(lo) and (hi - lo > 1).any():
        mid = (lo + hi) // 2
        old = _offsets(mid, zone) == offsets[changed]
        lo, hi = np.where(old, mid, lo), np.where(old, hi, mid)
    return np.concatenate([[start], hi]), np.concatenate([offsets[:1], offsets[changed + 1]])


def _offsets(utc_s: np.ndarray, zone: str) -> np.ndarray:
    idx = pd.DatetimeIndex(utc_s.astype("M8[s]")).tz_localize("UTC")
    return idx.tz_convert(zone).tz_localize(None).as_unit("s").asi8 - utc_s


_HOUR = 3600


@dataclass(frozen=True)
class _Segments:
    """One zone's offsets in one direction: `starts` (seconds, sorted, the first the span's
    start) and the offset of each segment from there on; and the same by hour of the span, as
    an index into the zone's distinct offsets (-1 for an hour a segment starts within)."""

    starts: np.ndarray
    offsets: np.ndarray
    hourly: np.ndarray  # int8 index into `distinct`, or -1
    distinct: np.ndarray

    @classmethod
    def build(cls, starts: np.ndarray, offsets: np.ndarray) -> _Segments:
        first = int(_SPAN[0].astype(np.int64))
        hours = first + _HOUR * np.arange((int(_SPAN[1].astype(np.int64)) - first) // _HOUR, dtype=np.int64)
        at = np.searchsorted(starts, hours, "right") - 1
        inside = at != np.searchsorted(starts, hours + _HOUR - 1, "right") - 1
        distinct, index = np.unique(offsets, return_inverse=True)
        if len(distinct) > 127:
            raise ValueError("a time zone with more than 127 distinct offsets")
        hourly = np.where(inside, -1, index[at]).astype(np.int8)
        return cls(starts, offsets, hourly, distinct)


@cache
def _zone_segments(zone: str) -> tuple[_Segments, _Segments]:
    """(UTC -> offset, wall clock -> offset) of one zone. On the wall clock: from the start;
    at each change from offset a to b, a gap [t+a, t+b) if b > a, then b from t+max(a, b)
    (a repeated hour stays with a)."""
    instants, offsets = _transitions(zone)
    starts, values = [instants[:1]], [offsets[:1]]
    t, a, b = instants[1:], offsets[:-1], offsets[1:]
    gap = b > a
    starts += [t[gap] + a[gap], t + np.maximum(a, b)]
    values += [np.full(int(gap.sum()), _GAP, dtype=np.int64), b]
    local, local_values = np.concatenate(starts), np.concatenate(values)
    order = np.argsort(local, kind="stable")
    return _Segments.build(instants, offsets), _Segments.build(local[order], local_values[order])


class Zones:
    """UTC <-> wall clock for rows each in one of a few zones, all rows at once (no grouping
    of rows by zone): the offset of a row's hour is looked up in a table by zone and hour of
    1994-2061; rows in an hour where the offset changes are searched in the zone's changes.

    Local -> UTC: where clocks go forward, the skipped wall times have no instant (NULL);
    where they go back, a repeated wall time takes the offset before the change, its earlier
    instant. Times are compared at whole seconds; every change of offset falls on one."""

    def __init__(self, zones: tuple[str, ...]):
        segments = [_zone_segments(zone) for zone in zones]
        self._utc = self._stack([s[0] for s in segments])
        self._local = self._stack([s[1] for s in segments])

    @staticmethod
    def _stack(tables: list[_Segments]) -> tuple:
        width = max(len(t.distinct) for t in tables) + 1  # index -1: the last column, unused
        distinct = np.zeros((len(tables), width), dtype=np.int64)
        for z, t in enumerate(tables):
            distinct[z, : len(t.distinct)] = t.distinct
        return np.stack([t.hourly for t in tables]), distinct, tables

    def _offset(self, table: tuple, ns: np.ndarray, zone_index: np.ndarray) -> np.ndarray:
        hourly, distinct, tables = table
        first = int(_SPAN[0].astype(np.int64)) * NS_PER_S
        hours = hourly.shape[1]
        # (NULL wraps around to some hour: its offset is not used)
        hour = np.clip((ns - first) // (_HOUR * NS_PER_S), 0, hours - 1)
        zone = np.maximum(zone_index, 0)
        code = hourly.ravel()[zone * hours + hour]
        offset = distinct.ravel()[zone * distinct.shape[1] + code]
        changing = np.flatnonzero(code < 0)
        for z in np.unique(zone[changing]) if len(changing) else ():
            rows = changing[zone[changing] == z]
            t = tables[z]
            offset[rows] = t.offsets[np.searchsorted(t.starts, ns[rows] // NS_PER_S, "right") - 1]
        return offset

    def to_utc(self, local_ns: np.ndarray, zone_index: np.ndarray) -> np.ndarray:
        """UTC instants of wall-clock times; NULL where the time is NULL, does not exist, or
        its zone index is negative (no zone)."""
        offset = self._offset(self._local, local_ns, zone_index)
        bad = (local_ns == NULL) | (offset == _GAP) | (zone_index < 0)
        return np.where(bad, NULL, local_ns - np.where(bad, 0, offset) * NS_PER_S)

    def to_local(self, utc_ns: np.ndarray, zone_index: np.ndarray) -> np.ndarray:
        """Wall-clock times of UTC instants; NULL where the instant is NULL or there is no zone."""
        offset = self._offset(self._utc, utc_ns, zone_index)
        return np.where((utc_ns == NULL) | (zone_index < 0), NULL, utc_ns + offset * NS_PER_S)


@cache
def zones(names: tuple[str, ...]) -> Zones:
    """The Zones of these zone names, built once per process."""
    return Zones(names)


def local_days(local_ns: np.ndarray) -> np.ndarray:
    """Local dates (days since epoch) of wall-clock times; NULL stays NULL."""
    out = np.floor_divide(local_ns, NS_PER_DAY)
    out[local_ns == NULL] = NULL
    return out


def seconds_of_day(local_ns: np.ndarray) -> np.ndarray:
    return np.mod(local_ns, NS_PER_DAY) // NS_PER_S


_TABLE_DAYS = int(np.datetime64(f"{YEARS.stop + 1}-01-01", "D").astype(np.int64))  # days 0 (1970-01-01) ..


@dataclass(frozen=True)
class BusinessCalendar:
    """Business days and hours of one state.

    Days are looked up in tables over 1970-01-01 .. the end of the calendars' years (is a
    business day; business days before; the business days in order), the same answers as
    numpy's busday functions on the calendar, which serve days outside them."""

    cal: np.busdaycalendar
    start_s: int
    end_s: int
    cutoff_s: int
    business: np.ndarray = field(repr=False, compare=False)  # bool per day of the tables
    before: np.ndarray = field(repr=False, compare=False)  # business days before each day (one more entry)
    in_order: np.ndarray = field(repr=False, compare=False)  # the business days, ascending

    @classmethod
    def build(cls, cal: np.busdaycalendar, start_s: int, end_s: int, cutoff_s: int) -> BusinessCalendar:
        business = np.is_busday(np.arange(_TABLE_DAYS).astype("M8[D]"), busdaycal=cal)
        before = np.concatenate([[0], np.cumsum(business)]).astype(np.int64)
        return cls(cal, start_s, end_s, cutoff_s, business, before, np.flatnonzero(business).astype(np.int64))

    @property
    def hours_per_day(self) -> float:
        return (self.end_s - self.start_s) / 3600

    @staticmethod
    def _outside(*days: np.ndarray) -> np.ndarray:
        out = np.zeros(len(days[0]), dtype=bool)
        for d in days:
            out |= (d < 0) | (d >= _TABLE_DAYS)
        return out

    def is_business_day(self, days: np.ndarray) -> np.ndarray:
        outside = self._outside(days)
        result = self.business[np.where(outside, 0, days)]
        if outside.any():
            result[outside] = np.is_busday(days[outside].view("M8[D]"), busdaycal=self.cal)
        return result

    def roll_forward(self, days: np.ndarray, offset: int | np.ndarray = 0) -> np.ndarray:
        """The business day `offset` business days after `days` (rolled forward first), as
        numpy's busday_offset(roll="forward")."""
        offset = np.broadcast_to(np.asarray(offset, dtype=np.int64), days.shape)
        outside = self._outside(days)
        at = self.before[np.where(outside, 0, days)] + offset  # the first business day >= d, then offset
        outside |= (at < 0) | (at >= len(self.in_order))
        result = self.in_order[np.where(outside, 0, at)]
        if outside.any():
            result[outside] = np.busday_offset(
                days[outside].view("M8[D]"), offset[outside], roll="forward", busdaycal=self.cal
            ).view(np.int64)
        return result

    def count(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Business days d with start <= d < end; when end < start, minus those with
        end < d <= start (numpy's busday_count)."""
        outside = self._outside(start, end)
        back = (end < start).astype(np.int64)  # both ends one day later
        result = self.before[np.where(outside, 0, end + back)] - self.before[np.where(outside, 0, start + back)]
        if outside.any():
            result[outside] = np.busday_count(
                start[outside].view("M8[D]"), end[outside].view("M8[D]"), busdaycal=self.cal
            )
        return result

    def business_seconds(self, local_ns: np.ndarray) -> np.ndarray:
        """Business seconds elapsed since the epoch at each wall-clock time.

        Differences of two positions are the business time between them: business hours
        are [start, end) local clock time on business days.
        """
        days = np.floor_divide(local_ns, NS_PER_DAY)
        sod = np.mod(local_ns, NS_PER_DAY) / NS_PER_S
        whole_days = self.count(np.zeros(len(days), dtype=np.int64), days)
        today = np.clip(sod - self.start_s, 0, self.end_s - self.start_s)
        today = np.where(self.is_business_day(days), today, 0.0)
        return whole_days * float(self.end_s - self.start_s) + today


def business_calendar(plan: Plan, state: str) -> BusinessCalendar:
    spec = next(s for s in plan.states if s.code == state)
    return _business_calendar(plan.calendar, spec.holidays)


@cache
def _business_calendar(cal: CalendarSpec, holidays: HolidaySpec) -> BusinessCalendar:
    return BusinessCalendar.build(
        np.busdaycalendar(
            weekmask=[int(c) for c in cal.weekmask], holidays=[np.datetime64(d, "D") for d in holidays.dates]
        ),
        cal.business_start_s,
        cal.business_end_s,
        cal.order_cutoff_s,
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


def month_span_ns(month: int) -> tuple[int, int]:
    """[first, end) of a month (months since 1970-01) as wall-clock int64 nanoseconds."""
    first, end = (int(np.datetime64(m, "M").astype("M8[D]").astype(np.int64)) for m in (month, month + 1))
    return first * NS_PER_DAY, end * NS_PER_DAY


def period_index(period: str) -> int:
    return int(np.datetime64(period, "M").astype(np.int64))


def period_text(index: int) -> str:
    return str(np.datetime64(index, "M"))
