"""Unit tests of carrier_sla.plan.calendar: time zones, business days and business hours.

Hand calendar (the US federal holidays example-qc lists, from the `holidays` package):
    Oct 2026: Fri 9, Mon 12 = Columbus Day, Tue 13. Nov 2026: Sun 1 clocks fall back in
    Denver/Los Angeles, Wed 11 = Veterans Day, Thu 26 = Thanksgiving, Fri 27 is a working day.
    Dec 2026: Fri 25 = Christmas. Jul 2026: Fri 3 = Independence Day (observed).
    Mar 2026: Sun 8 clocks spring forward; Tue 31 = Cesar Chavez Day, a Colorado state holiday
    only (not federal). Business hours 08:00-17:00 = 9 hours; cut-off 15:00.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from carrier_sla.plan import calendar as cal
from carrier_sla.plan.calendar import NS_PER_S, NULL

HOUR_S = 3600


def ns(*texts: str) -> np.ndarray:
    """int64 nanoseconds of naive ISO times (wall clock or UTC, as the caller means them)."""
    return np.array([np.datetime64(t, "ns").astype(np.int64) for t in texts], dtype=np.int64)


def days(*texts: str) -> np.ndarray:
    """int64 days since the epoch of ISO dates."""
    return np.array([np.datetime64(t, "D").astype(np.int64) for t in texts], dtype=np.int64)


def text_days(values: np.ndarray) -> list[str]:
    return [str(np.datetime64(int(v), "D")) for v in values]


@pytest.fixture
def co(plan):
    """Colorado's business calendar from the example plan."""
    return cal.business_calendar(plan, "CO")


def business_hours(calendar: cal.BusinessCalendar, start: str, end: str) -> float:
    """Business hours between two local wall-clock times."""
    pos = calendar.business_seconds(ns(start, end))
    return float(pos[1] - pos[0]) / HOUR_S


# ------------------------------------------------------------------------------ business hours


def test_business_hours_within_one_day(co):
    """Business time inside one business day is the plain clock difference."""
    assert business_hours(co, "2026-10-05T09:00", "2026-10-05T11:30") == 2.5


def test_business_hours_skip_the_weekend(co):
    """Fri 16:00 to Mon 10:00 is 1 hour on Friday plus 2 hours on Monday."""
    assert business_hours(co, "2026-10-02T16:00", "2026-10-05T10:00") == 3


def test_business_hours_skip_a_federal_holiday(co):
    """Fri Oct 9 16:00 to Tue Oct 13 10:00 skips the weekend and Columbus Day: 1 + 2 = 3 hours."""
    assert business_hours(co, "2026-10-09T16:00", "2026-10-13T10:00") == 3


def test_business_hours_clamp_before_opening_and_after_closing(co):
    """Times before 08:00 count from the opening and times after 17:00 from the close."""
    assert business_hours(co, "2026-10-05T06:00", "2026-10-05T20:00") == 9
    assert business_hours(co, "2026-10-05T18:00", "2026-10-06T07:59") == 0
    assert business_hours(co, "2026-10-05T20:00", "2026-10-07T09:00") == 10  # Tue 9 + Wed 1


def test_business_hours_on_non_business_days_are_zero(co):
    """All of a weekend or holiday adds no business time, and any time on it sits at the previous close."""
    assert business_hours(co, "2026-10-10T09:00", "2026-10-12T16:00") == 0  # Sat -> Columbus Day
    sat, fri_close, mon_open = co.business_seconds(ns("2026-10-10T12:00", "2026-10-09T17:00", "2026-10-13T08:00"))
    assert sat == fri_close == mon_open


def test_business_hours_are_additive_over_several_weeks(co):
    """Mon Oct 5 08:00 to Mon Nov 16 08:00 spans 28 business days (Columbus and Veterans Day off) = 252 hours."""
    # Oct 5-9 (5), 13-16 (4), 19-23 (5), 26-30 (5), Nov 2-6 (5), 9 10 12 13 (4) = 28
    assert business_hours(co, "2026-10-05T08:00", "2026-11-16T08:00") == 28 * 9
    assert co.hours_per_day == 9


