"""Verdict rules that do not depend on the statistical method: the benchmark allowance, routing."""

import json
import math
from math import comb

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carrier_sla.engine import exact
from carrier_sla.engine.verdicts import allowed_misses
from carrier_sla.plan.load import PLANS_DIR


@pytest.mark.parametrize(
    ("n", "target", "expected"),
    [
        (10, 95, 1),  # 0.5 floors to 0: one miss is still allowed (the small-sample adjustment)
        (5, 95, 1),  # 0.25 -> 0 -> at least one
        (30, 95, 1),  # 1.5 floors to 1: 29 of 30 meets, 28 of 30 (93.3%) misses
        (29, 95, 1),  # 1.45 -> 1
        (39, 95, 1),  # 1.95 -> 1, never rounded up
        (40, 95, 2),
        (200, 95, 10),
        (15, 90, 1),  # 15 x 0.10 = 1.5 exactly in decimal: floors to 1 (binary floats give 1.4999...)
        (20, 90, 2),  # 20 x 0.10 = 2 exactly in decimal (binary floats: 2.0000000000000004 or 1.9999...)
        (100, 95, 5),
    ],
)
def test_allowed_misses_are_the_floor_of_n_times_one_minus_target_and_at_least_one(n, target, expected):
    """The allowance is max(1, floor(n x (1 - target))) in exact decimal: it never loosens the benchmark."""
    assert allowed_misses(n, target, "higher_better") == expected


def test_a_lower_is_better_benchmark_allows_the_floor_of_its_target_share():
    """For a benchmark on a share of failures (lower is better), allowed = max(1, floor(n x target))."""
    assert allowed_misses(30, 5, "lower_better") == 1
    assert allowed_misses(60, 5, "lower_better") == 3


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


def test_28_of_30_misses_a_95_percent_benchmark_and_27_of_30_pays_two_occurrences(run_checker, bundled_plan):
    """PO-5 at 95% with 30 FOCs allows floor(1.5) = 1 late: 29 meets; 28 (93.3%) misses; 27 pays 3 - 1 = 2."""
    met = run_checker(orders=_foc_orders(29, 1), use_plan=bundled_plan).cell("PO-5", submeasure="channel=electronic")
    assert (met["status"], met["allowed_misses"]) == ("met", 1)
    missed = run_checker(orders=_foc_orders(28, 2), use_plan=bundled_plan).cell("PO-5", submeasure="channel=electronic")
    assert (missed["status"], missed["allowed_misses"]) == ("miss", 1)
    run = run_checker(orders=_foc_orders(27, 3), use_plan=bundled_plan)
    ledger = run.remedies()
    line = ledger[(ledger["measure_id"] == "PO-5") & (ledger["tier"] == "tier1")]
    assert list(line["occurrences"]) == [2.0]  # 3 late - 1 allowed


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


def _op3_orders(retail_on_time: int, retail_late: int, clec_on_time: int, clec_late: int) -> list[dict]:
    retail = {"carrier_id": "ILEC", "product": "pots"}
    rows = [retail | {"completed_at": "2026-10-08 12:00:00"}] * retail_on_time
    rows += [retail | {"completed_at": "2026-10-09 12:00:00"}] * retail_late  # due 10-08: late
    rows += [{"completed_at": "2026-10-08 12:00:00"}] * clec_on_time
    rows += [{"completed_at": "2026-10-09 12:00:00"}] * clec_late
    return rows


def test_perfect_retail_service_does_not_hide_a_clec_miss(run_checker, bundled_plan, make_plan):
    """OP-3, retail 2000 of 2000 on time, CLEC 40 of 50: the modified z is undefined (p(1-p) = 0), so Fisher's
    exact test decides: P(X <= 40), X ~ hypergeom(N=2050, K=2040, n=50) = C(50,10) / C(2050,10) = 2.907e-17,
    below the 0.05 tail of n=50's 1.645: a miss. Retail 1999 of 2000 gives z = 62.33, also a miss."""
    cell = run_checker(orders=_op3_orders(2000, 0, 40, 10), use_plan=bundled_plan).cell("OP-3")
    assert cell["method"] == "fisher_exact" and cell["status"] == "miss"
    assert cell["p_value"] == pytest.approx(2.906961e-17, rel=1e-6)
    assert cell["critical_value"] == 1.645 and cell["alpha"] == pytest.approx(0.04998, abs=1e-5)
    assert "zero retail variance" in cell["status_reason"] and "exact test" in cell["status_reason"]

    near = run_checker(orders=_op3_orders(1999, 1, 40, 10), use_plan=bundled_plan).cell("OP-3")
    assert near["method"] == "modified_z" and near["statistic"] == pytest.approx(62.3289, abs=1e-4)
    assert near["status"] == "miss"

    def undetermined(doc):
        doc["statistics"] = json.loads((PLANS_DIR / "example-qc.json").read_text())["statistics"]
        doc["statistics"]["routing"]["undefined_statistic"] = "undetermined"

    old = run_checker(orders=_op3_orders(2000, 0, 40, 10), use_plan=make_plan(undetermined)).cell("OP-3")
    assert old["status"] == "undetermined" and "zero retail variance" in old["status_reason"]


