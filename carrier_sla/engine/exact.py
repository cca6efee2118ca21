"""Exact and resampling parity tests for small samples (domain.md, "Standards and statistics").

Every test is one-tailed and oriented the same way: the p-value is the probability, under parity,
of a CLEC result at least as bad as the one observed. `worse_is_higher` says which direction is
bad: True for intervals, durations, repeat and trouble rates; False for "percent met" measures.

- fisher_exact     proportions: hypergeometric tail of the CLEC hit count (California: all percentages).
- binomial_rate    rates: CLEC count given the total count ~ Binomial(T, base_clec / (base_clec + base_retail)).
- permutation_test means, small CLEC samples (Qwest: 30 or fewer): the share of n_clec-subsets of the
                   pooled CLEC + retail values whose sum is at least as bad as the CLEC's. Exact from the
                   value histogram when the values sit on a lattice (subset_sums), else Monte Carlo with
                   a recorded seed, sequential (Besag and Clifford) when the plan gives h.
- Pool             a retail histogram prepared once for the permutation tests of every cell against it.
- modified_t       California: t on log-transformed values, retail variance only, df = n_retail - 1.
- seed_for         the per-cell Monte Carlo seed, derived from the run seed and the cell key.

All functions are pure and return a TestResult with every number behind the decision.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from dataclasses import dataclass

import numpy as np
from scipy import special, stats  # stats: hypergeom (Fisher's exact test)

from carrier_sla.engine.monte_carlo import SUM_RTOL, tail_count
from carrier_sla.engine.subset_sums import RetailTable, subset_sum_distribution

# A pooled value is on the lattice when value / lattice is within this relative distance of an integer.
LATTICE_RTOL = 1e-9


@dataclass(frozen=True)
class TestResult:
    """Everything behind one exact or resampling parity test."""

    __test__ = False  # not a pytest test class, despite the name

    method: str  # "fisher_exact" | "binomial_exact" | "permutation_exact" | "permutation_monte_carlo" | "modified_t"
    p_value: float  # one-tailed: probability under parity of a CLEC result at least as bad as observed
    statistic: float  # t for modified_t; the CLEC sum for permutation; the CLEC count for fisher/binomial
    z_equivalent: float  # inverse normal of 1 - p, with p clipped to [1e-300, 1]
    df: float | None = None
    resamples: int | None = None
    seed: int | None = None  # the seed actually used for Monte Carlo
    note: str = ""  # e.g. why Monte Carlo instead of exact


def z_equivalent(p: float) -> float:
    """Inverse normal of 1 - p, computed as -ndtri(p) so that small p keep their precision.

    p is clipped to [1e-300, 1] first: p = 0 (an underflowed tail) gives 37.04, p = 1 gives -inf.
    """
    return float(-special.ndtri(min(max(p, 1e-300), 1.0)))


def _result(method: str, p: float, statistic: float, **extra: object) -> TestResult:
    p = min(max(float(p), 0.0), 1.0)
    return TestResult(method=method, p_value=p, statistic=float(statistic), z_equivalent=z_equivalent(p), **extra)  # type: ignore[arg-type]


def _count(x: object, name: str) -> int:
    """A non-negative integer count (numpy integers and integral floats accepted)."""
    if isinstance(x, bool) or not float(x).is_integer() or float(x) < 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a non-negative integer, got {x!r}")
    return int(x)  # type: ignore[call-overload]


# --- proportions and rates --------------------------------------------------------------------


def fisher_exact(clec_hits: int, clec_n: int, retail_hits: int, retail_n: int, worse_is_higher: bool) -> TestResult:
    """One-tailed Fisher exact test for a proportion (California: all percentages).

    Pool N = clec_n + retail_n items of which K = clec_hits + retail_hits are hits; the CLEC's
    clec_n items are a random draw, so X ~ Hypergeometric(N, K, clec_n) and
        p = P(X >= clec_hits)   when worse_is_higher (e.g. percent missed),
        p = P(X <= clec_hits)   otherwise (e.g. percent met).
    Equals scipy.stats.fisher_exact on [[clec_hits, clec_misses], [retail_hits, retail_misses]]
    with alternative "greater" / "less". statistic = clec_hits.
    """
    a, n1 = _count(clec_hits, "clec_hits"), _count(clec_n, "clec_n")
    c, n2 = _count(retail_hits, "retail_hits"), _count(retail_n, "retail_n")
    if n1 == 0:
        raise ValueError("clec_n is 0: no CLEC items to test")
    if a > n1 or c > n2:
        raise ValueError(f"hits exceed their totals: clec {a}/{n1}, retail {c}/{n2}")
    total, hits = n1 + n2, a + c
    if worse_is_higher:
        p = stats.hypergeom.sf(a - 1, total, hits, n1)
    else:
        p = stats.hypergeom.cdf(a, total, hits, n1)
    return _result("fisher_exact", p, a)


def binomial_rate(
    clec_count: int, clec_base: float, retail_count: int, retail_base: float, worse_is_higher: bool = True
) -> TestResult:
    """Exact conditional binomial test for a rate (e.g. troubles per line; California: rates).

    Given the total count T = clec_count + retail_count, under parity the CLEC count is
    X ~ Binomial(T, q) with q = clec_base / (clec_base + retail_base), and
        p = P(X >= clec_count) when worse_is_higher, P(X <= clec_count) otherwise.
    T = 0 gives p = 1. statistic = clec_count.
    """
    x, y = _count(clec_count, "clec_count"), _count(retail_count, "retail_count")
    for name, base in (("clec_base", clec_base), ("retail_base", retail_base)):
        if not (math.isfinite(base) and base > 0):
            raise ValueError(f"{name} must be positive and finite, got {base!r}")
    total = x + y
    q = clec_base / (clec_base + retail_base)
    if total == 0:
        p = 1.0
    elif worse_is_higher:
        p = 1.0 if x == 0 else special.bdtrc(x - 1, total, q)  # P(X > x - 1)
    else:
        p = special.bdtr(x, total, q)
    return _result("binomial_exact", p, x, note="no troubles in either group" if total == 0 else "")


# --- permutation test of means from value histograms ------------------------------------------


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
    adds its few CLEC values to it instead of sorting the pooled values again, and Monte Carlo on
    floats inserts them into `expanded` (the values one per record, ascending) instead of expanding
    the pool again. Not thread-safe until `expanded` has been built: build it before sharing."""

    __slots__ = ("_expanded", "_lock", "_tables", "counts", "values")

    def __init__(self, values: object, counts: object):
        self.values, self.counts = _merge(*_histogram(values, counts, "retail"))
        self._expanded: np.ndarray | None = None
        self._tables: dict[tuple[float, int], RetailTable | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def of_samples(cls, samples: object) -> Pool:
        """The pool of a sample of values (one per record), its expansion built (from the sample when sorted)."""
        sample = np.asarray(samples, dtype=float).ravel()
        values, counts = np.unique(sample, return_counts=True)
        pool = cls(values, counts)
        ascending = sample.size == int(pool.counts.sum()) and bool(np.all(sample[1:] >= sample[:-1]))
        pool._expanded = sample if ascending else np.repeat(pool.values, pool.counts)
        return pool

    def expanded(self) -> np.ndarray:
        """The values one per record, ascending (np.repeat(values, counts)), built once."""
        if self._expanded is None:
            self._expanded = np.repeat(self.values, self.counts)
        return self._expanded

    def table(self, lattice: float, max_cells: int) -> RetailTable | None:
        """The pool's subset-sum table on a lattice (subset_sums.RetailTable), made once on first use (by
        whichever thread asks first: the same table either way), or None when the values are off the
        lattice or the table would exceed max_cells."""
        with self._lock:
            key = (lattice, max_cells)
            if key not in self._tables:
                units = _lattice_units(self.values, lattice)
                self._tables[key] = None if units is None else RetailTable.of(units, self.counts, max_cells)
            return self._tables[key]

    def expanded_with(self, clec_values: np.ndarray, clec_counts: np.ndarray) -> np.ndarray:
        """The pool with the CLEC values added, one value per record, ascending: what np.repeat gives on
        the merged histogram (equal values are interchangeable), by one insertion into `expanded`."""
        more = np.repeat(clec_values, clec_counts)
        more.sort()
        base = self.expanded()
        return _insert(base, np.searchsorted(base, more), more)


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
    value range in lattice steps (after dividing by their common step). Otherwise Monte Carlo:
    random n-subsets drawn without replacement with numpy's default_rng(seed), b = resampled sums at
    least as bad as observed (ties count):
        without sequential_h:  `resamples` draws,  p = (b + 1) / (resamples + 1);
        with sequential_h = h (Besag and Clifford 1991): draws stop at the h-th sum at least as bad,
            p = h / L after L draws, or else after `resamples` draws, p = (b + 1) / (resamples + 1).
    Both are valid p-values (P(p <= a) <= a under parity). resamples records the draws L counted.
    A pool whose values are all equal gives p = 1. statistic = the CLEC sum.
    `retail_values` may be a Pool prepared once for many cells, with retail_counts None.
    """
    cv, cc = _histogram(clec_values, clec_counts, "clec")
    pool = retail_values if isinstance(retail_values, Pool) else Pool(retail_values, retail_counts)
    n = int(cc.sum())
    if n == 0:
        raise ValueError("the CLEC histogram is empty: nothing to test")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if sequential_h is not None and not 1 <= sequential_h <= resamples:
        raise ValueError(f"sequential_h must be between 1 and resamples ({resamples}), got {sequential_h}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    statistic = float(np.dot(cv, cc))
    values, counts = _add(pool.values, pool.counts, *_merge(cv, cc))
    n_pool = int(counts.sum())

    units = clec_units = None
    note = ""
    if lattice is not None:
        if not (math.isfinite(lattice) and lattice > 0):
            raise ValueError(f"lattice must be positive and finite, got {lattice!r}")
        units = _lattice_units(values, lattice)
        clec_units = _lattice_units(cv, lattice)  # on the lattice whenever the pool is: its values are in it
        if units is None or clec_units is None:
            units = None
            note = f"values are not all multiples of the lattice {lattice!r}: Monte Carlo"
        elif float(units.max(initial=0)) * n_pool >= 2.0**62:
            units, note = None, "lattice sums would overflow 64-bit integers: Monte Carlo on floats"
    else:
        note = "no lattice given: Monte Carlo"

    if units is not None and clec_units is not None:
        items, pooled = _merge(units, counts)
        observed: float = int(np.dot(clec_units, cc))
    else:
        items, pooled = values, counts
        observed = statistic
    if items.size == 1:
        return _result("permutation_exact", 1.0, statistic, note="all pooled values are equal: every subset ties")

    # Taking the complement when n > N / 2 keeps the subset size, and the work, small.
    k = min(n, n_pool - n)
    complement = k < n
    if units is not None:
        base = int(items[0])
        d = items - base
        step = int(np.gcd.reduce(d))
        d //= step
        span = int(d[-1])
        cells = (k + 1) * (k * span + 1) * items.size
        # the pool's table serves every cell of this retail pool (None where it does not apply)
        shareable = cells <= max_exact_cells and not complement and clec_units is not None
        table = pool.table(lattice, max_exact_cells) if shareable and lattice is not None else None
        shared = table.tail(*_merge(clec_units, cc), worse_is_higher) if table and clec_units is not None else None
        if shared is not None:
            return _result("permutation_exact", shared, statistic)
        if cells <= max_exact_cells:
            target = (int(observed) - n * base) // step  # the CLEC sum in shifted, reduced units
            upper = worse_is_higher
            if complement:
                target = int(np.dot(d, pooled)) - target
                upper = not upper
            dist = subset_sum_distribution(d, pooled, k)
            tail = dist[max(target, 0) :] if upper else dist[: max(target + 1, 0)]
            return _result("permutation_exact", math.fsum(tail.tolist()), statistic)
        note = f"exact distribution needs {cells:,} cells, above the limit of {max_exact_cells:,}: Monte Carlo"

    if n <= 2:  # one or two CLEC values: every n-subset can be counted, exactly and at once
        p = _small_subset_tail(items, pooled, n, observed, worse_is_higher)
        return _result("permutation_exact", p, statistic, note="all subsets of one or two counted")

    # Not np.dot on floats: a float dot this long runs on OpenBLAS threads, which keep spinning for a
    # while afterwards and take CPU from the single-threaded Monte Carlo loop (twice as slow on two cores).
    total = 0.0  # the pooled sum, needed only for the complement
    if complement:
        total = int(np.dot(items, pooled)) if items.dtype.kind == "i" else float((items * pooled).sum())
    expanded = None if units is not None else functools.partial(pool.expanded_with, cv, cc)
    b, drawn = tail_count(
        items, pooled, k, observed, worse_is_higher, total, complement, resamples, seed, sequential_h, expanded
    )
    if sequential_h is None:
        p = (b + 1) / (resamples + 1)
    elif b == sequential_h:
        p = b / drawn
        note = _join(note, f"sequential Monte Carlo: stopped after h={b} exceedances at L={drawn:,} draws, p = h/L")
    else:
        p = (b + 1) / (resamples + 1)
        note = _join(
            note,
            f"sequential Monte Carlo: {b} exceedances, fewer than h={sequential_h}, "
            f"in the maximum of {resamples:,} draws, p = (b+1)/(B+1)",
        )
    return _result("permutation_monte_carlo", p, statistic, resamples=drawn, seed=seed, note=note)


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


# --- modified t and seeds ----------------------------------------------------------------------


def modified_t(
    clec_mean: float, clec_n: int, retail_mean: float, retail_var: float, retail_n: int, worse_is_higher: bool
) -> TestResult:
    """California modified t, on values the caller has already transformed (ln(x + 0.4 unit) for intervals).

        t = (M_clec - M_retail) / sqrt(s2_retail * (1/n_clec + 1/n_retail))   when worse_is_higher,
        t = (M_retail - M_clec) / sqrt(...)                                    otherwise,
    so a positive t means the CLEC is worse; df = n_retail - 1; p = P(T_df >= t).
    Raises ValueError when retail_n < 2 or retail_var <= 0 (the caller reports 'undetermined').
    """
    n1, n2 = _count(clec_n, "clec_n"), _count(retail_n, "retail_n")
    if n1 < 1:
        raise ValueError("clec_n is 0: no CLEC mean to test")
    if n2 < 2:
        raise ValueError(f"retail_n is {n2}: the retail sample variance needs at least 2 records")
    if not (math.isfinite(retail_var) and retail_var > 0):
        raise ValueError(f"retail variance is {retail_var!r}: the modified t needs a positive retail variance")
    diff = clec_mean - retail_mean if worse_is_higher else retail_mean - clec_mean
    t = diff / math.sqrt(retail_var * (1.0 / n1 + 1.0 / n2))
    df = n2 - 1
    p = special.stdtr(df, -t)  # survival function of Student's t
    return _result("modified_t", p, t, df=float(df))


def seed_for(run_seed: int, *key_parts: str) -> int:
    """A 63-bit Monte Carlo seed from the run seed and a cell key, the same in any process.

    numpy SeedSequence(entropy=run_seed, spawn_key=...) with four 32-bit words of the SHA-256 of
    each key part (a fixed width per part, so ("ab", "c") and ("a", "bc") differ), then the two
    64-bit words of generate_state(2, uint64) xor-ed and cut to 63 bits (fits a signed int64 column).
    """
    if isinstance(run_seed, bool) or int(run_seed) != run_seed or run_seed < 0:
        raise ValueError(f"run_seed must be a non-negative integer, got {run_seed!r}")
    words: list[int] = []
    for part in key_parts:
        if not isinstance(part, str):
            raise TypeError(f"key parts must be strings, got {type(part).__name__}")
        digest = hashlib.sha256(part.encode("utf-8")).digest()
        words.extend(int.from_bytes(digest[i : i + 4], "big") for i in range(0, 16, 4))
    state = np.random.SeedSequence(entropy=int(run_seed), spawn_key=tuple(words)).generate_state(2, np.uint64)
    return (int(state[0]) ^ int(state[1])) & ((1 << 63) - 1)