def test_business_hours_keep_fractions_of_a_second(co):
    """Positions keep sub-second precision: half a second of business time is 0.5 s."""
    pos = co.business_seconds(ns("2026-10-05T09:00:00", "2026-10-05T09:00:00.5"))
    assert pos[1] - pos[0] == 0.5


# ------------------------------------------------------------------------------ business days


def test_is_business_day_follows_weekmask_and_federal_holidays_only(co):
    """Weekdays are business days unless federal holidays (observed dates included); state holidays are not."""
    result = co.is_business_day(
        days(
            "2026-10-09",
            "2026-10-10",
            "2026-10-11",
            "2026-10-12",
            "2026-07-03",
            "2026-11-27",
            "2026-03-31",
            "2026-12-25",
        )
    )
    assert result.tolist() == [True, False, False, False, False, True, True, False]


def test_roll_forward_moves_non_business_days_to_the_next_business_day(co):
    """roll_forward with offset 0 keeps a business day and moves a weekend or holiday to the next business day."""
    result = co.roll_forward(days("2026-10-09", "2026-10-10", "2026-10-11", "2026-10-12", "2026-11-26"))
    assert text_days(result) == ["2026-10-09", "2026-10-13", "2026-10-13", "2026-10-13", "2026-11-27"]


def test_roll_forward_with_offsets_counts_business_days(co):
    """roll_forward(d, k) is the k-th business day after d (after rolling d forward), skipping holidays."""
    start = days("2026-10-05", "2026-10-09", "2026-10-05", "2026-11-10", "2026-11-25", "2026-10-10")
    result = co.roll_forward(start, np.array([3, 1, 15, 1, 1, 1]))
    assert text_days(result) == ["2026-10-08", "2026-10-13", "2026-10-27", "2026-11-12", "2026-11-27", "2026-10-14"]


def test_count_is_business_days_in_a_half_open_range(co):
    """count(a, b) is the number of business days d with a <= d < b, negative when b < a."""
    a = days("2026-10-05", "2026-10-05", "2026-10-14", "2026-10-09", "2026-10-10", "2026-10-05")
    b = days("2026-10-14", "2026-10-05", "2026-10-05", "2026-10-13", "2026-10-13", "2026-10-06")
    assert co.count(a, b).tolist() == [6, 0, -6, 1, 0, 1]


def test_states_share_the_plan_calendar(plan):
    """Without per-state holidays every state has the plan's business days, hours and cut-off."""
    check = days("2026-10-09", "2026-10-12", "2026-11-11", "2026-11-27")
    for state in ("AZ", "CO", "OR", "UT", "WA"):
        calendar = cal.business_calendar(plan, state)
        assert calendar.is_business_day(check).tolist() == [True, False, False, True], state
        assert (calendar.start_s, calendar.end_s, calendar.cutoff_s) == (8 * HOUR_S, 17 * HOUR_S, 15 * HOUR_S), state


def test_extra_holiday_dates_of_the_plan_are_not_business_days(make_plan):
    """A date the plan adds to a year's list (the day after Thanksgiving) is a holiday besides the others."""

    def add_day(doc):
        doc["calendar"]["holidays"]["2026"].append("2026-11-27")

    calendar = cal.business_calendar(make_plan(add_day), "CO")
    assert calendar.is_business_day(days("2026-11-27", "2026-11-30")).tolist() == [False, True]
    assert business_hours(calendar, "2026-11-25T16:00", "2026-11-30T09:00") == 2


