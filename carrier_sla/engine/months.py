"""`run --period` in each of its forms: a month, a range of months (2026-01..2026-10) or "auto".

run_period is the one dispatch of the command line and the Python API.

A range of months: `run --period 2026-01..2026-10`.

The months run in order (remedies escalate month by month: carrier_sla.engine.remedy_chain), each under
the plan version in force for it, all under one hold of the store's lock, so that no other run
can publish between two of them. Each month is an ordinary run with its own run id, manifest and
publication; the first that fails stops the range (its manifest says why), the months before it
stay published and the months after it are not run. Running a range publishes exactly what
running its months one by one would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carrier_sla.engine import pipeline
from carrier_sla.errors import UsageError
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.periods import auto_periods, check_period
from carrier_sla.plan.versions import PlanVersions
from carrier_sla.store import layout as store

RANGE = ".."


def is_range(text: str) -> bool:
    return RANGE in text


def parse_range(text: str) -> list[str]:
    """FIRST..LAST as the months from FIRST to LAST, in order (UsageError for a malformed or reversed range)."""
    first, _, last = text.partition(RANGE)
    if not first or not last:
        raise UsageError(f"period range {text!r} is not YYYY-MM..YYYY-MM")
    check_period(first)
    check_period(last)
    a, b = calmod.period_index(first), calmod.period_index(last)
    if b < a:
        raise UsageError(f"period range {text!r} ends before it begins")
    return [calmod.period_text(i) for i in range(a, b + 1)]


def run_months(
    versions: PlanVersions,
    data_dir: Path,
    periods: list[str],
    out: Path,
    *,
    done: Callable[[pipeline.RunResult], None] = lambda _: None,
    **run_options: Any,
) -> list[pipeline.RunResult]:
    """Run `periods` in order under one hold of the store's lock; `done(result)` after each month.

    Every month must have a plan version in force (UsageError naming the first that has none,
    before anything runs). The first month that fails raises its error; the months before it are
    published, the months after it are not run."""
    plans = [versions.for_period(period) for period in periods]
    results = []
    with store.StoreLock(Path(out), f"range {periods[0]}{RANGE}{periods[-1]}") as lock:
        for plan, period in zip(plans, periods, strict=True):
            result = pipeline.run(plan, data_dir, period, out, held_lock=lock, **run_options)
            results.append(result)
            done(result)
    return results


Jobs = list[tuple[str, dt.date | None]]  # (month, as-of date: None for all the data, final)


def run_period(
    versions: PlanVersions,
    data_dir: Path,
    period: str,
    out: Path,
    *,
    as_of: dt.date | None,
    today: dt.date,
    final_within_days: int,
    done: Callable[[pipeline.RunResult], None] = lambda _: None,
    chosen: Callable[[Jobs], None] = lambda _: None,
    **run_options: Any,
) -> list[pipeline.RunResult]:
    """Run `period`: a month YYYY-MM (as of `as_of`, or all its data); a range FIRST..LAST
    (run_months); or "auto", the nightly job's runs (plan.periods.auto_periods: the current month
    to date, and within `final_within_days` days of a month first the previous month, final).

    `chosen(jobs)` is called once the months are known, before any runs (a range's and auto's
    months, for the caller to announce); `done(result)` after each month. The results in order.
    UsageError before anything runs for an as-of date with a range or auto."""
    if is_range(period):
        if as_of is not None:
            raise UsageError("an as-of date is for one month: leave it out of a range of months")
        periods = parse_range(period)
        chosen([(month, None) for month in periods])
        return run_months(versions, data_dir, periods, out, done=done, today=today, **run_options)
    if period == "auto":
        if as_of is not None:
            raise UsageError("period auto chooses its own as-of dates: leave out the as-of date")
        jobs = auto_periods(today, final_within_days)
        chosen(jobs)
    else:
        jobs = [(period, as_of)]
    results = []
    for month, day in jobs:
        result = pipeline.run(versions.for_period(month), data_dir, month, out, as_of=day, today=today, **run_options)
        results.append(result)
        done(result)
    return results
