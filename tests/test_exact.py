"""Exact and resampling parity tests: Fisher, conditional binomial, the permutation test of means
(exact from value histograms and Monte Carlo), the modified t and per-cell seeds, against scipy,
brute-force enumeration, hand computations and the Verizon repair-time data."""

from __future__ import annotations

import csv
import itertools
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as sps

from carrier_sla.engine.exact import (
    TestResult,
    binomial_rate,
    fisher_exact,
    modified_t,
    permutation_test,
    seed_for,
    z_equivalent,
)

VERIZON = Path("/work/shared/data/verizon_repair_times.csv")


def brute_force_p(clec: list[int], retail: list[int], worse_is_higher: bool) -> Fraction:
    """Share of all n_clec-subsets of the pooled records whose sum is at least as bad as the CLEC's."""
    pool = clec + retail
    observed = sum(clec)
    sums = [sum(pool[i] for i in idx) for idx in itertools.combinations(range(len(pool)), len(clec))]
    bad = sum(1 for s in sums if (s >= observed if worse_is_higher else s <= observed))
    return Fraction(bad, len(sums))


def as_histogram(units: list[int], lattice: float) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (units times the lattice) and their counts."""
    v, c = np.unique(np.asarray(units, dtype=np.int64), return_counts=True)
    return v * lattice, c


def mc_tolerance(p: float, resamples: int) -> float:
    """Four Monte Carlo standard errors plus one resample."""
    return 4 * math.sqrt(p * (1 - p) / resamples) + 1 / resamples


# --- Fisher exact ---------------------------------------------------------------------------------


def test_fisher_hand_computed():
    """CLEC 3 of 4 missed against retail 1 of 6 gives p = 25/210 (upper tail of the hypergeometric)."""
    # Pool N = 10 with K = 4 misses; the CLEC draws 4. P(X >= 3) = [C(4,3) C(6,1) + C(4,4) C(6,0)] / C(10,4)
    # = (4 * 6 + 1 * 1) / 210 = 25 / 210 = 0.1190476
    r = fisher_exact(3, 4, 1, 6, worse_is_higher=True)
    assert r.method == "fisher_exact"
    assert r.p_value == pytest.approx(25 / 210, rel=1e-12)
    assert r.statistic == 3
    assert r.z_equivalent == pytest.approx(special.ndtri(1 - 25 / 210), rel=1e-12)
    # Percent met: CLEC 1 of 4 met against retail 5 of 6 met. P(X <= 1) = [C(6,0) C(4,4) + C(6,1) C(4,3)] / 210
    assert fisher_exact(1, 4, 5, 6, worse_is_higher=False).p_value == pytest.approx(25 / 210, rel=1e-12)


@pytest.mark.parametrize("worse_is_higher", [True, False])
def test_fisher_matches_scipy_on_a_grid(worse_is_higher):
    """On every table with up to 6 CLEC and 8 retail items the p-value equals scipy.stats.fisher_exact."""
    alternative = "greater" if worse_is_higher else "less"
    for n1, n2 in itertools.product(range(1, 7), range(0, 9)):
        for a, c in itertools.product(range(n1 + 1), range(n2 + 1)):
            expected = sps.fisher_exact([[a, n1 - a], [c, n2 - c]], alternative=alternative).pvalue
            assert fisher_exact(a, n1, c, n2, worse_is_higher).p_value == pytest.approx(expected, rel=1e-12, abs=1e-300)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 400).flatmap(lambda n1: st.tuples(st.just(n1), st.integers(0, n1))),
    st.integers(0, 5000).flatmap(lambda n2: st.tuples(st.just(n2), st.integers(0, n2))),
    st.booleans(),
)
def test_fisher_matches_scipy_hypothesis(clec, retail, worse_is_higher):
    """For random tables, large retail counts included, the p-value equals scipy.stats.fisher_exact."""
    (n1, a), (n2, c) = clec, retail
    expected = sps.fisher_exact([[a, n1 - a], [c, n2 - c]], alternative="greater" if worse_is_higher else "less").pvalue
    assert fisher_exact(a, n1, c, n2, worse_is_higher).p_value == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_fisher_rejects_impossible_tables():
    """A CLEC total of 0 or more hits than items is a ValueError, not a p-value."""
    with pytest.raises(ValueError, match="clec_n is 0"):
        fisher_exact(0, 0, 1, 5, True)
    with pytest.raises(ValueError, match="exceed"):
        fisher_exact(5, 4, 1, 5, True)


# --- conditional binomial for rates ---------------------------------------------------------------


def test_binomial_hand_computed():
    """3 CLEC troubles on 100 lines against 2 retail on 900 gives p = 0.00856."""
    # q = 100 / 1000 = 0.1, T = 5. P(X >= 3) = C(5,3) 0.1^3 0.9^2 + C(5,4) 0.1^4 0.9 + 0.1^5
    # = 10 * 0.001 * 0.81 + 5 * 0.0001 * 0.9 + 0.00001 = 0.0081 + 0.00045 + 0.00001 = 0.00856
    r = binomial_rate(3, 100, 2, 900)
    assert r.method == "binomial_exact"
    assert r.p_value == pytest.approx(0.00856, rel=1e-12)
    assert r.statistic == 3


@pytest.mark.parametrize("worse_is_higher", [True, False])
def test_binomial_matches_scipy_binomtest(worse_is_higher):
    """On a grid of counts and bases the p-value equals scipy.stats.binomtest's one-sided p-value."""
    alternative = "greater" if worse_is_higher else "less"
    for x, y in itertools.product(range(0, 12), range(0, 40, 3)):
        if x + y == 0:
            continue
        for clec_base, retail_base in [(100, 900), (37.5, 12_000), (5_000, 5_000), (3, 1)]:
            q = clec_base / (clec_base + retail_base)
            expected = sps.binomtest(x, x + y, q, alternative=alternative).pvalue
            got = binomial_rate(x, clec_base, y, retail_base, worse_is_higher).p_value
            assert got == pytest.approx(expected, rel=1e-10, abs=1e-300)


