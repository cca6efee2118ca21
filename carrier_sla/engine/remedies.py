"""Remedies: occurrences, escalation, caps and the ledger of one period (domain.md, "Remedies").

From a period's result rows and the escalation state after the month before:

- Occurrences of a missed cell, from the critical threshold its verdict used (the result that
  would just have passed), in the cell's own units:
      proportions, rates:  threshold p* = p_retail +- z* sqrt(v (1/n_clec + 1/n_retail)),  v = p(1 - p),
                           for rates v = the retail rate per line (Poisson) unless the plan says binomial
                           occurrences = (p_clec - p*) x n_clec     (oriented: worse side positive)
      means:               threshold m* = m_retail +- z* s_retail sqrt(1/n_clec + 1/n_retail)
                           occurrences = min(1, gap / m*) x n_clec, gap = |m_clec - m*| on the worse side
      benchmarks:          the same with the benchmark as threshold; with the small-sample allowance,
                           the misses beyond the allowed number
  z* is the verdict's critical value, or the inverse normal of 1 - alpha for plans judged by alpha.
  Rates count as proportions on the line base (n_clec = lines, p = troubles per line). Parity cells
  judged by an exact test or the modified t follow the plan's `small_sample` option: `threshold`
  (the formula above at z*) or `all_records` (every CLEC record of the cell). A miss whose result
  is inside the threshold (possible when an exact test decides) has 0 raw occurrences and says so;
  a miss always pays at least one occurrence.
  Raw occurrences are kept; paid occurrences follow the plan's rounding (after rounding the raw
  value to 9 decimals, so 3.0000000000004 is 3, not 4).
- Escalation: per (tier, measure, submeasure, state, product, CLEC) the count of consecutive
  missed months: a miss adds one, met resets to 0, a month without a verdict (no activity,
  undetermined, no retail analog) leaves it unchanged. A tier pays from its `from_month` on.
- Amounts: unit amount (by category and consecutive month) x occurrences, or the unit amount
  once for a per-measurement basis; integer cents throughout (Decimal), never binary floats.
- Caps per state: monthly, and annual per calendar year less what earlier months of the year
  paid. Above the cap every payment of the state is reduced pro rata; cents are apportioned by
  largest remainder (ties in ledger order) so the capped amounts add up to the cap exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import ndtri

from carrier_sla import vocabulary
from carrier_sla.errors import PlanError, PlanProblem
from carrier_sla.plan.load import Plan
from carrier_sla.plan.remedy_rules import CENT, LEDGER_MAX, Remedies, Tier

MONEY = vocabulary.MONEY
STATE_FUND = "state_fund:"
KEY = list(vocabulary.ESCALATION_KEY)  # escalation: a cell of a tier (the tier fixes the scope)
NO_VERDICT = vocabulary.NO_VERDICT

# the ledger's files (vocabulary.REMEDIES: the period is the partition folder) ...
LEDGER_SCHEMA = vocabulary.REMEDIES.schema()
# ... and its frames in memory, which carry their period
LEDGER_COLUMNS = ["period", *LEDGER_SCHEMA.names]
STATE_SCHEMA = vocabulary.ESCALATION.schema()


@dataclass(frozen=True)
class PeriodRemedies:
    period: str
    ledger: pd.DataFrame  # LEDGER_SCHEMA columns; money as Decimal
    state: pd.DataFrame  # STATE_SCHEMA columns: the escalation counts after this period

    def totals_by_payee(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for payee, amount in zip(self.ledger["payee"], self.ledger["amount"], strict=True):
            totals[payee] = totals.get(payee, Decimal("0.00")) + amount
        return dict(sorted(totals.items()))

    def paid_by_state(self) -> dict[str, Decimal]:
        paid: dict[str, Decimal] = {}
        for state, amount in zip(self.ledger["state"], self.ledger["amount"], strict=True):
            paid[state] = paid.get(state, Decimal("0.00")) + amount
        return paid


# --------------------------------------------------------------------------- occurrences


def occurrences(plan: Plan, rem: Remedies, rows: pd.DataFrame) -> pd.DataFrame:
    """Threshold, critical value used, raw occurrences and a note for missed result rows (vectorized)."""
    n = len(rows)
    out = pd.DataFrame(index=rows.index)
    out["threshold"] = np.nan
    out["critical_value_used"] = np.nan
    out["occurrences_raw"] = 0.0
    out["note"] = None
    if n == 0:
        return out
    types = rows["measure_id"].map({m.id: m.type for m in plan.measures}).to_numpy(dtype=object)
    scale = rows["measure_id"].map({m.id: m.scale for m in plan.measures}).to_numpy(dtype=float)
    worse_high = (rows["direction"] == "lower_better").to_numpy()
    nc = rows["clec_n"].to_numpy(dtype=float)
    nr = rows["retail_n"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cm = rows["clec_numerator"].to_numpy(dtype=float) / nc
        rm = rows["retail_numerator"].to_numpy(dtype=float) / nr
    mean = types == "mean"
    method = rows["method"].fillna("").to_numpy(dtype=object)
    bench = rows["standard"].to_numpy(dtype=object) == "benchmark"
    allowance = method == "stare_and_compare_with_allowance"

    # z*: the critical value of the verdict, else the normal quantile of its alpha
    cv = rows["critical_value"].to_numpy(dtype=float)
    alpha = rows["alpha"].to_numpy(dtype=float)
    z = np.where(np.isfinite(cv), cv, ndtri(1 - np.where(np.isfinite(alpha), alpha, 0.5)))
    poisson = (types == "rate") & (plan.statistics.rate_variance == "poisson")
    variance = np.where(poisson, rm, rm * (1 - rm))  # rates: the retail rate per line (Poisson), else p(1 - p)
    sd = np.where(mean, rows["retail_stdev"].to_numpy(dtype=float), np.sqrt(np.clip(variance, 0, None)))
    sd = np.nan_to_num(sd, nan=0.0)  # retail n of 1: no variance, the threshold is the retail result
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sd * np.sqrt(1 / nc + 1 / nr)
    sign = np.where(worse_high, 1.0, -1.0)
    threshold = np.where(bench, rows["benchmark"].to_numpy(dtype=float) / scale, rm + sign * z * se)
    gap = np.clip(sign * (cm - threshold), 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(threshold > 0, np.minimum(1.0, gap / threshold), np.where(gap > 0, 1.0, 0.0))
    raw = np.where(mean, relative * nc, gap * nc)

    hits = rows["clec_numerator"].to_numpy(dtype=float)
    failures = np.where(worse_high, hits, nc - hits)
    allowed = rows["allowed_misses"].to_numpy(dtype=float)
    raw = np.where(allowance, np.clip(failures - np.nan_to_num(allowed), 0, None), raw)
    threshold = np.where(allowance, np.where(worse_high, allowed, nc - allowed) / nc, threshold)

    exact = ~bench & (method != "modified_z")
    note = np.full(n, None, dtype=object)
    if rem.small_sample == "all_records":
        raw = np.where(exact, nc, raw)
        note[exact] = "all_records: one occurrence per CLEC record of a cell judged by an exact test"
    inside = (raw == 0) & ~(exact & (rem.small_sample == "all_records"))
    note[inside] = (
        "the result is inside the threshold (the verdict came from an exact test): 0 occurrences by the formula, "
        "paid as one, the least a miss pays"
    )
    out["threshold"] = threshold * np.where(mean, 1.0, scale)  # in the units of clec_value
    out["critical_value_used"] = np.where(bench, np.nan, z)
    out["occurrences_raw"] = raw
    out["note"] = note
    return out


def round_occurrences(raw: np.ndarray, rounding: str) -> np.ndarray:
    """Paid occurrences under the plan's rounding (raw first rounded to 9 decimals)."""
    clean = np.round(np.asarray(raw, dtype=float), 9)
    if rounding == "up":
        return np.ceil(clean)
    if rounding == "down":
        return np.floor(clean)
    if rounding == "nearest":
        return np.floor(clean + 0.5)
    return clean


