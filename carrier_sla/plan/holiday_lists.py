"""`carrier-sla holidays`: a country's holidays from the `holidays` package, per year, as the
JSON a plan lists them in (calendar.holidays, or a state's holidays).

The engine never reads the `holidays` package: a plan lists its holidays itself, so that its
sha256 covers them and no installed package version can change a verdict. This is the one
place the package is used (besides the synthetic data generator): to print a list for a person
to review, paste into a plan, and edit (many ILECs work Columbus Day and Veterans Day).
"""

from __future__ import annotations

import json
import re
from typing import Any

from carrier_sla.errors import UsageError
from carrier_sla.plan.calendar import YEARS

HolidayTable = dict[str, list[dict[str, str]]]


def parse_years(text: str) -> tuple[int, int]:
    """(first, last) of "YYYY" or "YYYY-YYYY", within the years the calendars cover."""
    match = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4})\s*)?", text)
    if not match:
        raise UsageError(f"--years {text!r}: give a year or a range of years, e.g. 2026 or 2020-2035")
    first, last = int(match[1]), int(match[2] or match[1])
    if first > last:
        raise UsageError(f"--years {text!r}: the first year is after the last")
    if first < YEARS.start or last >= YEARS.stop:
        raise UsageError(f"--years {text!r}: the business calendars cover {YEARS.start}-{YEARS.stop - 1}")
    return first, last


def holiday_table(country: str, subdivision: str | None, first: int, last: int) -> HolidayTable:
    """The package's holidays of `country` (and `subdivision`) in years first..last, by year: each
    {"date", "name"}, ascending. A date belongs to the year it lies in (a New Year's Day observed
    on 31 December is listed in the year before), as the engine has always taken them."""
    import holidays as holidays_pkg  # only here: the engine never reads the package

    try:
        found = holidays_pkg.country_holidays(country, subdiv=subdivision, years=range(first - 1, last + 2))
    except (NotImplementedError, KeyError, ValueError) as exc:
        where = country + (f"/{subdivision}" if subdivision else "")
        raise UsageError(f"the holidays package has no calendar {where}: {exc}") from None
    table: HolidayTable = {str(year): [] for year in range(first, last + 1)}
    for day, name in sorted(found.items()):
        if first <= day.year <= last:
            table[str(day.year)].append({"date": day.isoformat(), "name": name})
    return table


def format_table(table: dict[str, list[Any]], indent: int = 0) -> str:
    """The table as JSON, one holiday a line (the layout of the bundled plans); the first line
    unindented, so that it can follow `"holidays": ` in a plan."""
    pad = " " * indent
    years = list(table)
    lines = ["{"]
    for i, year in enumerate(years):
        end = "," if i < len(years) - 1 else ""
        items = table[year]
        if not items:
            lines.append(f'{pad}  "{year}": []{end}')
            continue
        lines.append(f'{pad}  "{year}": [')
        lines += [
            f"{pad}    {json.dumps(item, ensure_ascii=False)}{',' if j < len(items) - 1 else ''}"
            for j, item in enumerate(items)
        ]
        lines.append(f"{pad}  ]{end}")
    lines.append(pad + "}")
    return "\n".join(lines)


def package_version() -> str:
    import holidays as holidays_pkg

    return str(holidays_pkg.__version__)
