"""The retail pool's shared subset-sum table (subset_sums.RetailTable): the exact permutation p-value of a CLEC
cell from a table made once per retail pool equals the whole dynamic programme over the pooled values."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from carrier_sla.engine import exact
from carrier_sla.engine.exact import Pool, permutation_test
from carrier_sla.engine.subset_sums import RetailTable, subset_sum_distribution


def _whole_programme(monkeypatch, *args, **kwargs):
    """permutation_test with the shared table switched off: the programme over every pooled value."""
    with monkeypatch.context() as m:
        m.setattr(exact.Pool, "table", lambda self, lattice, max_cells: None)
        return permutation_test(*args, **kwargs)


@pytest.mark.parametrize("worse_is_higher", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_the_shared_table_gives_the_whole_programmes_p_value(monkeypatch, seed, worse_is_higher):
    """Against one pool of business days (a step of 2 days above a base of 3), CLEC cells of 1 to 30 values,
    some beyond the retail range on either side (1 day, or far above 43), get the same exact p-value (relative
    1e-12) from the pool's table as from the programme over the pooled values, tiny p-values included."""
    rng = np.random.default_rng(seed)
    retail = 3 + 2 * np.minimum(rng.poisson(3.0, 20_000), 20)  # 3, 5, 7, ... 43 business days
    pool = Pool.of_samples(retail)
    for n in (1, 2, 3, 7, 12, 30):
        shift = rng.choice([-2, 0, 0, 4, 30])
        clec = np.maximum(3 + 2 * (rng.poisson(3.0 + shift / 3, n) + shift // 2), 1)
        cv, cc = np.unique(clec.astype(float), return_counts=True)
        shared = permutation_test(cv, cc, pool, None, worse_is_higher, lattice=1.0, seed=0)
        whole = _whole_programme(monkeypatch, cv, cc, pool, None, worse_is_higher, lattice=1.0, seed=0)
        assert shared.method == whole.method == "permutation_exact"
        assert shared.p_value == pytest.approx(whole.p_value, rel=1e-12, abs=1e-300), (n, shift)


def test_tiny_pools_match_enumeration():
    """The table's p-value equals brute-force enumeration of every subset of a tiny pool, both tails."""
    retail = [0, 0, 1, 2, 2, 2, 5, 7]
    for clec in ([3], [2, 6], [0, 4, 4], [1, 1, 9, 3]):
        units, counts = np.unique(retail, return_counts=True)
        table = RetailTable(units, counts, rows=4)
        cu, cc = np.unique(clec, return_counts=True)
        pool = clec + retail
        sums = [sum(pool[i] for i in idx) for idx in itertools.combinations(range(len(pool)), len(clec))]
        for upper in (True, False):
            bad = sum(1 for s in sums if (s >= sum(clec) if upper else s <= sum(clec)))
            assert table.tail(cu, cc, upper) == pytest.approx(float(Fraction(bad, len(sums))), rel=1e-12)


def test_cells_the_table_cannot_serve_fall_back_to_the_programme(monkeypatch):
    """More CLEC values than the table's rows, or values off the pool's step, return None from the table, and
    permutation_test then runs the programme: the p-value is the same either way."""
    units, counts = np.array([2, 4, 6, 10]), np.array([50, 40, 30, 5])
    table = RetailTable(units, counts, rows=5)
    assert table.tail(np.array([2, 4]), np.array([3, 3]), True) is None  # six values, five rows
    assert table.tail(np.array([3]), np.array([1]), True) is None  # odd: off the pool's step of 2
    assert table.tail(np.array([4, 10]), np.array([1, 1]), True) is not None
    retail = np.repeat(units.astype(float), counts)
    for cv, cc in (([3.0, 8.0, 9.0], [1, 1, 1]), ([2.0, 4.0, 10.0], [12, 12, 12])):
        got = permutation_test(cv, cc, Pool.of_samples(retail), None, True, lattice=1.0, seed=0)
        want = _whole_programme(monkeypatch, cv, cc, Pool.of_samples(retail), None, True, lattice=1.0, seed=0)
        assert got.method == "permutation_exact" and got.p_value == pytest.approx(want.p_value, rel=1e-12)


def test_all_rows_of_the_programme_are_subset_sum_distributions():
    """subset_sum_distribution(all_rows=True) holds, for every size r, the distribution of a random r-subset:
    row k is what the single-row programme gives, and each row sums to 1 up to the pool's size (0 beyond)."""
    d, c = np.array([0, 1, 3, 4]), np.array([2, 1, 3, 1])  # 7 items
    table = subset_sum_distribution(d, c, 9, all_rows=True)
    assert table.shape == (10, 9 * 4 + 1)
    np.testing.assert_allclose(table.sum(axis=1), [1] * 8 + [0] * 2, atol=1e-12)
    for k in range(1, 8):
        np.testing.assert_allclose(table[k, : k * 4 + 1], subset_sum_distribution(d, c, k), atol=1e-15)


def _one_size_tails(table: RetailTable, clec: np.ndarray, upper: bool) -> np.ndarray:
    """RetailTable.tails as it was before cells of several sizes were computed together (one size, the
    knapsack by take_along_axis): the reference whose bits tails_of keeps."""
    from carrier_sla.engine.subset_sums import _log_comb

    cells, n = clec.shape
    v = (clec.astype(np.int64) - table.base) // table.step
    low = v.min(axis=1)
    own = v - low[:, None]
    target = v.sum(axis=1)
    j = np.arange(n + 1)
    logw = _log_comb(n, n) + _log_comb(table.n, n)[::-1]
    w = np.exp(logw - logw.max())
    w /= w.sum()
    coef = w / np.array([math.comb(n, x) for x in range(n + 1)], dtype=float)
    width = table.upper.shape[1] - 1
    tails = table.upper if upper else table.lower
    wide = n * int(own.max(initial=0)) + 1
    count = np.zeros((cells, n + 1, wide))
    count[:, 0, 0] = 1.0
    padded = np.zeros((cells, n, 2 * wide))
    a = np.arange(wide)
    for i in range(n):
        padded[:, : i + 1, wide:] = count[:, : i + 1, :]
        at = (wide + a[None, :] - own[:, i, None])[:, None, :]
        count[:, 1 : i + 2, :] += np.take_along_axis(padded[:, : i + 1, :], at, axis=2)
    rest = target[:, None, None] - a[None, None, :] - (j[None, :, None] * low[:, None, None])
    col = np.clip(rest, 0, width) if upper else np.clip(rest + 1, 0, width)
    beyond = tails[(n - j)[None, :, None], col]
    terms = np.cumsum(count * beyond, axis=2)[:, :, -1] * coef[None, :]
    return np.cumsum(terms, axis=1)[:, -1]


def test_cells_of_several_sizes_at_once_have_the_bits_of_each_size_alone_and_of_each_cell_alone():
    """RetailTable.tails_of on 120 cells of sizes 1 to 30 mixed (values 0 to 25 days, some sizes with one
    cell) gives each cell the same bits as the one-size computation of before on the cells of its size, as tails,
    as tails_of on that cell alone and in another order, for both tails; and its p-values are the whole programme's (to 1e-12)."""
    rng = np.random.default_rng(11)
    retail = rng.poisson(5, 3000)
    units, counts = np.unique(retail, return_counts=True)
    table = RetailTable(units, counts)
    sizes = rng.integers(1, 31, 120)
    cells = [np.sort(rng.integers(0, 26, n)) for n in sizes.tolist()]
    for upper in (True, False):
        mixed = table.tails_of(cells, upper)
        assert mixed.tolist() != table.tails_of(cells[::-1], upper).tolist()  # not all alike
        assert mixed.tolist() == table.tails_of(cells[::-1], upper)[::-1].tolist()
        for n in np.unique(sizes).tolist():
            at = np.flatnonzero(sizes == n)
            assert table.tails(np.stack([cells[i] for i in at]), upper).tolist() == mixed[at].tolist()
            assert _one_size_tails(table, np.stack([cells[i] for i in at]), upper).tolist() == mixed[at].tolist()
        assert [table.tails_of([c], upper)[0] for c in cells] == mixed.tolist()
    for c, p in zip(cells[:10], table.tails_of(cells[:10], True), strict=True):
        pooled_u, pooled_c = np.unique(np.concatenate([retail, c]), return_counts=True)
        dist = subset_sum_distribution(pooled_u - pooled_u[0], pooled_c, c.size)
        assert p == pytest.approx(math.fsum(dist[int(c.sum()) - c.size * int(pooled_u[0]) :].tolist()), rel=1e-12)


def test_subset_counts_of_rows_of_several_sizes_count_only_each_rows_own_values():
    """_subset_counts of rows (2, 2, 5), its size 3, and (4, ..) of size 1 (the rest padding): E[j, a] is the
    number of j-subsets of the row's own values summing to a, counted by hand."""
    from carrier_sla.engine.subset_sums import _subset_counts

    count = _subset_counts(np.array([[2, 2, 5], [4, 9, 9]]), np.array([3, 1]))
    first = np.zeros((4, 16))
    first[0, 0] = 1
    first[1, [2, 5]] = [2, 1]
    first[2, [4, 7]] = [1, 2]
    first[3, 9] = 1
    second = np.zeros((4, 28))
    second[0, 0] = second[1, 4] = 1
    assert count.shape == (2, 4, 28)
    assert count[0].tolist() == np.pad(first, ((0, 0), (0, 12))).tolist() and count[1].tolist() == second.tolist()