# --------------------------------------------------------------------------- escalation


def _key_frame(frame: pd.DataFrame) -> pd.Series:
    """One text key per row from the KEY columns (vectorized concatenation)."""
    key = frame[KEY[0]].astype(str)
    for column in KEY[1:]:
        key = key + "\x1f" + frame[column].astype(str)
    return key.astype(object)  # Python strings: hashed lookups (isin, reindex, dict) without Arrow iteration


def escalate(rem: Remedies, period: str, results: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """The escalation state after `period`: one row per key ever seen (STATE_SCHEMA columns)."""
    frames = []
    for tier in rem.tiers:
        measures = [mid for mid, rule in rem.measures if tier.name in rule.tiers]
        chosen = (results["scope"] == tier.scope) & results["measure_id"].astype(object).isin(measures)
        rows = results.loc[chosen, [*KEY[1:], "status"]]  # the columns it needs, not the results' 40
        frames.append(
            pd.DataFrame(
                {
                    "tier": tier.name,
                    "measure_id": rows["measure_id"].astype(str),
                    "submeasure": rows["submeasure"].astype(str),
                    "state": rows["state"].astype(str),
                    "product": rows["product"].astype(str),
                    "carrier_id": rows["carrier_id"].astype(str),
                    "status": rows["status"].astype(str),
                }
            )
        )
    now = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*KEY, "status"])
    before = previous if previous is not None else pd.DataFrame(columns=[n for n in STATE_SCHEMA.names])
    # object indexes (Python strings): a hashed isin and reindex (an empty index of str dtype would
    # take the other's 46,000 keys one by one through Arrow)
    before = before.set_index(_key_frame(before)) if len(before) else before.set_index(pd.Index([], dtype=object))
    now.index = _key_frame(now) if len(now) else pd.Index([], dtype=str)
    if now.index.has_duplicates:
        raise ValueError(f"results of {period} repeat a cell key: {now.index[now.index.duplicated()][0]!r}")
    prior = before["consecutive_months"].reindex(now.index).fillna(0).astype(np.int64).to_numpy()
    last = before["last_verdict_period"].reindex(now.index).to_numpy(dtype=object)
    status = now["status"].to_numpy(dtype=object)
    miss, met = status == "miss", status == "met"
    counts = np.where(miss, prior + 1, np.where(met, 0, prior))
    now = now.assign(
        consecutive_months=counts,
        last_verdict_period=np.where(miss | met, period, last),
        as_of_period=period,
    ).drop(columns=["status"])
    carried = before.loc[~before.index.isin(now.index)].assign(as_of_period=period)
    state = pd.concat([now, carried[now.columns]] if len(carried) else [now], ignore_index=True)
    return state.sort_values(KEY, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- the period's ledger


def period_remedies(
    plan: Plan,
    period: str,
    results: pd.DataFrame,
    previous_state: pd.DataFrame | None,
    paid_earlier_this_year: dict[str, Decimal],
) -> PeriodRemedies:
    """Ledger and escalation state of one period (see the module docstring)."""
    rem = plan.remedies
    if rem is None:
        raise ValueError(f"plan {plan.id} {plan.version} has no remedies section")
    state = escalate(rem, period, results, previous_state)
    months = dict(zip(_key_frame(state), state["consecutive_months"], strict=True)) if len(state) else {}
    lines = []
    for tier in rem.tiers:
        lines.append(_tier_lines(plan, rem, tier, period, results, months))
    ledger = pd.concat(lines, ignore_index=True) if lines else pd.DataFrame(columns=LEDGER_COLUMNS)
    ledger = apply_caps(rem, ledger, paid_earlier_this_year)
    return PeriodRemedies(period, ledger[LEDGER_COLUMNS], state)


def _tier_lines(
    plan: Plan, rem: Remedies, tier: Tier, period: str, results: pd.DataFrame, months: dict[str, int]
) -> pd.DataFrame:
    rules = {mid: rule for mid, rule in rem.measures if tier.name in rule.tiers}
    rows = results[
        (results["scope"] == tier.scope) & results["measure_id"].isin(list(rules)) & (results["status"] == "miss")
    ]
    rows = rows.assign(tier=tier.name)
    count = _key_frame(rows).map(months).to_numpy(dtype=np.int64) if len(rows) else np.zeros(0, np.int64)
    rows = rows.assign(consecutive_months=count)
    rows = rows[rows["consecutive_months"] >= tier.from_month]
    if rows.empty:
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    occ = occurrences(plan, rem, rows)
    category = rows["measure_id"].map({mid: r.category for mid, r in rules.items()})
    basis = rows["measure_id"].map({mid: r.basis for mid, r in rules.items()})
    per_measurement = (basis == "measurement").to_numpy()
    raw = np.where(per_measurement, 1.0, occ["occurrences_raw"].to_numpy(dtype=float))
    # a miss always pays: at least one occurrence, whatever the formula and the rounding give
    paid = np.where(per_measurement, 1.0, np.maximum(round_occurrences(raw, rem.rounding), 1.0))
    units = [tier.unit_amount(c, int(m)) for c, m in zip(category, rows["consecutive_months"], strict=True)]
    uncapped = [(u * Decimal(repr(float(q)))).quantize(CENT, ROUND_HALF_UP) for u, q in zip(units, paid, strict=True)]
    _check_ledger_holds(plan, tier, rows, category, uncapped, paid)
    payee = (
        rows["carrier_id"].to_numpy(dtype=object)
        if tier.scope == "clec"
        else (STATE_FUND + rows["state"].astype(str)).to_numpy(dtype=object)
    )
    return pd.DataFrame(
        {
            "period": period,
            "tier": tier.name,
            "payee": payee,
            "measure_id": rows["measure_id"].to_numpy(),
            "submeasure": rows["submeasure"].to_numpy(),
            "state": rows["state"].to_numpy(),
            "product": rows["product"].to_numpy(),
            "category": category.to_numpy(),
            "basis": basis.to_numpy(),
            "consecutive_months": rows["consecutive_months"].to_numpy(),
            "occurrences_raw": raw,
            "occurrences": paid,
            "unit_amount": units,
            "amount_uncapped": uncapped,
            "amount": uncapped,
            "cap": None,
            "currency": rem.currency,
            "provisional": rows["provisional"].fillna(False).astype(bool).to_numpy()
            if "provisional" in rows
            else False,
            "scope": rows["scope"].to_numpy(),
            "carrier_id": rows["carrier_id"].to_numpy(),
            "method": rows["method"].to_numpy(),
            "clec_n": rows["clec_n"].to_numpy(dtype=np.int64),
            "clec_value": rows["clec_value"].to_numpy(dtype=float),
            "retail_value": rows["retail_value"].to_numpy(dtype=float),
            "benchmark": rows["benchmark"].to_numpy(dtype=float),
            "critical_value_used": np.where(per_measurement, np.nan, occ["critical_value_used"].to_numpy()),
            "threshold": np.where(per_measurement, np.nan, occ["threshold"].to_numpy()),
            "note": occ["note"].mask(per_measurement, None).to_numpy(dtype=object),
        }
    )


def _check_ledger_holds(
    plan: Plan, tier: Tier, rows: pd.DataFrame, category: pd.Series, uncapped: list[Decimal], paid: np.ndarray
) -> None:
    """PlanError naming the plan's amount when a line's amount (unit amount x occurrences) is beyond
    what the ledger's decimal(14,2) columns hold: the plan validates each amount, not its products."""
    over = [i for i, amount in enumerate(uncapped) if amount > LEDGER_MAX]
    if not over:
        return
    i = over[0]
    row = rows.iloc[i]
    months = int(row["consecutive_months"])
    entry, unit = tier.amount_entry(category.iloc[i], months), tier.unit_amount(category.iloc[i], months)
    cell = f"{row['measure_id']} {row['state']} {row['product']} {row['submeasure']} {row['carrier_id'] or tier.scope}"
    raise PlanError(
        plan.source or plan.id,
        [
            PlanProblem(
                f"/remedies/tiers/{tier.name}/amounts/{category.iloc[i]}/{entry}",
                f"{unit:,} x {paid[i]:g} occurrences for {cell} comes to {uncapped[i]:,}, beyond what the ledger "
                f"holds (decimal(14,2): at most {LEDGER_MAX:,})"
                + (f"; {len(over)} lines of tier {tier.name} are beyond it" if len(over) > 1 else ""),
            )
        ],
    )


def apply_caps(rem: Remedies, ledger: pd.DataFrame, paid_earlier_this_year: dict[str, Decimal]) -> pd.DataFrame:
    """Reduce each state's payments pro rata to its monthly cap and what is left of its annual cap."""
    ledger = ledger.reset_index(drop=True).copy()
    if ledger.empty:
        return ledger
    amounts = list(ledger["amount_uncapped"])
    caps: list[str | None] = [None] * len(ledger)
    for state, index in ledger.groupby("state", sort=True).groups.items():
        rows = list(index)
        total = sum((amounts[i] for i in rows), Decimal("0.00"))
        limits = []
        if (monthly := rem.monthly_cap(str(state))) is not None:
            limits.append((monthly, "monthly"))
        if (annual := rem.annual_cap(str(state))) is not None:
            left = max(Decimal("0.00"), annual - paid_earlier_this_year.get(str(state), Decimal("0.00")))
            limits.append((left, "annual"))
        if not limits:
            continue
        limit, kind = min(limits, key=lambda item: item[0])
        if total <= limit:
            continue
        for i, cents in zip(rows, prorate([amounts[i] for i in rows], limit), strict=True):
            amounts[i] = cents
            caps[i] = kind
    ledger["amount"] = amounts
    ledger["cap"] = caps
    return ledger


def prorate(amounts: list[Decimal], limit: Decimal) -> list[Decimal]:
    """Scale amounts to add up to `limit` exactly: floor to the cent, then the cents left go one
    each to the largest remainders (earlier rows first among equals)."""
    cents = [int(a * 100) for a in amounts]
    total, target = sum(cents), int(limit * 100)
    shares = [c * target // total for c in cents]
    remainders = [c * target % total for c in cents]
    left = target - sum(shares)
    for i in sorted(range(len(cents)), key=lambda i: (-remainders[i], i))[:left]:
        shares[i] += 1
    return [Decimal(s) / 100 for s in shares]


# --------------------------------------------------------------------------- tables


def ledger_table(ledger: pd.DataFrame) -> pa.Table:
    """The ledger as stored (vocabulary.REMEDIES): its period is the partition folder."""
    return pa.Table.from_pandas(ledger[LEDGER_SCHEMA.names], schema=LEDGER_SCHEMA, preserve_index=False)


def state_table(state: pd.DataFrame) -> pa.Table:
    """The escalation state as stored (vocabulary.ESCALATION)."""
    return pa.Table.from_pandas(state[STATE_SCHEMA.names], schema=STATE_SCHEMA, preserve_index=False)


STATEMENT_COLUMNS = vocabulary.STATEMENTS.names[: vocabulary.STATEMENTS.names.index("currency") + 1]


def statements(ledger: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One statement per payee: its ledger lines, numbered, then a `total` line. Payees in order;
    a payee's lines in STATEMENT_ORDER, ties in ledger order (one stable sort of the whole ledger:
    a month of hundreds of payees costs no more than one of a few)."""
    if ledger.empty:
        return {}
    lines = ledger.sort_values(["payee", *vocabulary.STATEMENT_ORDER], kind="stable")
    payees = lines["payee"].to_numpy()
    starts = np.flatnonzero(np.r_[True, payees[1:] != payees[:-1]])
    ends = np.r_[starts[1:], len(lines)]
    line = np.arange(1, len(lines) + 1) - np.repeat(starts, ends - starts)
    body = lines.assign(line=line.astype(str), occurrences=lines["occurrences"].map(_number))[STATEMENT_COLUMNS]
    body = body.reset_index(drop=True)
    occurrences, uncapped, amounts = (
        lines["occurrences"].to_numpy(),
        lines["amount_uncapped"].to_numpy(),
        lines["amount"].to_numpy(),
    )
    periods, currencies = lines["period"].to_numpy(), lines["currency"].to_numpy()
    totals = pd.DataFrame(
        [
            {c: "" for c in STATEMENT_COLUMNS}
            | {
                "line": "total",
                "period": periods[a],
                "payee": payees[a],
                "occurrences": _number(occurrences[a:b].sum()),
                "amount_uncapped": sum(uncapped[a:b], Decimal("0.00")),
                "amount": sum(amounts[a:b], Decimal("0.00")),
                "currency": currencies[a],
            }
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
    )
    # every payee's lines, then its total (row len(body) + j of the concatenation)
    order = np.insert(np.arange(len(body)), ends, len(body) + np.arange(len(starts)))
    sheets = pd.concat([body, totals], ignore_index=True).iloc[order]
    return {
        str(payees[a]): sheets.iloc[a + j : b + j + 1].reset_index(drop=True)
        for j, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True))
    }


def _number(x: float) -> str:
    """3.0 as '3', 2.75 as '2.75' (occurrences are whole unless the plan pays fractions)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def statement_filename(payee: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in payee)
    return f"statement-{safe}.csv"