def test_a_mean_with_every_retail_value_equal_goes_to_the_exact_permutation_test(run_checker, bundled_plan):
    """OP-4: 100 retail orders of 3 business days, CLEC 35 of 3 and 5 of 4 days (n=40 > 30, so modified z,
    undefined with zero variance). Permutation on the lattice: a sum at least the CLEC's needs all five 4-day
    orders among the 40 drawn from 140: C(40,5) / C(140,5) = 0.0015781 < 0.05: a miss."""
    retail = {"carrier_id": "ILEC", "product": "pots"}
    orders = [retail] * 100 + [{}] * 35 + [{"completed_at": "2026-10-09 12:00:00"}] * 5
    cell = run_checker(orders=orders, use_plan=bundled_plan).cell("OP-4", submeasure="dispatch=false")
    assert (cell["clec_n"], cell["retail_stdev"]) == (40, 0.0)
    assert cell["method"] == "permutation_exact" and cell["status"] == "miss"
    assert cell["p_value"] == pytest.approx(comb(40, 5) / comb(140, 5), rel=1e-9)
    assert "zero retail variance" in cell["status_reason"]


def test_a_zero_retail_rate_goes_to_the_conditional_binomial_test(run_checker, bundled_plan):
    """MR-8: CLEC 5 network troubles on 100 lines, retail 0 on 10,000 lines (100 lines > 30: modified z, undefined
    with a zero retail rate). Binomial given the 5 troubles: p = (100 / 10,100)^5 = 9.5147e-11: a miss."""
    lines = [{}, {"carrier_id": "ILEC", "product": "pots", "lines_in_service": "10000"}]
    troubles = [{"circuit_id": f"C{i}"} for i in range(5)]
    cell = run_checker(troubles=troubles, lines=lines, use_plan=bundled_plan).cell("MR-8")
    assert cell["method"] == "binomial_exact" and cell["status"] == "miss"
    assert cell["p_value"] == pytest.approx((100 / 10_100) ** 5, rel=1e-9)
    assert "zero retail rate" in cell["status_reason"]


def test_a_retail_rate_above_one_per_line_is_judged_with_the_poisson_variance(run_checker, bundled_plan):
    """MR-8: retail 150 troubles on 100 lines (1.5 per line), CLEC 80 on 40 lines (2.0): Poisson
    z = (2.0 - 1.5) / sqrt(1.5 x (1/40 + 1/100)) = 0.5 / 0.229129 = 2.18218 (n=40: 1.645): a miss.
    Under r(1 - r) the variance would be negative and the cell undetermined."""
    lines = [{"lines_in_service": "40"}, {"carrier_id": "ILEC", "product": "pots", "lines_in_service": "100"}]
    troubles = [{"circuit_id": f"C{i}"} for i in range(80)]
    troubles += [{"carrier_id": "ILEC", "product": "pots", "circuit_id": f"R{i}"} for i in range(150)]
    cell = run_checker(troubles=troubles, lines=lines, use_plan=bundled_plan).cell("MR-8")
    assert cell["method"] == "modified_z" and cell["status"] == "miss"
    assert cell["statistic"] == pytest.approx(0.5 / math.sqrt(1.5 * (1 / 40 + 1 / 100)), rel=1e-9)
    assert cell["retail_stdev"] == pytest.approx(math.sqrt(1.5), rel=1e-12)  # per line


def test_the_all_clec_aggregate_is_judged_with_its_own_table(run_checker, bundled_plan):
    """example-qc: a CLEC cell of 200 orders takes the CLEC table's 2.0 (151-300), the all-CLEC aggregate of the
    same cell the clec_aggregate table's flat 1.645."""
    orders = _op3_orders(400, 20, 190, 10)
    run = run_checker(orders=orders, use_plan=bundled_plan)
    assert run.cell("OP-3")["critical_value"] == 2.0
    assert run.cell("OP-3", carrier_id=None)["critical_value"] == 1.645
    assert bundled_plan.statistics.critical_value_for("clec_aggregate", 5000) == 1.645
    assert bundled_plan.statistics.critical_value_for("clec", 5000) == 4.3


def test_histograms_of_many_samples_are_np_unique_of_each():
    """verdicts._histograms gives every sample the distinct values and counts np.unique gives it, to the bit and
    dtype: ascending samples (empty ones too) found together, and unsorted, NaN and -0.0 samples by np.unique."""
    from carrier_sla.engine.verdicts import _histograms

    rng = np.random.default_rng(0)
    odd = [np.array([3.0, 1.0, 1.0]), np.array([np.nan, 2.0, np.nan]), np.array([-0.0, 0.0, 1.5])]
    for trial in range(200):
        samples = [np.sort(rng.integers(0, 5, rng.integers(0, 8)) / 2) for _ in range(rng.integers(1, 6))]
        if trial % 5 == 0:
            samples.insert(int(rng.integers(0, len(samples) + 1)), odd[trial % 3])
        for (v, c), x in zip(_histograms(samples), samples, strict=True):
            uv, uc = np.unique(x, return_counts=True)
            assert v.dtype == uv.dtype and c.dtype == uc.dtype
            assert v.tobytes() == uv.tobytes() and c.tobytes() == uc.tobytes()
    together = _histograms([np.array([1.0, 1.0, 2.5]), np.array([2.5, 4.0])])
    assert [(v.tolist(), c.tolist()) for v, c in together] == [([1.0, 2.5], [2, 1]), ([2.5, 4.0], [1, 1])]