def test_a_plan_can_leave_out_a_federal_holiday(make_plan):
    """A plan whose 2026 list leaves out Columbus Day works Monday 2026-10-12: it is a business day."""

    def work_columbus_day(doc):
        doc["calendar"]["holidays"]["2026"] = [
            h for h in doc["calendar"]["holidays"]["2026"] if h["date"] != "2026-10-12"
        ]

    calendar = cal.business_calendar(make_plan(work_columbus_day), "CO")
    assert calendar.is_business_day(days("2026-10-12", "2026-11-11")).tolist() == [True, False]
    assert text_days(calendar.roll_forward(days("2026-10-10"))) == ["2026-10-12"]
    assert calendar.count(days("2026-10-09"), days("2026-10-14")).tolist() == [3]  # Fri, Mon, Tue


def test_a_state_with_its_own_holidays_uses_only_those(make_plan):
    """Colorado listing its own 2026 holidays (Cesar Chavez Day only) replaces the plan's list there; Arizona keeps it."""

    def colorado(doc):
        doc["states"][1]["holidays"] = {"2026": [{"date": "2026-03-31", "name": "Cesar Chavez Day"}]}

    plan = make_plan(colorado)
    check = days("2026-03-31", "2026-10-12", "2026-12-25")
    assert cal.business_calendar(plan, "CO").is_business_day(check).tolist() == [False, True, True]
    assert cal.business_calendar(plan, "AZ").is_business_day(check).tolist() == [True, False, False]


# ------------------------------------------------------------------------------ time zones


def test_localize_standard_and_daylight_times():
    """localize gives the UTC instant of a wall time: UTC-6 in Denver summer, UTC-7 in winter and always in Phoenix."""
    assert cal.localize(ns("2026-10-05T09:00"), "America/Denver").tolist() == ns("2026-10-05T15:00").tolist()
    assert cal.localize(ns("2026-12-01T09:00"), "America/Denver").tolist() == ns("2026-12-01T16:00").tolist()
    assert cal.localize(ns("2026-07-01T09:00"), "America/Phoenix").tolist() == ns("2026-07-01T16:00").tolist()


def test_localize_ambiguous_time_is_the_earlier_instant():
    """On the fall-back night 01:30 happens twice; localize picks the first (daylight) one."""
    result = cal.localize(ns("2026-11-01T01:30", "2026-11-01T02:00"), "America/Denver")
    assert result.tolist() == ns("2026-11-01T07:30", "2026-11-01T09:00").tolist()  # 01:30 MDT, 02:00 MST
    la = cal.localize(ns("2026-11-01T01:30"), "America/Los_Angeles")
    assert la.tolist() == ns("2026-11-01T08:30").tolist()  # 01:30 PDT


def test_localize_nonexistent_time_is_null():
    """A wall time skipped by spring forward (02:30 on 2026-03-08) has no instant: NULL; its neighbours do."""
    result = cal.localize(ns("2026-03-08T01:59:59", "2026-03-08T02:30", "2026-03-08T03:00"), "America/Denver")
    assert result[1] == NULL
    assert result[[0, 2]].tolist() == ns("2026-03-08T08:59:59", "2026-03-08T09:00").tolist()
    assert cal.localize(ns("2026-03-08T02:30"), "America/Phoenix").tolist() == ns("2026-03-08T09:30").tolist()


def test_to_local_converts_instants_to_wall_clock():
    """to_local gives the wall time of UTC instants; both instants of the fall-back hour read 01:30."""
    utc = ns("2026-11-01T07:30", "2026-11-01T08:30", "2026-11-01T06:30")
    assert (
        cal.to_local(utc, "America/Denver").tolist()
        == ns("2026-11-01T01:30", "2026-11-01T01:30", "2026-11-01T00:30").tolist()
    )
    assert cal.to_local(ns("2026-11-01T06:30"), "America/Los_Angeles").tolist() == ns("2026-10-31T23:30").tolist()
    assert cal.to_local(ns("2026-11-01T06:30"), "America/Phoenix").tolist() == ns("2026-10-31T23:30").tolist()


