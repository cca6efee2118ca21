"""Remedies across months in the store: escalation must come out as if every month ran in order.

A period's remedies need the escalation state after the month before and what the earlier
months of its calendar year paid (annual caps). So:
- a period whose store holds earlier periods needs the month right before it, with its
  escalation state; otherwise the run refuses, naming the period to run first;
- the periods after it in the store (a restatement, or a month run late) must follow it
  without a gap; their remedies are recomputed from their published results, in order, and
  published with this run, so their month counts and caps reflect the restated month. Each
  later month is priced under the plan version it was judged under (the plan of the run that
  published its results: carrier_sla.store.view.recorded_plan), never the restating run's.
The store's first period starts every count at zero. Excused cells (carrier_sla.inputs.excusals) pay
nothing and leave their escalation count as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd

from carrier_sla.engine import remedies
from carrier_sla.errors import UsageError
from carrier_sla.inputs import excusals
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.load import Plan
from carrier_sla.store import layout as store
from carrier_sla.store.view import read_table, recorded_plan


@dataclass(frozen=True)
class Chain:
    previous: str | None  # the month before, when the store holds earlier periods
    later: tuple[str, ...]  # published periods after this one, contiguous


def shift(period: str, months: int) -> str:
    return calmod.period_text(calmod.period_index(period) + months)


def check_chain(out: Path, period: str) -> Chain:
    """Where `period` sits in the store's sequence of months; UsageError when it cannot be placed."""
    published = [p for p in store.published_periods(out, "results") if p != period]
    earlier = [p for p in published if p < period]
    previous = shift(period, -1)
    if earlier and max(earlier) != previous:
        raise UsageError(
            f"remedies escalate month by month and the store has {max(earlier)} but not {previous}: "
            f"run period {previous} first"
        )
    if earlier and previous not in store.published_periods(out, "escalation"):
        raise UsageError(
            f"period {previous} in the store has no escalation state (run without remedies, or by an older "
            f"version): run period {previous} again first"
        )
    later = sorted(p for p in published if p > period)
    for i, month in enumerate(later):
        expected = shift(period, i + 1)
        if month != expected:
            raise UsageError(
                f"the store has {month} but not {expected}: remedies of {month} would escalate from a wrong "
                f"month count; run period {expected} first"
            )
    return Chain(previous if earlier else None, tuple(later))


def paid_this_year(out: Path, before: str, computed: list[remedies.PeriodRemedies]) -> dict[str, Decimal]:
    """What the months of `before`'s calendar year before it paid per state: from the store, except
    the months recomputed by this run (`computed`), which count as recomputed."""
    fresh = {r.period: r for r in computed}
    paid: dict[str, Decimal] = {}
    months = set(store.published_periods(out, "remedies")) | set(fresh)
    for month in sorted(m for m in months if m[:4] == before[:4] and m < before):
        if month in fresh:
            by_state = fresh[month].paid_by_state()
        else:
            ledger = read_table(out, "remedies", month).to_pandas()
            by_state = {}
            for state, amount in zip(ledger["state"], ledger["amount"], strict=True):
                by_state[state] = by_state.get(state, Decimal("0.00")) + amount
        for state, amount in by_state.items():
            paid[state] = paid.get(state, Decimal("0.00")) + amount
    return paid


def month_plans(plan: Plan, out: Path, period: str, chain: Chain) -> dict[str, Plan]:
    """The plan each month of the chain is priced under: `plan` for `period`, and for each later month
    the version it was judged under, as the store recorded it. The chain stops before a later month
    whose plan has no remedies (it pays nothing and keeps no escalation state for the months after)."""
    plans = {period: plan}
    for month in chain.later:
        recorded = recorded_plan(out, month, known=plan)
        if recorded.remedies is None:
            break
        plans[month] = recorded
    return plans


def compute_chain(
    plan: Plan,
    out: Path,
    period: str,
    results: pd.DataFrame,
    chain: Chain,
    plans: dict[str, Plan] | None = None,
) -> list[remedies.PeriodRemedies]:
    """Remedies of `period`, then of every later published period in order, each under its plan in
    `plans` (month_plans; default: `plan` for `period` alone)."""
    plans = plans if plans is not None else {period: plan}
    state = read_table(out, "escalation", chain.previous).to_pandas() if chain.previous else None
    done: list[remedies.PeriodRemedies] = []
    for month in (period, *chain.later):
        if month not in plans:
            break
        frame = results if month == period else read_table(out, "results", month).to_pandas()
        frame = frame.assign(period=frame["period"].astype(str)) if "period" in frame else frame
        frame = excusals.for_remedies(frame)
        result = remedies.period_remedies(plans[month], month, frame, state, paid_this_year(out, month, done))
        done.append(result)
        state = result.state
    return done
