"""The permutation test of means from value histograms (Qwest: CLEC samples of 30 or fewer), for many
CLEC cells against one retail pool at once.

- Pool               a retail histogram prepared once for the permutation tests of every cell against it.
- permutation_tests  the tests of many CLEC cells against one Pool: exact on a lattice (the pool's
                     subset-sum table, subset_sums.RetailTable, vectorised over the cells of one size),
                     all subsets counted for one or two CLEC values, else Monte Carlo with the draws of one
                     seeded stream shared by the cells of one size (monte_carlo.tail_counts).
- permutation_test   one cell: permutation_tests of that cell alone, so a cell's result is the same alone
                     or among others.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

import numpy as np

from carrier_sla.engine.monte_carlo import SUM_RTOL, tail_counts
from carrier_sla.engine.result import TestResult, make_result
from carrier_sla.engine.subset_sums import RetailTable, subset_sum_distribution

# A pooled value is on the lattice when value / lattice is within this relative distance of an integer.
LATTICE_RTOL = 1e-9


def _histogram(values: object, counts: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=float).ravel()
    c = np.asarray(counts).ravel()
    if v.shape != c.shape:
        raise ValueError(f"{name}: {v.size} values but {c.size} counts")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: values must be finite")
    if np.any(v < 0):
        raise ValueError(f"{name}: negative values do not occur in a parity measure (min {v.min()!r})")
    cf = c.astype(float)
    if not np.all(np.isfinite(cf)) or np.any(cf < 0) or np.any(cf != np.floor(cf)):
        raise ValueError(f"{name}: counts must be non-negative integers")
    keep = cf > 0
    return v[keep], c[keep].astype(np.int64)


def _lattice_units(values: np.ndarray, lattice: float) -> np.ndarray | None:
    """values / lattice as int64 when every value is an integer multiple of the lattice, else None."""
    u = values / lattice
    r = np.rint(u)
    if np.any(np.abs(u - r) > LATTICE_RTOL * np.maximum(1.0, np.abs(u))) or (r.size and r.max() >= 2.0**53):
        return None
    return r.astype(np.int64)


def _merge(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (ascending) and their summed counts."""
    uniq, inv = np.unique(values, return_inverse=True)
    pooled = np.zeros(uniq.size, dtype=np.int64)
    np.add.at(pooled, inv, counts)
    return uniq, pooled