def test_binomial_no_troubles_anywhere():
    """With no troubles in either group the p-value is 1 in both orientations."""
    assert binomial_rate(0, 100, 0, 900).p_value == 1.0
    assert binomial_rate(0, 100, 0, 900, worse_is_higher=False).p_value == 1.0


def test_binomial_rejects_bad_bases():
    """A zero or non-finite base is a ValueError."""
    with pytest.raises(ValueError, match="clec_base"):
        binomial_rate(1, 0, 2, 100)
    with pytest.raises(ValueError, match="retail_base"):
        binomial_rate(1, 10, 2, math.inf)


# --- permutation test: exact ----------------------------------------------------------------------

SMALL_CASES = [
    # (clec units, retail units): ties, zeros, a CLEC value absent from the retail, n > N / 2
    ([3, 5], [1, 2, 2, 3, 5, 5, 0, 4]),
    ([4, 4, 6], [2, 2, 3, 4, 4, 1, 0, 0, 5]),
    ([0, 7, 7, 2], [3, 3, 1, 5, 5, 0, 2, 6]),
    ([1, 2, 9], [2, 2, 2, 3]),
    ([6, 2, 2, 5, 1], [2, 3, 3]),
    ([2], [2, 2, 2, 0, 4]),
]


@pytest.mark.parametrize("lattice", [1.0, 0.5])
@pytest.mark.parametrize("worse_is_higher", [True, False])
@pytest.mark.parametrize(("clec", "retail"), SMALL_CASES)
def test_permutation_exact_matches_brute_force(clec, retail, worse_is_higher, lattice):
    """On tiny pools with ties the exact p-value equals enumeration over all subsets."""
    expected = brute_force_p(clec, retail, worse_is_higher)
    cv, cc = as_histogram(clec, lattice)
    rv, rc = as_histogram(retail, lattice)
    r = permutation_test(cv, cc, rv, rc, worse_is_higher, lattice=lattice, seed=1)
    assert r.method == "permutation_exact"
    assert r.p_value == pytest.approx(float(expected), rel=1e-12)
    assert r.statistic == pytest.approx(sum(clec) * lattice)
    assert r.resamples is None and r.seed is None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 8), min_size=1, max_size=5),
    st.lists(st.integers(0, 8), min_size=0, max_size=8),
    st.booleans(),
    st.sampled_from([1.0, 0.5, 0.25, 0.01]),
)
def test_permutation_exact_matches_brute_force_hypothesis(clec, retail, worse_is_higher, lattice):
    """For random tiny pools, passed record by record (counts of 1), the exact p-value equals enumeration."""
    expected = brute_force_p(clec, retail, worse_is_higher)
    r = permutation_test(
        np.asarray(clec) * lattice,
        np.ones(len(clec), int),
        np.asarray(retail) * lattice,
        np.ones(len(retail), int),
        worse_is_higher,
        lattice=lattice,
        seed=1,
    )
    assert r.method == "permutation_exact"
    assert r.p_value == pytest.approx(float(expected), rel=1e-12)


