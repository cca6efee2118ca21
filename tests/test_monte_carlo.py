"""Sequential Monte Carlo for the permutation test (Besag and Clifford 1991): where it stops, the p-value
and the draws it records, reproducibility from the seed, and validity under parity."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from carrier_sla.engine import monte_carlo
from carrier_sla.engine.exact import Pool, permutation_test


def _cell(seed: int, n: int = 8, retail: int = 4000, shift: float = 0.0) -> tuple[np.ndarray, ...]:
    """A CLEC histogram of n repair-like hours (second resolution) and a retail one, both gamma-shaped."""
    rng = np.random.default_rng(seed)
    clec = np.round((rng.gamma(0.8, 6.0, n) + shift) * 3600) / 3600
    pool = np.round(rng.gamma(0.8, 6.0, retail) * 3600) / 3600
    return (*np.unique(clec, return_counts=True), *np.unique(pool, return_counts=True))


def _stream_sums(items, counts, k, resamples, seed):
    """Every resampled subset sum of the sequential schedule, drawn batch by batch as tail_count draws them
    (the same rng calls), but summed here independently and never stopped."""
    rng = np.random.default_rng(seed)
    chunk = max(1, monte_carlo._CHUNK_POSITIONS // k)
    pool = np.repeat(items, counts)
    sums = []
    for _start, rows in monte_carlo._batches(resamples, chunk, sequential=True):
        pos = monte_carlo._subset_positions(rng, int(counts.sum()), k, rows)
        sums.append(pool[pos].sum(axis=0))
    return np.concatenate(sums)


@pytest.mark.parametrize("h", [1, 7, 300])
def test_sequential_stops_at_the_h_th_sum_at_least_as_bad_in_the_stream(h):
    """tail_count stops at exactly the draw a draw-by-draw loop over the same random stream would stop at:
    the L-th resampled sum is at least as bad and it is the h-th such among the first L."""
    cv, cc, rv, rc = _cell(3)
    items, inverse = np.unique(np.concatenate([cv, rv]), return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([cc, rc])).astype(np.int64)
    observed = float(np.dot(cv, cc))
    k = int(cc.sum())
    b, drawn = monte_carlo.tail_count(items, counts, k, observed, True, 0.0, False, 50_000, 17, stop_at=h)
    bad = _stream_sums(items, counts, k, 50_000, 17) >= observed - monte_carlo.SUM_RTOL * observed
    assert b == h and bad[drawn - 1] and int(bad[:drawn].sum()) == h
    # without a stop the same schedule counts every draw
    assert monte_carlo.tail_count(items, counts, k, observed, True, 0.0, False, 50_000, 17, stop_at=10**9) == (
        int(bad.sum()),
        50_000,
    )


def test_an_early_stop_records_h_over_l_and_its_draws():
    """A cell at parity stops early: p = h / L, resamples = L (the draws counted, below the maximum), the seed,
    and a note naming the rule, h and L."""
    cv, cc, rv, rc = _cell(5)
    r = permutation_test(cv, cc, rv, rc, True, lattice=None, resamples=100_000, seed=42, sequential_h=20)
    assert r.method == "permutation_monte_carlo" and r.seed == 42
    assert r.resamples is not None and 20 <= r.resamples < 100_000
    assert r.p_value == 20 / r.resamples
    assert f"stopped after h=20 exceedances at L={r.resamples:,} draws" in r.note
    assert r.note.startswith("no lattice given: Monte Carlo; sequential Monte Carlo")


def test_a_cell_without_h_exceedances_draws_the_maximum_and_records_b_plus_one_over_b_plus_one():
    """A CLEC far worse than retail never sees h resampled sums as bad: all `resamples` draws, p = (b+1)/(B+1)."""
    cv, cc, rv, rc = _cell(6, shift=30.0)
    r = permutation_test(cv, cc, rv, rc, True, lattice=None, resamples=20_000, seed=1, sequential_h=20)
    assert r.resamples == 20_000
    b = round(r.p_value * 20_001) - 1
    assert 0 <= b < 20 and r.p_value == (b + 1) / 20_001
    assert f"{b} exceedances, fewer than h=20, in the maximum of 20,000 draws" in r.note


def test_without_sequential_every_draw_is_made():
    """No sequential_h: the fixed test of `resamples` draws, as before (p = (b+1)/(B+1), no stopping note)."""
    cv, cc, rv, rc = _cell(5)
    r = permutation_test(cv, cc, rv, rc, True, lattice=None, resamples=30_000, seed=42)
    assert r.resamples == 30_000 and "sequential" not in r.note
    assert round(r.p_value * 30_001) == pytest.approx(r.p_value * 30_001, abs=1e-6)


def test_sequential_is_reproducible_from_the_seed_and_independent_of_threads_and_gathering(monkeypatch):
    """The same seed gives the identical result, on one thread or several, however the values are gathered and
    clashes found; another seed gives another stopping draw."""
    cells = [_cell(s, n=3 + s % 25) for s in range(12)]

    def run(seed_offset: int = 0):
        return [
            permutation_test(*c, True, lattice=None, resamples=100_000, seed=100 + i + seed_offset, sequential_h=30)
            for i, c in enumerate(cells)
        ]

    serial = run()
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(
            pool.map(
                lambda ic: permutation_test(
                    *ic[1], True, lattice=None, resamples=100_000, seed=100 + ic[0], sequential_h=30
                ),
                list(enumerate(cells)),
            )
        )
    assert threaded == serial
    monkeypatch.setattr(monte_carlo, "_GATHER_POSITIONS", 1 << 9)
    monkeypatch.setattr(monte_carlo, "_PAIRWISE_MAX_K", 1)
    assert run() == serial
    other = run(seed_offset=1000)
    assert [r.resamples for r in other] != [r.resamples for r in serial]


def test_a_shared_pool_gives_the_same_result_as_the_retail_histogram():
    """Testing against a Pool prepared once (as verdicts does for every cell of a retail analog) gives what the
    retail histogram gives, sequential or not, exact or Monte Carlo."""
    cv, cc, rv, rc = _cell(8, n=12)
    pool = Pool.of_samples(np.repeat(rv, rc))
    for kwargs in ({"sequential_h": 25}, {"resamples": 5_000}, {"lattice": 1 / 3600, "max_exact_cells": 10}):
        args = {"lattice": None, "seed": 3, **kwargs}
        assert permutation_test(cv, cc, pool, None, True, **args) == permutation_test(cv, cc, rv, rc, True, **args)
    days = np.random.default_rng(1).poisson(4, 3000).astype(float)
    dv, dc = np.unique(days, return_counts=True)
    exact_shared = permutation_test([2.0, 9.0, 5.0], [1, 2, 1], Pool.of_samples(days), None, True, lattice=1.0, seed=0)
    assert exact_shared.method == "permutation_exact"
    assert exact_shared == permutation_test([2.0, 9.0, 5.0], [1, 2, 1], dv, dc, True, lattice=1.0, seed=0)


def test_sequential_h_must_lie_between_one_and_resamples():
    """h = 0 or h above the maximum of draws is refused."""
    cv, cc, rv, rc = _cell(1)
    for h in (0, 1001):
        with pytest.raises(ValueError, match="sequential_h must be between 1 and resamples"):
            permutation_test(cv, cc, rv, rc, True, lattice=None, resamples=1000, seed=1, sequential_h=h)


def test_sequential_p_values_are_valid_under_parity():
    """With CLEC and retail values from one distribution, P(p <= a) is at most a (within three binomial standard
    errors) at the thresholds plans use, and close to Besag and Clifford's h / ceil(h / a), which a continuous
    statistic attains exactly; the share of early stops and the draws saved are what the rule promises."""
    h, most, runs = 10, 2_000, 1_500
    rng = np.random.default_rng(2026)
    p = np.empty(runs)
    drawn = np.empty(runs)
    for i in range(runs):
        values = rng.gamma(0.8, 6.0, 305)  # continuous: no ties
        r = permutation_test(values[:5], np.ones(5), values[5:], np.ones(300), True, lattice=None,
                             resamples=most, seed=i, sequential_h=h)  # fmt: skip
        p[i], drawn[i] = r.p_value, r.resamples
    for a in (0.01, 0.05, 0.1, 0.149, 0.2, 0.5):
        share, exact = float(np.mean(p <= a)), h / math.ceil(h / a)
        se = math.sqrt(a * (1 - a) / runs)
        assert share <= a + 3 * se, a
        assert abs(share - exact) <= 3 * se + 1 / runs, a
    assert np.mean(drawn < most) > 0.99  # only p below h / most = 0.005 draws the maximum
    assert np.median(drawn) < 4 * h  # half the cells have p above 0.5, stopping near 2 h


@pytest.mark.parametrize("k", [2, 3, 8, 16, 30])
@pytest.mark.parametrize("rows", [5, 256, 600, 2048])
def test_clashing_columns_are_the_same_by_pairs_of_rows_and_by_sorting(k, rows, monkeypatch):
    """_clashing finds exactly the columns holding a value twice (planted in every seventh column, at rows
    chosen at random), whether it compares pairs of rows (k - 1 shifted comparisons) or sorts each column."""
    rng = np.random.default_rng(k * rows)
    pos = rng.integers(0, 10**6, size=(k, rows), dtype=np.int32)
    planted = np.arange(0, rows, 7)
    i, j = rng.integers(0, k, size=(2, planted.size))
    j = np.where(i == j, (i + 1) % k, j)
    pos[j, planted] = pos[i, planted]
    expected = [c for c in range(rows) if len(set(pos[:, c].tolist())) < k]
    assert set(planted.tolist()) <= set(expected)
    assert monte_carlo._clashing(pos).tolist() == expected
    monkeypatch.setattr(monte_carlo, "_PAIRWISE_MAX_K", 1)  # sorting only
    assert monte_carlo._clashing(pos).tolist() == expected


def test_cells_stopping_in_one_batch_record_the_draws_they_record_alone():
    """Twelve cells of one pool and size share a stream; several stop within the same batch (h = 3, 40): each
    records the hits and draws it records alone (b = h and L its own stopping draw), whatever the others."""
    _cv, _cc, rv, rc = _cell(11, n=6, retail=3000)
    rng = np.random.default_rng(2)
    own = np.sort(np.round(rng.gamma(0.8, 6.0, (12, 6)) * 3600) / 3600, axis=1)
    observed = own.sum(axis=1)
    for h in (3, 40):
        b, drawn = monte_carlo.tail_counts(rv, rc, own, 6, observed, True, False, 20_000, 9, stop_at=h)
        alone = [monte_carlo.tail_counts(rv, rc, own[c : c + 1], 6, observed[c : c + 1], True, False, 20_000, 9, h)
                 for c in range(12)]  # fmt: skip
        assert b.tolist() == [int(x[0][0]) for x in alone] and drawn.tolist() == [int(x[1][0]) for x in alone]
        assert (b == h).sum() >= 2 and len(set(drawn[b == h].tolist())) >= 2  # stops at different draws