def test_real_elapsed_time_across_daylight_saving_changes():
    """Differences of localized instants are real elapsed time: 00:30 -> 04:00 is 4.5 h at fall back, 2.5 h at spring forward."""
    fall = cal.localize(ns("2026-11-01T00:30", "2026-11-01T04:00"), "America/Denver")
    spring = cal.localize(ns("2026-03-08T00:30", "2026-03-08T04:00"), "America/Denver")
    assert (fall[1] - fall[0]) / NS_PER_S / HOUR_S == 4.5
    assert (spring[1] - spring[0]) / NS_PER_S / HOUR_S == 2.5  # 07:30 UTC (MST) -> 10:00 UTC (MDT)


# ------------------------------------------------------------------------------ dates and months


def test_local_days_seconds_of_day_and_nulls():
    """local_days floors to the local date and keeps NULL; seconds_of_day is whole seconds after midnight."""
    values = np.array([*ns("2026-10-31T23:30:15", "1969-12-31T23:00"), NULL], dtype=np.int64)
    assert cal.local_days(values).tolist() == [*days("2026-10-31", "1969-12-31").tolist(), NULL]
    assert cal.seconds_of_day(ns("2026-10-31T23:30:15.9")).tolist() == [23 * 3600 + 30 * 60 + 15]


def test_month_helpers():
    """Month indexes and day numbers round-trip between text, dates and days; a month's span in wall-clock ns."""
    assert cal.period_text(cal.period_index("2026-10") - 1) == "2026-09"
    assert cal.period_text(cal.period_index("2027-01") - 1) == "2026-12"
    assert cal.month_start_day("2026-10") == days("2026-10-01")[0] == cal.calendar_day(dt.date(2026, 10, 1))
    first, end = cal.month_span_ns(cal.period_index("2026-10"))
    assert (first, end) == (ns("2026-10-01")[0], ns("2026-11-01")[0])
    assert cal.month_span_ns(cal.period_index("2026-12"))[1] == ns("2027-01-01")[0]


def test_state_groups_partition_rows_by_state():
    """state_groups gives each present state's row indices in original order and skips missing codes."""
    codes = np.array([2, 0, -1, 2, 0], dtype=np.int32)
    groups = cal.state_groups(codes, ["AZ", "CO", "WA"])
    assert [(s, idx.tolist()) for s, idx in groups] == [("AZ", [1, 4]), ("WA", [0, 3])]


ORACLE_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "America/St_Johns",  # UTC-3:30
    "Australia/Lord_Howe",  # a half-hour daylight-saving change
    "Pacific/Apia",  # skipped 2011-12-30 whole
    "Europe/Dublin",  # daylight saving in winter in the zone data
    "Asia/Kathmandu",
)


def _pandas_localize(local_ns, zone):
    """The reference: pandas' two readings of each wall time, the earlier instant kept."""
    idx = pd.DatetimeIndex(local_ns.view("M8[ns]"))
    readings = [
        idx.tz_localize(zone, ambiguous=np.full(len(idx), flag), nonexistent="NaT").asi8 for flag in (True, False)
    ]
    return np.minimum(*readings)