def _add(
    values: np.ndarray, counts: np.ndarray, more: np.ndarray, more_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ascending values and counts with a few more distinct ascending values added: what
    _merge gives on both together, by insertion instead of a sort of the whole pool."""
    at = np.searchsorted(values, more)
    present = at < values.size
    present[present] = values[at[present]] == more[present]
    new = ~present
    if not new.any():
        counts = counts.copy()
        counts[at] += more_counts  # distinct values: distinct positions
        return values, counts
    counts = _insert(counts, at[new], more_counts[new])
    np.add.at(counts, at[present] + np.searchsorted(at[new], at[present], side="right"), more_counts[present])
    return _insert(values, at[new], more[new]), counts


def _insert(a: np.ndarray, at: np.ndarray, x: np.ndarray) -> np.ndarray:
    """np.insert(a, at, x) for a few ascending positions `at`, as one copy of a (np.insert makes several)."""
    out = np.empty(a.size + x.size, dtype=np.result_type(a, x))
    src = dst = 0
    for i, pos in enumerate(at.tolist()):
        out[dst : dst + pos - src] = a[src:pos]
        dst += pos - src
        out[dst] = x[i]
        dst, src = dst + 1, pos
    out[dst:] = a[src:]
    return out


class Pool:
    """A retail value histogram, checked and merged once, that many CLEC cells are tested against
    (a retail analog serves every CLEC's cell of its state, product and submeasure): each test then
    adds its few CLEC values to it instead of sorting the pooled values again, and Monte Carlo draws
    from `expanded` (the values one per record, ascending) made once. Not thread-safe until `expanded`
    has been built: build it before sharing."""

    __slots__ = ("_below", "_expanded", "_lock", "_tables", "_units", "counts", "n", "values")

    def __init__(self, values: object, counts: object, distinct: bool = False):
        """values and counts: a retail histogram (checked here); distinct: its values are already distinct
        and ascending (no merge needed)."""
        checked = _histogram(values, counts, "retail")
        self.values, self.counts = checked if distinct else _merge(*checked)
        self.n = int(self.counts.sum())
        self._units: dict[float, np.ndarray | None] = {}
        self._below: np.ndarray | None = None
        self._expanded: np.ndarray | None = None
        self._tables: dict[tuple[float, int], RetailTable | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def of_samples(cls, samples: object) -> Pool:
        """The pool of a sample of values (one per record), its expansion built (from the sample when sorted)."""
        sample = np.asarray(samples, dtype=float).ravel()
        ascending = bool(np.all(sample[1:] >= sample[:-1]))  # as CellSamples gives them: no sort needed
        if ascending:
            first = np.flatnonzero(np.concatenate([[True], sample[1:] != sample[:-1]])) if sample.size else sample[:0]
            pool = cls(sample[first.astype(np.intp)], np.diff(np.append(first, sample.size)), distinct=True)
        else:
            pool = cls(*np.unique(sample, return_counts=True), distinct=True)
        pool._expanded = sample if ascending else np.repeat(pool.values, pool.counts)
        return pool

    def expanded(self) -> np.ndarray:
        """The values one per record, ascending (np.repeat(values, counts)), built once."""
        if self._expanded is None:
            self._expanded = np.repeat(self.values, self.counts)
        return self._expanded

    def below(self) -> np.ndarray:
        """below[i]: the records of the values before values[i] (i = 0 .. size), made once."""
        if self._below is None:
            self._below = np.concatenate([[0], np.cumsum(self.counts)])
        return self._below

    def units(self, lattice: float) -> np.ndarray | None:
        """The distinct values in lattice units (int64), or None when some value is off the lattice; made once."""
        if lattice not in self._units:
            self._units[lattice] = _lattice_units(self.values, lattice)
        return self._units[lattice]

    def table(self, lattice: float, max_cells: int) -> RetailTable | None:
        """The pool's subset-sum table on a lattice (subset_sums.RetailTable), made once on first use (by
        whichever thread asks first: the same table either way), or None when the values are off the
        lattice or the table would exceed max_cells."""
        with self._lock:
            key = (lattice, max_cells)
            if key not in self._tables:
                units = self.units(lattice)
                self._tables[key] = None if units is None else RetailTable.of(units, self.counts, max_cells)
            return self._tables[key]


def _small_subset_tail(items: np.ndarray, pooled: np.ndarray, n: int, observed: float, upper: bool) -> float:
    """Exact share of the n-subsets (n = 1 or 2) of the pool whose sum is at least as bad as observed.

    Pool: distinct ascending `items` with `pooled` counts, N items in all. For n = 2, the ordered
    pairs of two different items (i != j) with v_i + v_j at least as bad, halved, over C(N, 2).
    Float sums within a relative SUM_RTOL of the observed count as ties (as in Monte Carlo).
    """
    n_pool = int(pooled.sum())
    tol = 0.0 if items.dtype.kind == "i" else SUM_RTOL * max(1.0, abs(observed))
    below = np.concatenate([[0], np.cumsum(pooled)])  # items strictly before each position

    def at_least_as_bad(x: np.ndarray) -> np.ndarray:
        """Pool items with a value at least as bad as x (>= x - tol when upper, <= x + tol otherwise)."""
        if upper:
            return n_pool - below[np.searchsorted(items, x - tol, side="left")]
        return below[np.searchsorted(items, x + tol, side="right")]

    if n == 1:
        return float(at_least_as_bad(np.array([observed]))[0]) / n_pool
    partners = at_least_as_bad(observed - items)
    self_pairs = (2 * items >= observed - tol) if upper else (2 * items <= observed + tol)
    ordered = int(np.dot(pooled, partners)) - int(np.dot(pooled, self_pairs))
    return (ordered / 2) / (n_pool * (n_pool - 1) / 2)


def permutation_test(
    clec_values: object,
    clec_counts: object,
    retail_values: object,
    retail_counts: object,
    worse_is_higher: bool,
    *,
    lattice: float | None,
    resamples: int = 100_000,
    seed: int,
    max_exact_cells: int = 20_000_000,
    sequential_h: int | None = None,
) -> TestResult:
    """One-tailed permutation test of means from value histograms (Qwest: CLEC samples of 30 or fewer).

    Pool the CLEC and retail values. Under parity the CLEC's n values are a uniformly random
    n-subset of the pool, and
        p = P(sum of a random n-subset >= observed CLEC sum)   when worse_is_higher,
        p = P(sum of a random n-subset <= observed CLEC sum)   otherwise.
    Exact when `lattice` is given, every pooled value is an integer multiple of it (relative
    tolerance 1e-9) and the dynamic programme over distinct values needs at most `max_exact_cells`
    cells, counted as (k + 1) * (k * span + 1) * distinct values with k = min(n, N - n) and span the
    value range in lattice steps (after dividing by their common step); also exact, by counting every
    subset, for one or two CLEC values. Otherwise Monte Carlo: random n-subsets of the pool (the retail
    values, then the CLEC's) drawn without replacement with numpy's default_rng(seed) (see
    monte_carlo.tail_counts), b = resampled sums at least as bad as observed (ties count):
        without sequential_h:  `resamples` draws,  p = (b + 1) / (resamples + 1);
        with sequential_h = h (Besag and Clifford 1991): draws stop at the h-th sum at least as bad,
            p = h / L after L draws, or else after `resamples` draws, p = (b + 1) / (resamples + 1).
    Both are valid p-values (P(p <= a) <= a under parity). resamples records the draws L counted.
    A pool whose values are all equal gives p = 1. statistic = the CLEC sum.
    `retail_values` may be a Pool prepared once for many cells, with retail_counts None.
    The same as permutation_tests on this cell alone with `seed` as the seed of its size.
    """
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:  # type: ignore[call-overload]
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    pool = retail_values if isinstance(retail_values, Pool) else Pool(retail_values, retail_counts)
    [result] = permutation_tests(
        [(clec_values, clec_counts)],
        pool,
        worse_is_higher,
        lattice=lattice,
        resamples=resamples,
        seeds=lambda n: int(seed),
        max_exact_cells=max_exact_cells,
        sequential_h=sequential_h,
    )
    if isinstance(result, ValueError):
        raise result
    return result


def permutation_tests(
    clec: Sequence[tuple[object, object]],
    pool: Pool,
    worse_is_higher: bool,
    *,
    lattice: float | None,
    resamples: int = 100_000,
    seeds: Callable[[int], int],
    max_exact_cells: int = 20_000_000,
    sequential_h: int | None = None,
) -> list[TestResult | ValueError]:
    """The permutation test (see permutation_test) of each CLEC cell, (values, counts), against `pool`: a
    TestResult, or the ValueError saying why the cell's test is undefined. ValueError (raised) for
    arguments that are wrong for every cell.

    The cells of one size n share their work. On a lattice the pool's subset-sum table (Pool.table)
    serves them all, and their p-values come from one vectorised pass (RetailTable.tails). Monte Carlo
    cells of size n draw from one stream seeded by seeds(n) (the seed each records): every draw is a
    random n-subset of each cell's own pool, so each cell's p-value is exactly the one it gets alone with
    that seed (common random numbers; cells of one size are compared with the same resampled subsets).
    """
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if sequential_h is not None and not 1 <= sequential_h <= resamples:
        raise ValueError(f"sequential_h must be between 1 and resamples ({resamples}), got {sequential_h}")
    if lattice is not None and not (math.isfinite(lattice) and lattice > 0):
        raise ValueError(f"lattice must be positive and finite, got {lattice!r}")
    out: list[TestResult | ValueError | None] = [None] * len(clec)
    tables: dict[int, list[tuple[int, np.ndarray, float]]] = {}  # n -> (cell, its values in units, its sum)
    drawn: dict[tuple[int, bool], list[tuple[int, np.ndarray, float, float, str]]] = {}
    cells = _Cells.of(clec, out)
    pool_units = pool.units(lattice) if lattice is not None and cells.index.size else None
    table = pool.table(lattice, max_exact_cells) if lattice is not None and pool_units is not None else None
    on_lattice, units = cells.units(lattice) if pool_units is not None else (np.zeros(cells.index.size, bool), None)
    on_grid = on_lattice.copy()  # before the overflow check
    served = np.zeros(cells.index.size, dtype=bool)
    if on_lattice.any() and units is not None and pool_units is not None:
        top = np.maximum(cells.reduce(np.maximum, units), int(pool_units.max(initial=0)))
        on_lattice &= top.astype(float) * (pool.n + cells.n) < 2.0**62  # else Monte Carlo on floats, below
        if table is not None:
            low, high = cells.reduce(np.minimum, units), cells.reduce(np.maximum, units)
            on_step = ~cells.reduce(np.logical_or, (units - table.base) % table.step != 0)
            narrow = cells.n * ((high - low) // table.step) <= table.rows * table.span  # no wider than the table
            served = on_lattice & on_step & narrow & (cells.n <= table.rows) & (cells.n <= pool.n)
    single = pool.values.size == 1
    for at, i in enumerate(cells.index.tolist()):
        cv, cc = cells.histograms[at]
        n, statistic = int(cells.n[at]), float(cells.statistic[at])
        if single and cells.low[at] == cells.high[at] == pool.values[0]:
            out[i] = _all_equal(statistic)
        elif served[at]:
            tables.setdefault(n, []).append((i, np.repeat(cells.slice(units, at), cc), statistic))
        elif on_lattice[at]:
            assert lattice is not None and pool_units is not None
            found = _on_lattice(
                pool, pool_units, cells.slice(units, at), cc, statistic, worse_is_higher, max_exact_cells
            )
            if isinstance(found, TestResult):
                out[i] = found
            else:
                drawn.setdefault((n, True), []).append((i, *found))
        elif n == 1:
            out[i] = _one_of_pool(pool, float(cv[0]), worse_is_higher)
        elif n == 2:  # two CLEC values: every pair can be counted, exactly and at once
            items, pooled = _add(pool.values, pool.counts, cv, cc)
            p = _small_subset_tail(items, pooled, n, statistic, worse_is_higher)
            out[i] = make_result("permutation_exact", p, statistic, note="all subsets of one or two counted")
        else:
            note = "no lattice given: Monte Carlo"
            if lattice is not None:
                note = f"values are not all multiples of the lattice {lattice!r}: Monte Carlo"
                if on_grid[at]:
                    note = "lattice sums would overflow 64-bit integers: Monte Carlo on floats"
            drawn.setdefault((n, False), []).append((i, np.repeat(cv, cc), statistic, statistic, note))

    if tables:  # every size at once: a cell's p-value is the same among cells of other sizes
        assert table is not None
        members = [m for sized in tables.values() for m in sized]
        p_values = table.tails_of([m[1] for m in members], worse_is_higher)
        for (i, _units, statistic), p in zip(members, p_values.tolist(), strict=True):
            out[i] = make_result("permutation_exact", p, statistic)
    for (n, in_units), sampled in drawn.items():
        out_cells = _monte_carlo(
            pool, pool_units if in_units else None, n, sampled, worse_is_higher, resamples, seeds(n), sequential_h
        )
        for i, result in out_cells:
            out[i] = result
    return [r for r in out if r is not None]


def _all_equal(statistic: float) -> TestResult:
    return make_result("permutation_exact", 1.0, statistic, note="all pooled values are equal: every subset ties")


def _on_lattice(
    pool: Pool,
    pool_units: np.ndarray,
    units: np.ndarray,
    cc: np.ndarray,
    statistic: float,
    upper: bool,
    max_exact_cells: int,
) -> TestResult | tuple[np.ndarray, float, float, str]:
    """A lattice cell that the pool's table does not serve: the whole dynamic programme when it needs at
    most max_exact_cells cells, else all pairs counted (one or two values), else what Monte Carlo needs
    (its values in units, their sum, the statistic, the note)."""
    n = int(cc.sum())
    items, pooled = _add(pool_units, pool.counts, *_merge(units, cc))
    if items.size == 1:
        return _all_equal(statistic)
    k = min(n, pool.n)  # taking the complement when n > N keeps the subset size, and the work, small
    base = int(items[0])
    d = items - base
    step = int(np.gcd.reduce(d))
    d //= step
    cells = (k + 1) * (k * int(d[-1]) + 1) * items.size
    if cells <= max_exact_cells:
        return make_result("permutation_exact", _programme(d, pooled, n, k, units, cc, base, step, upper), statistic)
    if n <= 2:
        p = _small_subset_tail(items, pooled, n, int(np.dot(units, cc)), upper)
        return make_result("permutation_exact", p, statistic, note="all subsets of one or two counted")
    note = f"exact distribution needs {cells:,} cells, above the limit of {max_exact_cells:,}: Monte Carlo"
    return np.repeat(units, cc), float(np.dot(units, cc)), statistic, note


def _one_of_pool(pool: Pool, value: float, upper: bool) -> TestResult:
    """The exact test of a single CLEC value x: the share of the N + 1 pooled values at least as bad as x
    (x itself included; values within SUM_RTOL of x tie)."""
    tol = SUM_RTOL * max(1.0, abs(value))
    below = pool.below()
    if upper:
        bad = pool.n - int(below[np.searchsorted(pool.values, value - tol, side="left")]) + 1
    else:
        bad = int(below[np.searchsorted(pool.values, value + tol, side="right")]) + 1
    return make_result("permutation_exact", bad / (pool.n + 1), value, note="all subsets of one or two counted")


class _Cells:
    """The valid CLEC histograms of a batch of cells, concatenated, with per-cell figures."""

    def __init__(self, index: np.ndarray, histograms: list[tuple[np.ndarray, np.ndarray]]):
        self.index = index  # positions of the valid cells in the batch
        self.histograms = histograms
        sizes = np.array([h[0].size for h in histograms], dtype=np.int64)
        self.starts = np.cumsum(sizes) - sizes
        self.values = np.concatenate([h[0] for h in histograms]) if histograms else np.zeros(0)
        self.counts = np.concatenate([h[1] for h in histograms]) if histograms else np.zeros(0, np.int64)
        self.n = self.reduce(np.add, self.counts)
        self.statistic = np.array([float(np.dot(v, c)) for v, c in histograms])
        self.low, self.high = self.reduce(np.minimum, self.values), self.reduce(np.maximum, self.values)
        self.off = np.zeros(self.values.size, dtype=bool)

    @classmethod
    def of(cls, clec: Sequence[tuple[object, object]], out: list) -> _Cells:
        """The valid cells of `clec`; each invalid one gets its ValueError in `out`."""
        vs = [np.asarray(v, dtype=float).ravel() for v, _ in clec]
        cs = [np.asarray(c).ravel() for _, c in clec]
        if vs and all(v.shape == c.shape and v.size for v, c in zip(vs, cs, strict=True)):
            v, c = np.concatenate(vs), np.concatenate(cs)
            if np.isfinite(v).all() and (v >= 0).all() and c.dtype.kind in "iu" and (c > 0).all():
                histograms = [(x, y.astype(np.int64, copy=False)) for x, y in zip(vs, cs, strict=True)]
                return cls(np.arange(len(clec), dtype=np.int64), histograms)  # all valid, as _histogram finds
        index, histograms = [], []
        for i, (values, counts) in enumerate(clec):
            try:
                cv, cc = _histogram(values, counts, "clec")
            except ValueError as exc:
                out[i] = exc
                continue
            if cc.size == 0:
                out[i] = ValueError("the CLEC histogram is empty: nothing to test")
                continue
            index.append(i)
            histograms.append((cv, cc))
        return cls(np.array(index, dtype=np.int64), histograms)

    def reduce(self, ufunc: np.ufunc, x: np.ndarray) -> np.ndarray:
        """ufunc over each cell's entries of x (one per distinct value)."""
        return ufunc.reduceat(x, self.starts) if self.starts.size else x[:0]

    def slice(self, x: np.ndarray | None, at: int) -> np.ndarray:
        assert x is not None
        return x[self.starts[at] : self.starts[at] + self.histograms[at][0].size]

    def units(self, lattice: float | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(whether each cell's values are all on the lattice, every value in lattice units as int64)."""
        if lattice is None or not self.values.size:
            return np.zeros(self.index.size, dtype=bool), None
        u = self.values / lattice
        r = np.rint(u)
        self.off = (np.abs(u - r) > LATTICE_RTOL * np.maximum(1.0, np.abs(u))) | (r >= 2.0**53)
        return ~self.reduce(np.logical_or, self.off), np.where(self.off, 0, r).astype(np.int64)


def _programme(
    d: np.ndarray,
    pooled: np.ndarray,
    n: int,
    k: int,
    units: np.ndarray,
    cc: np.ndarray,
    base: int,
    step: int,
    upper: bool,
) -> float:
    """The exact tail from the whole dynamic programme over the pooled distinct values d (shifted, reduced
    units, counts `pooled`): P(sum of a random n-subset at least as bad as the CLEC's), through the
    complement (a random (N - n)-subset of the rest) when k < n."""
    target = (int(np.dot(units, cc)) - n * base) // step  # the CLEC sum in shifted, reduced units
    if k < n:
        target = int(np.dot(d, pooled)) - target
        upper = not upper
    dist = subset_sum_distribution(d, pooled, k)
    tail = dist[max(target, 0) :] if upper else dist[: max(target + 1, 0)]
    return math.fsum(tail.tolist())


def _monte_carlo(
    pool: Pool,
    pool_units: np.ndarray | None,
    n: int,
    members: list[tuple[int, np.ndarray, float, float, str]],
    worse_is_higher: bool,
    resamples: int,
    seed: int,
    sequential_h: int | None,
) -> list[tuple[int, TestResult]]:
    """The Monte Carlo tests of the cells of size n (cell, its n values, observed sum, statistic, note),
    sharing one stream of draws seeded by `seed`: on lattice units when pool_units is given, else floats."""
    k = min(n, pool.n)  # taking the complement when n > N keeps the subset size, and the work, small
    own = np.stack([m[1] for m in members])
    observed = np.array([m[2] for m in members])
    items = pool.values if pool_units is None else pool_units
    b, drawn = tail_counts(
        items,
        pool.counts,
        own,
        k,
        observed,
        worse_is_higher,
        k < n,
        resamples,
        seed,
        sequential_h,
        pool.expanded if pool_units is None else None,
    )
    results = []
    for (i, _own, _observed, statistic, note), hits, draws in zip(members, b.tolist(), drawn.tolist(), strict=True):
        if sequential_h is None:
            p = (hits + 1) / (resamples + 1)
        elif hits == sequential_h:
            p = hits / draws
            note = _join(
                note, f"sequential Monte Carlo: stopped after h={hits} exceedances at L={draws:,} draws, p = h/L"
            )
        else:
            p = (hits + 1) / (resamples + 1)
            note = _join(
                note,
                f"sequential Monte Carlo: {hits} exceedances, fewer than h={sequential_h}, "
                f"in the maximum of {resamples:,} draws, p = (b+1)/(B+1)",
            )
        results.append((i, make_result("permutation_monte_carlo", p, statistic, resamples=draws, seed=seed, note=note)))
    return results


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
