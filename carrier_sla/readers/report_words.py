"""The words of the filing report: column headers, statuses and methods as people say them, the
glossary, and how figures, money and test statistics are written. Display only: the CSV tables
keep the store's column names and values."""

from __future__ import annotations

import html
import math
from decimal import Decimal

import pandas as pd

STATUS_WORDS = {
    "met": "Met",
    "miss": "Missed",
    "no_activity": "No activity",
    "no_retail_analog": "No retail analog",
    "undetermined": "Undetermined",
    "diagnostic": "Diagnostic",
}
STATUS_MEANINGS = {
    "met": "the CLEC result is at parity with retail, or meets the benchmark",
    "miss": "the CLEC result is worse than retail beyond the critical value (or the p-value is below alpha), or "
    "fails the benchmark; a missed CLEC cell pays the CLEC (tier 1), a missed all-CLEC cell the state fund "
    "(tier 2) where the plan says so",
    "no_activity": "no CLEC records were counted in the cell this month: no verdict",
    "no_retail_analog": "a parity cell without retail records to compare with: no verdict",
    "undetermined": "the test is undefined for the cell (for example troubles without lines in service); "
    "the results table's status_reason says why",
    "diagnostic": "reported for information; the plan sets no standard",
}
METHOD_WORDS = {
    "modified_z": "modified z",
    "modified_t": "modified t",
    "modified_t_log": "modified t (logs)",
    "fisher_exact": "Fisher's exact",
    "binomial_exact": "binomial exact",
    "permutation_exact": "permutation (exact)",
    "permutation_monte_carlo": "permutation (Monte Carlo)",
    "stare_and_compare": "stare and compare",
    "stare_and_compare_with_allowance": "stare and compare with allowance",
}
METHOD_MEANINGS = {
    "modified_z": "parity test of the difference between the CLEC and retail results, scaled by the retail "
    "variance only (z; positive = CLEC worse), compared with the plan's critical value",
    "modified_t": "California's t on log-transformed values, retail variance only, df = retail n - 1",
    "modified_t_log": "California's t on log-transformed values, retail variance only, df = retail n - 1",
    "fisher_exact": "exact parity test for small proportions: the hypergeometric probability of a CLEC count "
    "at least as bad as observed; the statistic is its z-equivalent",
    "binomial_exact": "exact parity test for small rates: the CLEC troubles given the total troubles are "
    "binomial in the CLEC's share of lines; the statistic is its z-equivalent",
    "permutation_exact": "exact parity test for small means: the share of CLEC-sized subsets of the pooled "
    "CLEC and retail values at least as bad as the CLEC's; the statistic is its z-equivalent",
    "permutation_monte_carlo": "the permutation test on random subsets (the results table keeps the number "
    "of resamples and the seed)",
    "stare_and_compare": "benchmark: the CLEC result against the plan's target, no statistics (equal counts as met)",
    "stare_and_compare_with_allowance": "benchmark with the small-sample allowance: a set number of records "
    "may miss the target before the cell misses",
}
COLUMN_MEANINGS = {
    "Statistic": "z for the modified z, t for the modified t, and for the exact tests the z-equivalent "
    "ndtri(1 - p); positive means the CLEC was served worse. — where the z-equivalent is infinite: the "
    "exact test's p-value is 1 (or 0), see the p-value",
    "Critical value": "the value of the statistic beyond which the cell misses, from the plan's table for "
    "the cell's CLEC sample size",
    "p-value": "one-tailed: the probability, under parity, of a CLEC result at least as bad as observed",
    "Alpha": "the tail area the p-value is compared with",
    "Numerator, denominator": "for percentages the records meeting the standard and the records counted; for "
    "means the sum of the values and the records; for rates the troubles and the lines in service",
    "Threshold that would have passed": "the result that would just have met the standard (at the critical "
    "value, or the benchmark), in the measure's unit; the remedy counts occurrences from it",
    "Paid": "the remedy paid for the cell this month, after caps (CLEC cells: to the CLEC; all-CLEC cells: to "
    "the state fund)",
    "Excused by": "the commission's docket or order that excused the cell (root cause): its verdict stands and it "
    "pays nothing",
}
UNIT_WORDS = {"percent": "%", "per_100_lines": "per 100 lines", "business_days": "business days"}
KIND_WORDS = {"exclusion": "excluded by the plan", "rejected": "rejected at input"}


def esc(value: object) -> str:
    """HTML-escaped text; blank for None and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value))


def words(value: object) -> str:
    """A snake_case code as words (`ubl_ds1` stays as is: product and reason codes are the plan's)."""
    return "" if value is None else str(value).replace("_", " ")


def unit_words(unit: object) -> str:
    return UNIT_WORDS.get(str(unit), words(unit)) if unit else ""


def missing(value: object) -> bool:
    """None, NaN, NA or NaT."""
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def number(value: object, digits: int = 2) -> str:
    """A figure for people: thousands separators, fixed decimals; whole counts without decimals; blank for
    missing."""
    if missing(value):
        return ""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and digits == 0):
        return f"{int(value):,}"
    try:
        return f"{float(value):,.{digits}f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return esc(value)


def count(value: object) -> str:
    """A count (records, lines, troubles), or a sum of values when not whole."""
    if missing(value):
        return ""
    f = float(value)  # type: ignore[arg-type]
    return f"{int(f):,}" if f.is_integer() else f"{f:,.2f}"


def critical(value: object) -> str:
    """A critical value or alpha as the plan writes it: 1.645, 1.04, 0.05 (up to three decimals)."""
    if missing(value):
        return ""
    text = f"{float(value):.3f}".rstrip("0")  # type: ignore[arg-type]
    return text + "0" if text.endswith(".") else text


def statistic(value: object) -> str:
    """The test statistic; an infinite z-equivalent (an exact test's p-value of 1 or 0) reads —."""
    if missing(value):
        return ""
    f = float(value)  # type: ignore[arg-type]
    return "—" if math.isinf(f) else f"{f:,.2f}"


def p_value(value: object) -> str:
    if missing(value):
        return ""
    f = float(value)  # type: ignore[arg-type]
    return "&lt; 0.0001" if 0 < f < 0.0001 else f"{f:.4f}"


def money(amount: object, currency: str) -> str:
    """`USD 1,500.00`: to the cent, with its currency (the cell is right-aligned)."""
    if missing(amount):
        return ""
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return f'<span class="cur">{esc(currency)}</span>&nbsp;{value:,.2f}'