def test_zone_tables_agree_with_pandas_across_the_calendar_years():
    """Zones: every wall time (random over 1995-2060, and each second around every offset
    change) converts as pandas converts it, for zones with whole, half-hour, negative and
    day-long changes; rows of several zones at once; NULL and no-zone rows stay NULL."""
    rng = np.random.default_rng(5)
    zones = cal.Zones(ORACLE_ZONES)
    lo, hi = (int(np.datetime64(d, "ns").astype(np.int64)) for d in ("1995-01-01", "2061-01-01"))
    local_parts, utc_parts, zone_parts = [], [], []
    for z, zone in enumerate(ORACLE_ZONES):
        instants, _ = cal._transitions(zone)
        near = (instants[1:, None] + np.arange(-30 * 3600, 30 * 3600, 900)[None, :]).ravel() * NS_PER_S
        near = near + rng.integers(0, NS_PER_S, len(near)) * (rng.random(len(near)) < 0.5)
        spread = rng.integers(lo, hi, 20_000)
        local = np.concatenate([near, near + 1, near - 1, spread])
        local_parts.append(local)
        zone_parts.append(np.full(len(local), z, dtype=np.int32))
        utc_parts.append(_pandas_localize(local, zone))
    local, expected = np.concatenate(local_parts), np.concatenate(utc_parts)
    zone_index = np.concatenate(zone_parts)
    shuffle = rng.permutation(len(local))
    local, expected, zone_index = local[shuffle], expected[shuffle], zone_index[shuffle]
    assert (expected == NULL).sum() > 1000  # skipped wall times are among them
    assert np.array_equal(zones.to_utc(local, zone_index), expected)
    # and back: the wall clock of each instant that exists is the time it came from
    exists = expected != NULL
    assert np.array_equal(zones.to_local(expected[exists], zone_index[exists]), local[exists])
    for z, zone in enumerate(ORACLE_ZONES):  # to_local on instants of both readings of a repeated hour
        utc = rng.integers(lo, hi, 5_000)
        reference = pd.DatetimeIndex(utc.view("M8[ns]")).tz_localize("UTC").tz_convert(zone).tz_localize(None).asi8
        assert np.array_equal(zones.to_local(utc, np.full(len(utc), z, dtype=np.int32)), reference), zone
    nulls = np.array([NULL, local[0]], dtype=np.int64)
    assert zones.to_utc(nulls, np.array([0, -1], dtype=np.int32)).tolist() == [NULL, NULL]
    assert zones.to_local(nulls, np.array([0, -1], dtype=np.int32)).tolist() == [NULL, NULL]


def test_business_day_tables_agree_with_numpy_busday_functions(make_plan):
    """is_business_day, roll_forward, count and business_seconds from the day tables equal
    numpy's busday functions on the state's calendar: every day of the tables, random offsets
    (negative too) and spans, and days outside the tables (served by numpy)."""
    calendar = cal.business_calendar(make_plan(lambda doc: None), "CO")
    rng = np.random.default_rng(11)
    inside = np.arange(cal._TABLE_DAYS, dtype=np.int64)
    outside = np.array([-40_000, -1, cal._TABLE_DAYS, cal._TABLE_DAYS + 500], dtype=np.int64)
    days = np.concatenate([inside, outside, rng.integers(-1_000, cal._TABLE_DAYS + 1_000, 50_000)])
    as_dates = days.view("M8[D]")
    assert np.array_equal(calendar.is_business_day(days), np.is_busday(as_dates, busdaycal=calendar.cal))
    offsets = rng.integers(-30, 31, len(days))
    expected = np.busday_offset(as_dates, offsets, roll="forward", busdaycal=calendar.cal).view(np.int64)
    assert np.array_equal(calendar.roll_forward(days, offsets), expected)
    assert np.array_equal(
        calendar.roll_forward(days, 2),
        np.busday_offset(as_dates, 2, roll="forward", busdaycal=calendar.cal).view(np.int64),
    )
    ends = days + rng.integers(-60, 61, len(days))
    assert np.array_equal(
        calendar.count(days, ends), np.busday_count(as_dates, ends.view("M8[D]"), busdaycal=calendar.cal)
    )
    local = days[: cal._TABLE_DAYS] * cal.NS_PER_DAY + rng.integers(0, cal.NS_PER_DAY, cal._TABLE_DAYS)
    whole = np.busday_count(
        np.zeros(len(local), "M8[D]"), (local // cal.NS_PER_DAY).view("M8[D]"), busdaycal=calendar.cal
    )
    sod = (local % cal.NS_PER_DAY) / NS_PER_S
    today = np.where(
        np.is_busday((local // cal.NS_PER_DAY).view("M8[D]"), busdaycal=calendar.cal),
        np.clip(sod - calendar.start_s, 0, calendar.end_s - calendar.start_s),
        0.0,
    )
    assert np.array_equal(calendar.business_seconds(local), whole * float(calendar.end_s - calendar.start_s) + today)
