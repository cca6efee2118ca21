"""Remedies: occurrences, escalation, Tier 2 trigger and caps, with the arithmetic by hand."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carrier_sla.engine import remedies, stats
from carrier_sla.plan.remedy_rules import build_remedies

D = Decimal


def row(**kw) -> dict:
    """One result row as the pipeline writes it (only the columns remedies read)."""
    base = {
        "measure_id": "MR-6",
        "submeasure": "all",
        "state": "CO",
        "product": "resale_pots",
        "scope": "clec",
        "carrier_id": "CLEC01",
        "status": "miss",
        "method": "modified_z",
        "standard": "parity",
        "direction": "lower_better",
        "clec_n": 100,
        "clec_numerator": 480.0,
        "clec_value": 4.8,
        "retail_n": 10_000.0,
        "retail_numerator": 40_000.0,
        "retail_value": 4.0,
        "retail_stdev": 3.0,
        "benchmark": np.nan,
        "critical_value": 1.645,
        "alpha": np.nan,
        "allowed_misses": np.nan,
    }
    return base | kw


MR6 = row()  # retail 4.00 h, sd 3.00, n 10,000; CLEC 4.80 h, n 100
OP3 = row(  # retail 95% of 20,000; CLEC 88 of 100
    measure_id="OP-3",
    direction="higher_better",
    clec_n=100,
    clec_numerator=88.0,
    clec_value=88.0,
    retail_n=20_000.0,
    retail_numerator=19_000.0,
    retail_value=95.0,
    retail_stdev=math.sqrt(0.95 * 0.05) * 100,
)
AGG = {"scope": "clec_aggregate", "carrier_id": None}


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_mean_miss_as_for_mr6(bundled_plan):
    """MR-6: z = 0.80 / (3 sqrt(1/100 + 1/10,000)) = 0.80 / 0.301496 = 2.6534; threshold 4.00 + 1.645 x 0.301496 =
    4.4960; occurrences 100 x (4.80 - 4.4960) / 4.4960 = 6.762 -> 7 (rounded up); month 1, high: 7 x $150 = $1,050."""
    z = stats.modified_z(
        "mean",
        np.array([False]),
        np.array([100.0]),
        np.array([4.8]),
        np.array([10_000.0]),
        np.array([4.0]),
        np.array([9.0 * 9_999]),
    )
    assert z.statistic[0] == pytest.approx(2.6534, abs=5e-5)
    result = remedies.period_remedies(bundled_plan, "2026-10", frame(MR6), None, {})
    line = result.ledger[result.ledger["tier"] == "tier1"].iloc[0]
    assert line["threshold"] == pytest.approx(4.4960, abs=5e-5)
    assert line["occurrences_raw"] == pytest.approx(6.762, abs=5e-4)
    assert line["occurrences"] == 7
    assert (line["consecutive_months"], line["category"], line["unit_amount"]) == (1, "high", D("150"))
    assert line["amount"] == D("1050.00") and line["payee"] == "CLEC01"


def test_proportion_miss_as_for_op3(bundled_plan):
    """OP-3: se = sqrt(0.95 x 0.05 x (1/100 + 1/20,000)) = 0.021849; z = 0.07 / 0.021849 = 3.2038;
    threshold 0.95 - 1.645 x 0.021849 = 91.406%; occurrences (0.91406 - 0.88) x 100 = 3.406 -> 4; 4 x $150 = $600."""
    z = stats.modified_z(
        "proportion",
        np.array([True]),
        np.array([100.0]),
        np.array([0.88]),
        np.array([20_000.0]),
        np.array([0.95]),
        np.array([0.0]),
    )
    assert z.statistic[0] == pytest.approx(3.2038, abs=5e-5)
    result = remedies.period_remedies(bundled_plan, "2026-10", frame(OP3), None, {})
    line = result.ledger.iloc[0]
    assert line["threshold"] == pytest.approx(91.406, abs=5e-4)
    assert line["occurrences_raw"] == pytest.approx(3.406, abs=5e-4)
    assert (line["occurrences"], line["amount"]) == (4, D("600.00"))


def test_rate_occurrences_are_excess_troubles_on_the_line_base(bundled_plan):
    """MR-8 on the line base with the Poisson variance: retail 0.01 troubles per line on 100,000 lines, CLEC 30
    troubles on 1,000 lines (0.03): se = sqrt(0.01 x (1/1,000 + 1/100,000)) = 0.0031780; threshold
    0.01 + 1.645 x 0.0031780 = 0.0152279 (1.52279 per 100 lines); occurrences (0.03 - 0.0152279) x 1,000
    = 14.772 -> 15; low, month 1: 15 x $25 = $375."""
    mr8 = row(
        measure_id="MR-8",
        clec_n=1000,
        clec_numerator=30.0,
        clec_value=3.0,
        retail_n=100_000.0,
        retail_numerator=1_000.0,
        retail_value=1.0,
        retail_stdev=np.nan,
    )
    line = remedies.period_remedies(bundled_plan, "2026-10", frame(mr8), None, {}).ledger.iloc[0]
    assert line["threshold"] == pytest.approx(1.52279, abs=5e-5)
    assert line["occurrences_raw"] == pytest.approx(14.772, abs=5e-4)
    assert (line["occurrences"], line["amount"]) == (15, D("375.00"))


def test_benchmark_with_allowance_pays_the_misses_beyond_the_allowance(bundled_plan):
    """PO-5, 95% benchmark with the allowance: 20 FOCs, 17 on time; allowed misses 20 x 5% = 1;
    3 misses - 1 = 2 occurrences; medium, month 1: 2 x $75 = $150."""
    po5 = row(
        measure_id="PO-5",
        direction="higher_better",
        standard="benchmark",
        method="stare_and_compare_with_allowance",
        clec_n=20,
        clec_numerator=17.0,
        clec_value=85.0,
        retail_n=np.nan,
        retail_numerator=np.nan,
        retail_value=np.nan,
        benchmark=95.0,
        critical_value=np.nan,
        allowed_misses=1.0,
    )
    line = remedies.period_remedies(bundled_plan, "2026-10", frame(po5), None, {}).ledger.iloc[0]
    assert (line["occurrences_raw"], line["occurrences"], line["amount"]) == (2.0, 2.0, D("150.00"))
    assert line["threshold"] == pytest.approx(95.0)


def test_small_sample_option_all_records(make_plan):
    """A permutation-test miss pays one occurrence per CLEC record under small_sample = all_records."""
    plan = make_plan(lambda d: d["remedies"]["occurrences"].update(small_sample="all_records"))
    cell = row(
        method="permutation_monte_carlo", clec_n=12, clec_numerator=12 * 4.2, clec_value=4.2, critical_value=1.645
    )
    line = remedies.period_remedies(plan, "2026-10", frame(cell), None, {}).ledger.iloc[0]
    assert line["occurrences"] == 12 and "all_records" in line["note"]


def test_exact_test_miss_inside_the_z_threshold_still_pays_one_occurrence(bundled_plan):
    """A CLEC mean below the z threshold can still miss by a permutation test: 0 raw occurrences, paid as one."""
    cell = row(method="permutation_exact", clec_n=5, clec_numerator=5 * 4.5, clec_value=4.5)
    line = remedies.period_remedies(bundled_plan, "2026-10", frame(cell), None, {}).ledger.iloc[0]
    assert (line["occurrences_raw"], line["occurrences"]) == (0.0, 1.0)
    assert line["amount"] == line["unit_amount"] > D("0.00") and "inside the threshold" in line["note"]


@pytest.mark.parametrize("rounding", ["down", "nearest", "none"])
def test_a_miss_of_a_fraction_of_an_occurrence_pays_one_under_every_rounding(make_plan, rounding):
    """A modified z miss 0.2 occurrences past its threshold pays one occurrence, even where the plan rounds down."""
    plan = make_plan(lambda d: d["remedies"]["occurrences"].update(rounding=rounding))
    # OP-4 style mean: retail 4.0 (sd 2), CLEC 40 records; threshold 4 + 1.645 x 2 x sqrt(1/40 + 1/1000) = 4.5305
    # a CLEC mean of 4.5532 is 0.0227 past it: 0.0227 / 4.5305 x 40 = 0.2 occurrences
    threshold = 4.0 + 1.645 * 2.0 * np.sqrt(1 / 40 + 1 / 1000)
    clec = threshold * (1 + 0.2 / 40)
    cell = row(
        clec_n=40,
        clec_numerator=40 * clec,
        clec_value=clec,
        retail_n=1000.0,
        retail_numerator=4000.0,
        retail_value=4.0,
        retail_stdev=2.0,
    )
    line = remedies.period_remedies(plan, "2026-10", frame(cell), None, {}).ledger.iloc[0]
    assert line["occurrences_raw"] == pytest.approx(0.2)
    assert line["occurrences"] == 1.0 and line["amount"] == line["unit_amount"]


def run_months(plan, statuses_by_month: list[list[dict]]) -> list[remedies.PeriodRemedies]:
    out, state, paid = [], None, {}
    for i, rows in enumerate(statuses_by_month):
        period = f"2026-{i + 1:02d}"
        result = remedies.period_remedies(plan, period, frame(*rows), state, dict(paid))
        state = result.state
        for s, amount in result.paid_by_state().items():
            paid[s] = paid.get(s, D("0")) + amount
        out.append(result)
    return out


def tier_amounts(results: list[remedies.PeriodRemedies], tier: str) -> list[Decimal]:
    return [sum(r.ledger.loc[r.ledger["tier"] == tier, "amount"], D("0.00")) for r in results]


def test_escalation_over_seven_months_with_a_reset(bundled_plan):
    """MR-6 (7 occurrences, high) missed, missed, no activity, missed, met, missed, missed:
    consecutive months 1, 2, 2 (unchanged), 3, 0 (reset), 1, 2 -> $150/$250/-/$500/-/$150/$250 x 7."""
    other = {"status": "no_activity", "method": None}
    months = [[MR6], [MR6], [MR6 | other], [MR6], [MR6 | {"status": "met"}], [MR6], [MR6]]
    results = run_months(bundled_plan, months)
    counts = [int(r.state.loc[r.state["tier"] == "tier1", "consecutive_months"].iloc[0]) for r in results]
    assert counts == [1, 2, 2, 3, 0, 1, 2]
    assert tier_amounts(results, "tier1") == [D(x) for x in ("1050", "1750", "0", "3500", "0", "1050", "1750")]


def test_escalation_table_repeats_its_last_entry(bundled_plan):
    """Eight consecutive misses: months 6, 7 and 8 all pay the last entry ($800 x 7 = $5,600)."""
    results = run_months(bundled_plan, [[MR6]] * 8)
    assert tier_amounts(results, "tier1")[5:] == [D("5600")] * 3


def test_tier2_pays_from_the_third_consecutive_aggregate_miss(bundled_plan):
    """All-CLEC OP-3 misses in months 1-4, met in 5, misses in 6-7: Tier 2 pays in months 3 and 4 only
    (4 occurrences x $500), nothing after the reset; earlier months are not paid back."""
    agg = OP3 | AGG
    months = [[agg]] * 4 + [[agg | {"status": "met"}]] + [[agg]] * 2
    results = run_months(bundled_plan, months)
    assert tier_amounts(results, "tier2") == [D(x) for x in ("0", "0", "2000", "2000", "0", "0", "0")]
    assert set(results[2].ledger["payee"]) == {"state_fund:CO"}
    assert tier_amounts(results, "tier1") == [D("0")] * 7  # an aggregate row never pays Tier 1


def test_monthly_cap_reduces_payments_pro_rata_to_the_cent(make_plan):
    """Cap $1,000 on $1,050 + $600 = $1,650: 1,050 x 1,000/1,650 = 636.3636 -> 636.36, 600 x 1,000/1,650 = 363.6363
    -> 363.63, and the cent left goes to the larger remainder (363.6363 > 636.3636's .36): 363.64; total $1,000.00."""
    plan = make_plan(lambda d: d["remedies"].update(caps={"monthly": {"CO": "1000.00"}}))
    ledger = remedies.period_remedies(plan, "2026-10", frame(MR6, OP3), None, {}).ledger
    assert list(ledger["amount_uncapped"]) == [D("1050.00"), D("600.00")]
    assert list(ledger["amount"]) == [D("636.36"), D("363.64")]
    assert list(ledger["cap"]) == ["monthly", "monthly"]
    assert sum(ledger["amount"]) == D("1000.00")


def test_annual_cap_counts_what_the_year_paid_before(make_plan):
    """Annual cap $12,000 with $11,500 paid earlier in the year: $500 left, below the $1,050 due."""
    plan = make_plan(lambda d: d["remedies"].update(caps={"annual": {"*": 12000}}))
    ledger = remedies.period_remedies(plan, "2026-10", frame(MR6), None, {"CO": D("11500")}).ledger
    assert (ledger["amount"].iloc[0], ledger["cap"].iloc[0]) == (D("500.00"), "annual")
    other_state = remedies.period_remedies(plan, "2026-10", frame(MR6), None, {"UT": D("11500")}).ledger
    assert other_state["amount"].iloc[0] == D("1050.00") and other_state["cap"].iloc[0] is None


@pytest.mark.parametrize("limit", ["0.01", "1.00", "999.99", "1649.99"])
def test_prorate_never_exceeds_the_cap_and_never_goes_negative(limit):
    """Capped amounts add up to the cap exactly, each between 0 and its uncapped amount."""
    amounts = [D("1050.00"), D("600.00"), D("0.03"), D("0.00")]
    capped = remedies.prorate(amounts, D(limit))
    assert sum(capped) == D(limit)
    assert all(D("0") <= c <= a for c, a in zip(capped, amounts, strict=True))


def test_per_measurement_basis_pays_a_flat_amount(bundled_plan):
    """example-ca pays per missed measurement: $600 for a high measure in month 1, x5 from the third month."""
    from carrier_sla.plan.load import load_plan

    ca = load_plan("example-ca")
    results = run_months(ca, [[MR6]] * 3)
    assert tier_amounts(results, "tier1") == [D("600"), D("600"), D("3000")]
    assert results[0].ledger["occurrences"].iloc[0] == 1


def test_statements_add_up_to_the_ledger(bundled_plan):
    """Each payee's statement lists its lines and a total equal to the ledger's sum for that payee."""
    second = MR6 | {"carrier_id": "CLEC02", "state": "UT"}
    result = remedies.period_remedies(bundled_plan, "2026-10", frame(MR6, OP3, second), None, {})
    sheets = remedies.statements(result.ledger)
    assert set(sheets) == {"CLEC01", "CLEC02"}
    for payee, sheet in sheets.items():
        body, total = sheet[sheet["line"] != "total"], sheet[sheet["line"] == "total"].iloc[0]
        assert total["amount"] == sum(body["amount"]) == result.totals_by_payee()[payee]
    assert result.totals_by_payee() == {"CLEC01": D("1650.00"), "CLEC02": D("1050.00")}


def test_plan_references_in_remedies_are_checked(make_plan):
    """Unknown measures, tiers, categories, states and fractions of a cent are plan errors with their pointers."""
    from carrier_sla.errors import PlanError

    def broken(d):
        r = d["remedies"]
        r["measures"]["XX-1"] = {"category": "high", "basis": "occurrence", "tiers": ["tier1"]}
        r["measures"]["OP-3"] = {"category": "urgent", "basis": "occurrence", "tiers": ["tier9"]}
        r["tiers"]["tier1"]["amounts"]["high"][0] = 150.005
        r["caps"] = {"monthly": {"ZZ": 5}}

    with pytest.raises(PlanError) as info:
        make_plan(broken)
    text = str(info.value)
    for pointer in (
        "/remedies/measures/XX-1",
        "/remedies/measures/OP-3/tiers/0",
        "/remedies/tiers/tier1/amounts/high/0",
        "/remedies/caps/monthly/ZZ",
    ):
        assert pointer in text


def test_remedies_section_round_trips(bundled_plan):
    """The remedies spec built from the dumped plan equals the loaded one."""
    from carrier_sla.plan.load import dump_plan, plan_from_document

    again = plan_from_document(dump_plan(bundled_plan))
    assert again.remedies == bundled_plan.remedies == build_remedies(bundled_plan.document["remedies"])


@settings(max_examples=200, deadline=None)
@given(
    cents=st.lists(st.integers(min_value=0, max_value=10_000_000), min_size=1, max_size=30),
    cap=st.integers(min_value=0, max_value=50_000_000),
)
def test_capped_payments_are_never_negative_nor_above_the_cap_or_the_amount_due(cents, cap):
    """For any amounts and cap: each payment is between 0 and its amount due; the total is the cap
    when the amounts exceed it, else the amounts are untouched."""
    plan_caps = build_remedies(
        {
            "tiers": {"t": {"scope": "clec", "amounts": {"high": [1]}}},
            "measures": {},
            "caps": {"monthly": {"*": str(D(cap) / 100)}},
        }
    )
    due = [D(c) / 100 for c in cents]
    ledger = pd.DataFrame({"state": "CO", "amount_uncapped": due, "amount": due})
    paid = list(remedies.apply_caps(plan_caps, ledger, {})["amount"])
    assert all(D(0) <= p <= d for p, d in zip(paid, due, strict=True))
    assert sum(paid) == min(sum(due), D(cap) / 100)