def test_permutation_exact_on_decimal_values_with_float_noise():
    """Values like 0.1 + 0.2 that miss the 0.1 lattice by a rounding error still go exact and match enumeration."""
    clec = [0.1 + 0.2, 0.7]  # 0.30000000000000004
    retail = [0.3, 0.1, 0.2, 0.6, 0.3, 0.0]
    expected = brute_force_p([3, 7], [3, 1, 2, 6, 3, 0], True)
    r = permutation_test(clec, [1, 1], retail, np.ones(6), True, lattice=0.1, seed=1)
    assert r.method == "permutation_exact"
    assert r.p_value == pytest.approx(float(expected), rel=1e-12)


def test_permutation_exact_large_retail_against_exact_integers():
    """A 60-value histogram of 200,000 retail records with 12 CLEC records matches an exact-integer count."""
    rng = np.random.default_rng(7)
    values = np.arange(60)
    retail_counts = rng.multinomial(200_000, np.exp(-values / 5) / np.exp(-values / 5).sum())
    clec_units = [3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 31]
    cv, cc = np.unique(clec_units, return_counts=True)
    r = permutation_test(cv, cc, values, retail_counts, True, lattice=1.0, seed=1)
    # Exact count of 12-subsets with sum >= observed, by a dynamic programme over Python integers.
    pooled = retail_counts.copy()
    pooled[cv] += cc
    k, observed, width = 12, sum(clec_units), 12 * 59 + 1
    ways = [[0] * width for _ in range(k + 1)]
    ways[0][0] = 1
    for v, c in enumerate(pooled.tolist()):
        new = [[0] * width for _ in range(k + 1)]
        for rr in range(k + 1):
            for j in range(min(c, rr) + 1):
                cj, src, dst = math.comb(c, j), ways[rr - j], new[rr]
                for s in range(width - j * v):
                    if src[s]:
                        dst[s + j * v] += cj * src[s]
        ways = new
    expected = Fraction(sum(ways[k][observed:]), math.comb(int(pooled.sum()), k))
    assert r.method == "permutation_exact"
    assert r.p_value == pytest.approx(float(expected), rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 10), min_size=1, max_size=6),
    st.lists(st.integers(0, 10), min_size=1, max_size=40),
    st.integers(0, 5),
    st.integers(1, 6),
    st.booleans(),
)
def test_worse_clec_value_never_raises_p(clec, retail, which, delta, worse_is_higher):
    """Making one CLEC value worse (larger when higher is worse, smaller otherwise) never increases the exact p-value."""
    which %= len(clec)
    worse = list(clec)
    worse[which] = worse[which] + delta if worse_is_higher else max(0, worse[which] - delta)

    def on_half_lattice(values):
        return permutation_test(
            np.asarray(values) * 0.5,
            np.ones(len(values)),
            np.asarray(retail) * 0.5,
            np.ones(len(retail)),
            worse_is_higher,
            lattice=0.5,
            seed=1,
        )

    before, after = on_half_lattice(clec), on_half_lattice(worse)
    assert before.method == after.method == "permutation_exact"
    assert after.p_value <= before.p_value + 1e-12


