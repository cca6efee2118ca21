"""Reporting months: checking a period, the plan in force, month-to-date cut-offs, --period auto."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from carrier_sla.errors import UsageError
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.load import Plan


def check_period(period: str) -> str:
    try:
        calmod.period_index(period)
    except ValueError as exc:
        raise UsageError(f"period {period!r} is not YYYY-MM") from exc
    if len(period) != 7 or period[4] != "-":
        raise UsageError(f"period {period!r} is not YYYY-MM")
    if int(period[:4]) not in calmod.YEARS:
        raise UsageError(
            f"period {period!r} is outside the supported years {calmod.YEARS.start}-{calmod.YEARS.stop - 1} "
            "(the span of the business-day calendars; records outside it are rejected)"
        )
    return period


def check_in_force(plan: Plan, period: str) -> None:
    start = calmod.month_start_day(period)
    first = calmod.calendar_day(plan.effective_from)
    last = calmod.calendar_day(plan.effective_to) if plan.effective_to else None
    month_end = calmod.month_start_day(calmod.period_text(calmod.period_index(period) + 1)) - 1
    if month_end < first or (last is not None and start > last):
        raise UsageError(
            f"plan {plan.id} {plan.version} is in force {plan.effective_from} to {plan.effective_to or 'open'}, "
            f"not in period {period}"
        )


def auto_periods(today: dt.date, final_within_days: int) -> list[tuple[str, dt.date | None]]:
    """The nightly job's runs: the current month to date (as of today), preceded within the first
    `final_within_days` days of a month by the final run of the previous month."""
    current = today.strftime("%Y-%m")
    jobs: list[tuple[str, dt.date | None]] = [(current, today)]
    if today.day <= final_within_days:
        jobs.insert(0, (calmod.period_text(calmod.period_index(current) - 1), None))
    return jobs


@dataclass(frozen=True)
class Cutoff:
    """Which data a run sees (as_of: known at the end of that day; None: all) and whether its
    results are provisional, with the date they are provisional as of."""

    as_of: dt.date | None
    provisional: bool
    provisional_as_of: dt.date | None

    @staticmethod
    def of(period: str, as_of: dt.date | None, today: dt.date) -> Cutoff:
        first = dt.date.fromisoformat(period + "-01")
        last = dt.date.fromisoformat(calmod.period_text(calmod.period_index(period) + 1) + "-01") - dt.timedelta(1)
        if as_of is not None:
            if as_of < first:
                raise UsageError(f"--as-of {as_of} is before period {period} begins")
            if as_of > today:
                raise UsageError(f"--as-of {as_of} is after today ({today}): data of the future are not known")
            return Cutoff(as_of, as_of < last, as_of if as_of < last else None)
        return Cutoff(None, today <= last, today if today <= last else None)
