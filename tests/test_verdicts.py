"""Verdict rules that do not depend on the statistical method: the benchmark allowance, routing."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carrier_sla import exact
from carrier_sla.verdicts import allowed_misses


@pytest.mark.parametrize(
    ("n", "target", "expected"),
    [
        (15, 90, 2),  # 15 x 0.10 = 1.5 exactly in decimal: rounds half up to 2 (binary floats give 1.4999...)
        (10, 95, 1),  # 0.5 -> 1
        (5, 95, 1),  # 0.25 rounds to 0: low volume would demand 100%, so one miss is allowed
        (100, 95, 5),
        (29, 95, 1),  # 1.45 -> 1
        (30, 95, 2),  # 1.5 -> 2
    ],
)
def test_allowed_misses_round_half_up_in_decimal_with_at_least_one(n, target, expected):
    """The allowance is n x (1 - target) rounded half up in exact decimal, and never below one."""
    assert allowed_misses(n, target, "higher_better") == expected


def _foc_orders(on_time: int, late: int) -> list[dict]:
    rows = [{"received_at": "2026-10-05 09:00:00", "foc_at": "2026-10-05 10:00:00"}] * on_time
    rows += [{"received_at": "2026-10-05 09:00:00", "foc_at": "2026-10-09 10:00:00"}] * late  # 4 days: late
    return rows


def test_the_bundled_plan_allows_one_late_foc_in_twenty_at_95_percent(run_checker, bundled_plan):
    """PO-5 at 95%: 19 of 20 on time meets with the allowance (1 miss allowed), 18 of 20 misses."""
    met = run_checker(orders=_foc_orders(19, 1), use_plan=bundled_plan).cell("PO-5", submeasure="channel=electronic")
    assert (met["status"], met["allowed_misses"], met["method"]) == ("met", 1, "stare_and_compare_with_allowance")
    missed = run_checker(orders=_foc_orders(18, 2), use_plan=bundled_plan).cell("PO-5", submeasure="channel=electronic")
    assert (missed["status"], missed["allowed_misses"]) == ("miss", 1)


def test_a_small_proportion_cell_goes_to_fisher_and_a_large_one_to_modified_z(run_checker, bundled_plan):
    """With example-qc, OP-3 cells of 30 or fewer CLEC orders use Fisher's exact test, larger ones the modified z."""
    retail = [{"carrier_id": "ILEC", "product": "pots", "completed_at": "2026-10-08 12:00:00"}] * 40
    small = [{"completed_at": "2026-10-09 12:00:00"}] * 3  # late: 0 of 3 met
    run = run_checker(orders=retail + small, use_plan=bundled_plan)
    cell = run.cell("OP-3", product="resale_pots")
    # Fisher, one-tailed: 0 of 3 CLEC hits vs 40 of 40 retail; P(X <= 0) for X ~ hypergeom(N=43, K=40, n=3)
    # = C(3,3) / C(43,3) = 1 / 12341
    assert cell["method"] == "fisher_exact"
    assert cell["p_value"] == pytest.approx(1 / 12341)
    assert cell["status"] == "miss" and cell["critical_value"] == 1.04  # n = 3: 1-10 row of the table


@given(st.integers(1, 40), st.integers(0, 40), st.integers(1, 400), st.integers(0, 400), st.booleans())
def test_one_more_failed_clec_record_never_lowers_the_evidence_of_a_miss(n, hits, retail_n, retail_hits, higher_better):
    """Fisher: moving one CLEC record from good to bad never raises the p-value, so a miss never turns into met."""
    hits, retail_hits = min(hits, n), min(retail_hits, retail_n)
    # for a higher-is-better proportion a hit is good; for lower-is-better a hit (e.g. a repeat) is bad
    if (higher_better and hits == 0) or (not higher_better and hits == n):
        return
    worse_hits = hits - 1 if higher_better else hits + 1
    before = exact.fisher_exact(hits, n, retail_hits, retail_n, worse_is_higher=not higher_better)
    after = exact.fisher_exact(worse_hits, n, retail_hits, retail_n, worse_is_higher=not higher_better)
    assert after.p_value <= before.p_value + 1e-12


@given(st.integers(0, 30), st.integers(1, 500), st.integers(0, 300), st.integers(1, 5000))
def test_one_more_clec_trouble_never_lowers_the_evidence_of_a_miss(count, base, retail_count, retail_base):
    """Binomial rate test: one more CLEC trouble on the same lines never raises the p-value."""
    before = exact.binomial_rate(count, base, retail_count, retail_base)
    after = exact.binomial_rate(count + 1, base, retail_count, retail_base)
    assert after.p_value <= before.p_value + 1e-12