def test_permutation_histogram_order_does_not_matter():
    """Shuffling and splitting histogram rows gives the identical exact p-value."""
    clec_v, clec_c = [3.0, 1.0, 4.0], [2, 1, 1]
    retail_v, retail_c = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [5, 9, 7, 4, 2, 1]
    a = permutation_test(clec_v, clec_c, retail_v, retail_c, True, lattice=1.0, seed=1)
    b = permutation_test(
        [4.0, 3.0, 1.0, 3.0],
        [1, 1, 1, 1],
        [5.0, 2.0, 1.0, 0.0, 4.0, 3.0, 1.0],
        [1, 7, 4, 5, 2, 4, 5],
        True,
        lattice=1.0,
        seed=1,
    )
    assert a.p_value == b.p_value


def test_all_equal_pool_gives_p_one():
    """When every pooled value is equal every subset ties, so p = 1 whatever the orientation or method."""
    for worse_is_higher, lattice in itertools.product([True, False], [1.0, None]):
        r = permutation_test([2.0], [5], [2.0], [1000], worse_is_higher, lattice=lattice, seed=3)
        assert r.p_value == 1.0
        assert r.z_equivalent == -math.inf
        assert "equal" in r.note


def test_permutation_rejects_bad_input():
    """An empty CLEC histogram, negative values, non-integer counts and mismatched lengths are ValueErrors."""
    with pytest.raises(ValueError, match="empty"):
        permutation_test([1.0], [0], [1.0, 2.0], [3, 4], True, lattice=1.0, seed=1)
    with pytest.raises(ValueError, match="negative"):
        permutation_test([1.0], [1], [-1.0, 2.0], [3, 4], True, lattice=1.0, seed=1)
    with pytest.raises(ValueError, match="counts"):
        permutation_test([1.0], [1.5], [1.0], [3], True, lattice=1.0, seed=1)
    with pytest.raises(ValueError, match="2 values but 1 counts"):
        permutation_test([1.0, 2.0], [1], [1.0], [3], True, lattice=1.0, seed=1)


# --- permutation test: Monte Carlo ----------------------------------------------------------------


def test_off_lattice_and_oversized_cells_fall_back_to_monte_carlo():
    """Values off the lattice, no lattice, and a DP above max_exact_cells each go Monte Carlo with a note saying why
    (three CLEC values: one or two are always counted exactly)."""
    cv, cc, rv, rc = [1.25, 3.0, 3.5], [1, 1, 1], [0.0, 1.0, 2.0, 4.0], [10, 10, 10, 10]
    off = permutation_test(cv, cc, rv, rc, True, lattice=0.5, resamples=1000, seed=5)
    assert off.method == "permutation_monte_carlo" and "not all multiples" in off.note
    none = permutation_test(cv, cc, rv, rc, True, lattice=None, resamples=1000, seed=5)
    assert none.method == "permutation_monte_carlo" and "no lattice" in none.note
    big = permutation_test([1.0, 3.0, 4.0], cc, rv, rc, True, lattice=1.0, resamples=1000, seed=5, max_exact_cells=10)
    assert big.method == "permutation_monte_carlo" and "above the limit of 10" in big.note
    assert big.resamples == 1000 and big.seed == 5


def test_monte_carlo_p_counts_the_observed_arrangement():
    """p = (b + 1) / (B + 1): a CLEC holding the pool's largest values gets 1 / (B + 1), the smallest gets 1."""
    rv, rc = [0.0, 1.0, 2.0], [50, 50, 50]
    best = permutation_test([7.5], [3], rv, rc, True, lattice=None, resamples=999, seed=8)
    assert best.p_value == 1 / 1000
    worst = permutation_test([0.0], [3], rv, rc, True, lattice=None, resamples=999, seed=8)
    assert worst.p_value == 1.0


