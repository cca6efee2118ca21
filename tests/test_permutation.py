"""Permutation tests of many CLEC cells against one retail pool (engine/permutation.py): the cells of one size
share one Monte Carlo stream and one pass over the pool's subset-sum table, and every cell's result is exactly
the one it gets alone with its recorded seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from carrier_sla.engine import exact, monte_carlo
from carrier_sla.engine.permutation import Pool, permutation_test, permutation_tests
from carrier_sla.engine.subset_sums import RetailTable, subset_sum_distribution


def _hours(rng: np.random.Generator, size: int, shift: float = 0.0) -> np.ndarray:
    """Repair-like hours at second resolution (off any coarse lattice)."""
    return np.round((rng.gamma(0.8, 6.0, size) + shift) * 3600) / 3600


@pytest.mark.parametrize("sequential_h", [None, 25])
def test_cells_of_one_size_share_a_stream_and_each_gets_what_it_gets_alone(sequential_h):
    """Twelve CLEC cells of sizes 3, 5 and 8 against one retail pool (some CLEC values equal to retail values,
    some far worse): each cell's p-value, draws and seed from the batch equal permutation_test on that cell alone
    with the seed of its size; cells of one size record one seed, cells of different sizes different seeds."""
    rng = np.random.default_rng(11)
    retail = _hours(rng, 3000)
    pool = Pool.of_samples(np.sort(retail))
    cells = []
    for i in range(12):
        n = (3, 5, 8)[i % 3]
        values = _hours(rng, n, shift=8.0 if i % 4 == 0 else 0.0)
        if i % 5 == 0:
            values[0] = retail[i]  # a CLEC value the retail also has
        cells.append(np.unique(values, return_counts=True))
    seeds = {3: 101, 5: 102, 8: 103}
    kwargs = {"lattice": None, "resamples": 4000, "sequential_h": sequential_h}
    batch = permutation_tests(cells, pool, True, seeds=seeds.__getitem__, **kwargs)
    for (cv, cc), result in zip(cells, batch, strict=True):
        assert isinstance(result, exact.TestResult) and result.method == "permutation_monte_carlo"
        n = int(cc.sum())
        assert result.seed == seeds[n]
        assert result == permutation_test(cv, cc, np.sort(retail), np.ones(3000), True, seed=seeds[n], **kwargs)
    if sequential_h is not None:
        assert len({r.resamples for r in batch}) > 3  # each cell stops at its own draw


def test_a_shared_stream_counts_what_a_draw_by_draw_loop_counts():
    """Two cells of size 4 against a pool of 40 retail values: the subsets come from one stream; for each cell the
    number of resampled sums at least as bad equals a direct count over the same subsets (its own values at
    positions 40 to 43 of its pool)."""
    rng = np.random.default_rng(3)
    retail = np.sort(rng.gamma(2.0, 3.0, 40))
    own = np.sort(rng.gamma(2.0, 3.0, (2, 4)), axis=1)
    observed = own.sum(axis=1)
    b, drawn = monte_carlo.tail_counts(
        retail, np.ones(40, np.int64), own, 4, observed, True, False, 3000, 9
    )  # fmt: skip
    assert (drawn == 3000).all()
    stream = np.random.default_rng(9)
    subsets = np.concatenate(
        [monte_carlo._subset_positions(stream, 44, 4, rows) for _s, rows in monte_carlo._batches(3000, 1 << 16, False)],
        axis=1,
    )
    for c in range(2):
        values = np.concatenate([retail, own[c]])
        sums = values[subsets].sum(axis=0)
        assert b[c] == int((sums >= observed[c] - 1e-9 * observed[c]).sum())


def test_the_complement_of_a_small_retail_pool_is_counted_per_cell():
    """CLEC cells larger than their retail pool (6 values against 4) take the complement (random 4-subsets of the
    10 pooled values): the batch equals each cell alone, and with all 210 subsets equally likely the p-value is
    within Monte Carlo error of the exact share."""
    retail = np.array([1.5, 2.25, 3.0, 9.75])
    cells = [
        np.unique(np.array(v), return_counts=True)
        for v in ([2.0, 2.5, 3.5, 4.0, 8.0, 8.5], [1.0, 1.25, 2.0, 2.5, 3.0, 3.25])
    ]
    batch = permutation_tests(cells, Pool(retail, np.ones(4)), True, lattice=None, resamples=20_000, seeds=lambda n: 5)
    for (cv, cc), result in zip(cells, batch, strict=True):
        assert isinstance(result, exact.TestResult)
        assert result == permutation_test(cv, cc, retail, np.ones(4), True, lattice=None, resamples=20_000, seed=5)
        pooled = np.concatenate([retail, np.repeat(cv, cc)])
        sums = [sum(pooled[list(s)]) for s in __import__("itertools").combinations(range(10), 6)]
        share = np.mean(np.array(sums) >= float(np.dot(cv, cc)) - 1e-9)
        assert abs(result.p_value - share) < 4 * math.sqrt(share * (1 - share) / 20_000) + 1 / 20_000


def test_one_clec_value_is_counted_exactly_against_the_pool():
    """A single CLEC value x against retail 1, 2, 3, 4: the share of the pool (with x) at least as bad as x:
    x = 3 gives 3/5 upper and 4/5 lower; x = 2.5 gives 3/5 upper and 3/5 lower."""
    pool = Pool(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4))
    tests = permutation_tests(
        [([3.0], [1]), ([2.5], [1])], pool, True, lattice=None, seeds=lambda n: 0
    )  # fmt: skip
    assert [r.p_value for r in tests] == [pytest.approx(3 / 5), pytest.approx(3 / 5)]  # type: ignore[union-attr]
    lower = permutation_tests([([3.0], [1]), ([2.5], [1])], pool, False, lattice=None, seeds=lambda n: 0)
    assert [r.p_value for r in lower] == [pytest.approx(4 / 5), pytest.approx(3 / 5)]  # type: ignore[union-attr]


def test_invalid_cells_get_their_reason_and_the_others_their_result():
    """A negative CLEC value and an empty histogram are reported per cell; the valid cell beside them is tested."""
    pool = Pool(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4))
    out = permutation_tests([([-1.0], [1]), ([], []), ([2.0, 3.0], [1, 1])], pool, True, lattice=1.0, seeds=lambda n: 0)
    assert isinstance(out[0], ValueError) and "negative values" in str(out[0])
    assert isinstance(out[1], ValueError) and "empty" in str(out[1])
    assert isinstance(out[2], exact.TestResult) and out[2].method == "permutation_exact"


def test_the_table_gives_every_cell_of_a_size_the_whole_programmes_p_value():
    """Forty cells of business days (sizes 1 to 30, values 0 to 25 days) against 2,000 retail days: the table's
    vectorised p-values equal the whole dynamic programme over each pooled histogram (to 1e-12), and a cell's
    p-value is the same bits alone or among the others of its size."""
    rng = np.random.default_rng(7)
    retail = rng.poisson(4, 2000)
    units, counts = np.unique(retail, return_counts=True)
    table = RetailTable(units, counts)
    for n in (1, 2, 7, 30):
        clec = np.sort(rng.integers(0, 26, size=(10, n)), axis=1)
        together = table.tails(clec, True)
        for row, p in zip(clec, together, strict=True):
            assert table.tails(row[None, :], True)[0] == p
            pooled_u, pooled_c = np.unique(np.concatenate([retail, row]), return_counts=True)
            base = int(pooled_u[0])
            dist = subset_sum_distribution(pooled_u - base, pooled_c, n)
            expected = math.fsum(dist[int(row.sum()) - n * base :].tolist())
            assert p == pytest.approx(expected, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("worse_is_higher", [True, False])
def test_fisher_cells_at_once_equal_scipy_and_the_one_cell_test(worse_is_higher):
    """Fisher's exact test on 3,000 random tables at once (CLEC samples of 1 to 30, and some of 200 to 2,000 whose
    wide supports go to scipy): each p-value equals scipy.stats.hypergeom's tail to 1e-12 and fisher_exact's on
    the one cell exactly; an impossible table gets fisher_exact's error."""
    rng = np.random.default_rng(5)
    n1 = np.concatenate([rng.integers(1, 31, 2900), rng.integers(200, 2000, 100)])
    n2 = rng.integers(1, 70_000, 3000)
    p_hit = rng.uniform(0.0, 1.0, 3000)
    a, c = rng.binomial(n1, p_hit), rng.binomial(n2, p_hit)
    tests = exact.fisher_exact_tests(a, n1, c, n2, worse_is_higher)
    args = (n1 + n2, a + c, n1)
    expected = sps.hypergeom.sf(a - 1, *args) if worse_is_higher else sps.hypergeom.cdf(a, *args)
    got = np.array([t.p_value for t in tests])  # type: ignore[union-attr]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    for i in range(0, 3000, 97):
        assert tests[i] == exact.fisher_exact(int(a[i]), int(n1[i]), int(c[i]), int(n2[i]), worse_is_higher)
    bad = exact.fisher_exact_tests(np.array([5, 1]), np.array([4, 3]), np.array([1, 0]), np.array([5, 9]), True)
    assert isinstance(bad[0], ValueError) and "hits exceed their totals" in str(bad[0])
    assert isinstance(bad[1], exact.TestResult)