@pytest.mark.parametrize("worse_is_higher", [True, False])
def test_monte_carlo_agrees_with_exact_on_a_moderate_case(worse_is_higher):
    """On 5,000 retail records and 12 CLEC records the Monte Carlo p-value is within Monte Carlo error of the exact one."""
    rng = np.random.default_rng(11)
    retail = rng.poisson(4.0, 5000)
    clec = rng.poisson(5.2 if worse_is_higher else 2.9, 12)
    cv, cc = np.unique(clec, return_counts=True)
    rv, rc = np.unique(retail, return_counts=True)
    exact = permutation_test(cv, cc, rv, rc, worse_is_higher, lattice=1.0, seed=1)
    mc = permutation_test(cv, cc, rv, rc, worse_is_higher, lattice=None, resamples=40_000, seed=99)
    assert exact.method == "permutation_exact" and mc.method == "permutation_monte_carlo"
    assert 0.001 < exact.p_value < 0.5  # a case where the comparison means something
    assert abs(mc.p_value - exact.p_value) < mc_tolerance(exact.p_value, 40_000)


@pytest.mark.parametrize(
    ("clec", "retail", "worse_is_higher"),
    [
        ([0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4, 0.0, 0.1, 0.2, 0.3], True),  # ties: 0.6 vs 0.6000000000000001
        ([0.1, 0.2, 0.2, 0.3], [0.3, 0.6, 0.1, 0.2, 0.4, 0.3], False),  # n close to N: clashes in most draws
        ([0.5, 0.4, 0.1, 0.3, 0.6, 0.2, 0.3], [0.1, 0.3, 0.2], True),  # n > N / 2: the complement is drawn
    ],
)
def test_monte_carlo_on_tiny_pools_matches_enumeration(clec, retail, worse_is_higher):
    """On tiny float pools (ties, heavy clashes, complements) Monte Carlo is within Monte Carlo error of enumeration."""
    expected = float(brute_force_p([round(x * 10) for x in clec], [round(x * 10) for x in retail], worse_is_higher))
    r = permutation_test(
        clec,
        np.ones(len(clec)),
        retail,
        np.ones(len(retail)),
        worse_is_higher,
        lattice=None,
        resamples=50_000,
        seed=2024,
    )
    assert r.method == "permutation_monte_carlo"
    assert abs(r.p_value - expected) < mc_tolerance(expected, 50_000)


def test_monte_carlo_draws_every_subset_equally_often():
    """Each of the 20 three-subsets of six distinct values is drawn about equally often (chi-square)."""
    # Values 1, 2, 4, 8, 16, 32 make every subset's sum distinct, so P(sum >= s) over all
    # 20 thresholds recovers the frequency of each subset from the Monte Carlo tail counts.
    values = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    sums = sorted(sum(c) for c in itertools.combinations(values, 3))
    resamples = 20_000
    tails = []
    for s in sums:
        clec = next(c for c in itertools.combinations(values, 3) if sum(c) == s)
        retail = [v for v in values if v not in clec]
        r = permutation_test(clec, [1, 1, 1], retail, [1, 1, 1], True, lattice=None, resamples=resamples, seed=77)
        tails.append(round(r.p_value * (resamples + 1)) - 1)  # b = number of resampled sums >= s
    counts = np.array(tails) - np.array([*tails[1:], 0])  # subsets with sum exactly s
    assert counts.sum() == resamples
    chi2 = sps.chisquare(counts).pvalue
    assert chi2 > 1e-4


@pytest.mark.parametrize("pairwise_max_k", [32, 1])
@pytest.mark.parametrize("sampler", ["_floyd_positions", "_subset_positions"])
@pytest.mark.parametrize(("n_pool", "k"), [(9, 4), (7, 3), (12, 2), (30, 3)])
def test_subset_positions_draw_uniform_subsets(monkeypatch, n_pool, k, sampler, pairwise_max_k):
    """Every column of _floyd_positions and of _subset_positions (rejection of repeated draws where they are
    rare: (12, 2) and (30, 3); else Floyd) holds k distinct positions of range(N), and all C(N, k) subsets come
    up equally often (chi-square), when clashes are found by pairwise comparison and by sorting alike.
    Tiny pools make clashes, redrawn draws (t_i above N - k + i) and rejected columns common."""
    from carrier_sla.engine import monte_carlo

    monkeypatch.setattr(monte_carlo, "_PAIRWISE_MAX_K", pairwise_max_k)
    rng = np.random.default_rng(2024)
    draw = getattr(monte_carlo, sampler)
    pos = np.concatenate([draw(rng, n_pool, k, 20_000) for _ in range(3)], axis=1)
    assert pos.shape == (k, 60_000) and pos.min() >= 0 and pos.max() < n_pool
    s = np.sort(pos, axis=0)
    assert (s[1:] != s[:-1]).all()
    codes = (2 ** s.astype(np.int64)).sum(axis=0)  # one code per subset
    _, counts = np.unique(codes, return_counts=True)
    assert counts.size == math.comb(n_pool, k)
    assert sps.chisquare(counts).pvalue > 1e-4


@pytest.mark.parametrize("pairwise_max_k", [32, 1])
def test_monte_carlo_with_30_values_agrees_with_exact(monkeypatch, pairwise_max_k):
    """30 CLEC values against 3,000 retail records, clashes found by pairwise comparison or by sorting: Monte Carlo
    on floats is within Monte Carlo error of the exact p-value on the lattice."""
    from carrier_sla.engine import monte_carlo

    monkeypatch.setattr(monte_carlo, "_PAIRWISE_MAX_K", pairwise_max_k)
    rng = np.random.default_rng(12)
    cv, cc = np.unique(rng.poisson(3.5, 30), return_counts=True)
    rv, rc = np.unique(rng.poisson(3.0, 3000), return_counts=True)
    exact = permutation_test(cv, cc, rv, rc, True, lattice=1.0, seed=1)
    mc = permutation_test(cv, cc, rv, rc, True, lattice=None, resamples=40_000, seed=5)
    assert exact.method == "permutation_exact" and mc.method == "permutation_monte_carlo"
    assert 0.001 < exact.p_value < 0.5
    assert abs(mc.p_value - exact.p_value) < mc_tolerance(exact.p_value, 40_000)


def test_monte_carlo_without_retail_records_gives_p_one():
    """With no retail records the only subset is the CLEC's own (k = 0 after taking the complement): p = 1."""
    r = permutation_test([1.0, 2.0, 3.5], [1, 1, 1], [], [], True, lattice=None, resamples=100, seed=1)
    assert r.method == "permutation_monte_carlo" and r.p_value == 1.0


def test_monte_carlo_integer_and_float_paths_agree():
    """With 70,000 distinct values Monte Carlo on lattice units and on floats draws the same subsets and gives the same p."""
    rng = np.random.default_rng(5)
    retail = np.arange(70_000) * 0.01  # more distinct values than a 16-bit index holds
    retail_counts = rng.integers(1, 4, retail.size)
    clec = np.round(rng.uniform(0, 900, 10), 2)
    on_lattice = permutation_test(clec, np.ones(10), retail, retail_counts, True, lattice=0.01, resamples=5000, seed=9)
    on_floats = permutation_test(clec, np.ones(10), retail, retail_counts, True, lattice=None, resamples=5000, seed=9)
    assert on_lattice.method == on_floats.method == "permutation_monte_carlo"
    assert "above the limit" in on_lattice.note
    assert 0.01 < on_lattice.p_value < 0.99
    assert on_lattice.p_value == on_floats.p_value


def test_monte_carlo_is_reproducible():
    """The same seed gives the identical p-value; another seed gives a different but close one."""
    rng = np.random.default_rng(3)
    retail = np.round(rng.gamma(1.0, 8.0, 20_000), 2)
    clec = np.round(rng.gamma(1.0, 11.0, 25), 2)
    rv, rc = np.unique(retail, return_counts=True)
    args = (clec, np.ones(25), rv, rc, True)
    a = permutation_test(*args, lattice=None, resamples=20_000, seed=123)
    b = permutation_test(*args, lattice=None, resamples=20_000, seed=123)
    c = permutation_test(*args, lattice=None, resamples=20_000, seed=124)
    assert a == b
    assert a.seed == 123 and c.seed == 124
    assert a.p_value != c.p_value
    assert abs(a.p_value - c.p_value) < 2 * mc_tolerance(a.p_value, 20_000)


# --- the Verizon repair times ---------------------------------------------------------------------


# The exact one-sided p-value for the Verizon data: the DP below with the cell limit lifted (5 s);
# 10 million Monte Carlo resamples give 0.018099, within one standard error (0.00004).
VERIZON_EXACT_P = 0.01812954350570936


def load_verizon() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CLEC and ILEC repair-time histograms (hours) from the Verizon data."""
    clec: list[float] = []
    ilec: list[float] = []
    with VERIZON.open(newline="") as f:
        for row in csv.DictReader(f):
            (clec if row["Group"] == "CLEC" else ilec).append(float(row["Time"]))
    assert (len(clec), len(ilec)) == (23, 1664)
    cents = np.asarray(clec + ilec) * 100
    assert np.all(np.abs(cents - np.rint(cents)) < 1e-6)  # every time has at most two decimals
    cv, cc = np.unique(clec, return_counts=True)
    rv, rc = np.unique(ilec, return_counts=True)
    return cv, cc, rv, rc


def test_verizon_repair_times():
    """The Verizon data (23 CLEC vs 1,664 ILEC repair times) give a one-sided permutation p near 0.018."""
    cv, cc, rv, rc = load_verizon()
    r = permutation_test(cv, cc, rv, rc, True, lattice=0.01, resamples=100_000, seed=20240601)
    # Chihara and Hesterberg: one-sided permutation p about 0.017-0.019 for means 16.51 h vs 8.41 h.
    assert r.method == "permutation_monte_carlo"  # 7.9e9 DP cells: far above the default limit
    assert "above the limit" in r.note
    assert r.statistic == pytest.approx(379.71)  # 23 * 16.5091 hours
    assert 0.01 < r.p_value < 0.03
    assert abs(r.p_value - VERIZON_EXACT_P) < mc_tolerance(VERIZON_EXACT_P, 100_000)
    assert r.z_equivalent == pytest.approx(special.ndtri(1 - r.p_value), rel=1e-9)


@pytest.mark.slow
def test_verizon_repair_times_exact():
    """With the cell limit lifted the exact DP runs on the Verizon data and gives p = 0.0181295."""
    cv, cc, rv, rc = load_verizon()
    r = permutation_test(cv, cc, rv, rc, True, lattice=0.01, seed=0, max_exact_cells=10**10)
    assert r.method == "permutation_exact"
    assert r.p_value == pytest.approx(VERIZON_EXACT_P, rel=1e-9)


# --- modified t -----------------------------------------------------------------------------------


def test_modified_t_hand_computed():
    """CLEC mean 2.0 over 5 against retail mean 1.5, variance 0.25 over 20 gives t = 2.0, df = 19."""
    # se = sqrt(0.25 * (1/5 + 1/20)) = sqrt(0.25 * 0.25) = 0.25; t = (2.0 - 1.5) / 0.25 = 2.0
    r = modified_t(2.0, 5, 1.5, 0.25, 20, worse_is_higher=True)
    assert r.method == "modified_t"
    assert r.statistic == pytest.approx(2.0, rel=1e-12)
    assert r.df == 19
    assert r.p_value == pytest.approx(sps.t.sf(2.0, 19), rel=1e-12)
    assert r.p_value == pytest.approx(0.030001, abs=1e-6)  # t table, 19 df


def test_modified_t_orientation():
    """Flipping worse_is_higher flips the sign of t and turns p into 1 - p."""
    up = modified_t(3.1, 8, 2.7, 0.9, 150, worse_is_higher=True)
    down = modified_t(3.1, 8, 2.7, 0.9, 150, worse_is_higher=False)
    assert down.statistic == pytest.approx(-up.statistic, rel=1e-12)
    assert up.statistic > 0
    assert up.p_value + down.p_value == pytest.approx(1.0, rel=1e-12)
    assert down.p_value == pytest.approx(sps.t.sf(down.statistic, 149), rel=1e-12)


def test_modified_t_undefined_cases():
    """A retail sample of 1 or a zero retail variance is a ValueError with a message saying which."""
    with pytest.raises(ValueError, match="at least 2 records"):
        modified_t(1.0, 3, 1.0, 0.5, 1, True)
    with pytest.raises(ValueError, match="positive retail variance"):
        modified_t(1.0, 3, 1.0, 0.0, 10, True)


# --- seeds and z-equivalents ----------------------------------------------------------------------


def test_seed_for_is_stable_and_distinct():
    """seed_for gives the same 63-bit seed on every call and in another process, and different seeds for different keys."""
    a = seed_for(42, "CO", "OP-3", "resale_pots", "2026-10")
    assert a == seed_for(42, "CO", "OP-3", "resale_pots", "2026-10")
    assert 0 <= a < 2**63
    code = "from carrier_sla.engine.exact import seed_for; print(seed_for(42, 'CO', 'OP-3', 'resale_pots', '2026-10'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == a
    others = {
        seed_for(43, "CO", "OP-3", "resale_pots", "2026-10"),
        seed_for(42, "CO", "OP-3", "resale_pots", "2026-11"),
        seed_for(42, "CO", "OP-3", "resale_pots"),
        seed_for(42, "CO", "OP-3resale_pots", "2026-10"),
        seed_for(42, "COOP-3", "resale_pots", "2026-10"),
        seed_for(42),
    }
    assert a not in others and len(others) == 6
    keys = {seed_for(7, "cell", str(i)) for i in range(2000)}
    assert len(keys) == 2000


def test_z_equivalent():
    """The z-equivalent is the inverse normal of 1 - p, finite for an underflowed p = 0 and -inf for p = 1."""
    assert z_equivalent(0.05) == pytest.approx(1.6448536269514722, rel=1e-12)
    assert z_equivalent(1e-20) == pytest.approx(9.262340089798408, rel=1e-12)
    assert z_equivalent(0.0) == pytest.approx(37.0470962993612, rel=1e-12)  # p clipped to 1e-300
    assert z_equivalent(1.0) == -math.inf


def test_results_are_frozen():
    """A TestResult cannot be changed after it is made."""
    r = fisher_exact(1, 2, 1, 2, True)
    assert isinstance(r, TestResult)
    with pytest.raises(AttributeError):
        r.p_value = 0.5  # type: ignore[misc]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 50, allow_nan=False).map(lambda x: round(x, 2)), min_size=1, max_size=2),
    st.lists(st.floats(0, 50, allow_nan=False).map(lambda x: round(x, 2)), min_size=2, max_size=9),
    st.booleans(),
)
def test_one_or_two_clec_values_are_counted_exactly(clec, retail, worse_is_higher):
    """With one or two CLEC values every subset is counted: the p-value equals brute-force enumeration."""
    pool = clec + retail
    observed = sum(clec)
    subsets = list(itertools.combinations(range(len(pool)), len(clec)))
    tol = 1e-9 * max(1.0, abs(observed))
    bad = sum(
        1
        for s in subsets
        if (sum(pool[i] for i in s) >= observed - tol if worse_is_higher else sum(pool[i] for i in s) <= observed + tol)
    )
    cv, cc = np.unique(clec, return_counts=True)
    rv, rc = np.unique(retail, return_counts=True)
    result = permutation_test(cv, cc, rv, rc, worse_is_higher, lattice=None, seed=1)
    if len(set(pool)) == 1:
        assert result.p_value == 1.0
    else:
        assert result.method == "permutation_exact"
        assert result.p_value == pytest.approx(bad / len(subsets), abs=1e-12)
