"""Exact and resampling parity tests for small samples (domain.md, "Standards and statistics").

Every test is one-tailed and oriented the same way: the p-value is the probability, under parity,
of a CLEC result at least as bad as the one observed. `worse_is_higher` says which direction is
bad: True for intervals, durations, repeat and trouble rates; False for "percent met" measures.

- fisher_exact     proportions: hypergeometric tail of the CLEC hit count (California: all percentages).
- binomial_rate    rates: CLEC count given the total count ~ Binomial(T, base_clec / (base_clec + base_retail)).
- permutation_test means, small CLEC samples (Qwest: 30 or fewer): the share of n_clec-subsets of the
                   pooled CLEC + retail values whose sum is at least as bad as the CLEC's (module
                   permutation, re-exported here with Pool and permutation_tests).
- modified_t       California: t on log-transformed values, retail variance only, df = n_retail - 1.
- seed_for         the per-cell Monte Carlo seed, derived from the run seed and the cell key.

All functions are pure and return a TestResult with every number behind the decision.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
from scipy import special

from carrier_sla.engine.permutation import LATTICE_RTOL, Pool, permutation_test, permutation_tests
from carrier_sla.engine.result import TestResult, make_result, z_equivalent

__all__ = [
    "LATTICE_RTOL",
    "Pool",
    "TestResult",
    "binomial_rate",
    "fisher_exact",
    "fisher_exact_tests",
    "hypergeom_tails",
    "modified_t",
    "permutation_test",
    "permutation_tests",
    "seed_for",
    "z_equivalent",
]


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
    [p] = hypergeom_tails(np.array([a]), np.array([n1]), np.array([a + c]), np.array([n1 + n2]), worse_is_higher)
    return make_result("fisher_exact", p, a)


def fisher_exact_tests(
    clec_hits: np.ndarray, clec_n: np.ndarray, retail_hits: np.ndarray, retail_n: np.ndarray, worse_is_higher: bool
) -> list[TestResult | ValueError]:
    """fisher_exact of many cells at once (arrays of counts, one entry per cell): each cell's TestResult,
    or the ValueError fisher_exact raises for it. The same p-values as fisher_exact cell by cell."""
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (clec_hits, clec_n, retail_hits, retail_n))
    whole = np.all([(x == np.floor(x)) & (x >= 0) for x in (a, n1, c, n2)], axis=0)
    ok = whole & (n1 > 0) & (a <= n1) & (c <= n2)
    out: list[TestResult | ValueError] = []
    whole_a, whole_n1, whole_c, whole_n2 = (x[ok].astype(np.int64) for x in (a, n1, c, n2))
    p = hypergeom_tails(whole_a, whole_n1, whole_a + whole_c, whole_n1 + whole_n2, worse_is_higher)
    p_at = iter(p.tolist())
    for i in range(a.size):
        if ok[i]:
            out.append(make_result("fisher_exact", next(p_at), a[i]))
            continue
        try:
            fisher_exact(clec_hits[i], clec_n[i], retail_hits[i], retail_n[i], worse_is_higher)
        except ValueError as exc:
            out.append(exc)
    return out


# Fisher cells whose hypergeometric support has at most this many points are summed here, vectorised;
# wider ones (large CLEC samples) go to scipy.
_SUPPORT_SUMMED = 64


def hypergeom_tails(x: np.ndarray, draws: np.ndarray, hits: np.ndarray, total: np.ndarray, upper: bool) -> np.ndarray:
    """P(X >= x) (upper) or P(X <= x) per entry, X ~ Hypergeometric(total items, hits of them, draws).

    Over the support lo .. hi (lo = max(0, draws - (total - hits)), hi = min(draws, hits)) the point
    probabilities are proportional to t_y, t_lo = 1 and
        t_{y+1} / t_y = (hits - y)(draws - y) / ((y + 1)(total - hits - draws + y + 1)),
    so p = sum of t_y over the tail / sum of all t_y: no binomial coefficient of the large total appears,
    and the t_y are taken relative to their largest (in logs) so none overflows. Relative error about
    1e-14 (supports of at most _SUPPORT_SUMMED points; wider ones: scipy.stats.hypergeom).
    """
    x, draws, hits, total = (np.asarray(v, dtype=np.int64) for v in (x, draws, hits, total))
    lo = np.maximum(0, draws - (total - hits))
    hi = np.minimum(draws, hits)
    p = np.empty(x.size)
    wide = hi - lo + 1 > _SUPPORT_SUMMED
    if wide.any():
        # scipy.stats only here: importing it takes 0.85 s of CPU against 0.2 s for scipy.special,
        # which is all the other tests need (a Dask worker pays it with its first judging task)
        from scipy import stats

        args = (total[wide], hits[wide], draws[wide])
        p[wide] = stats.hypergeom.sf(x[wide] - 1, *args) if upper else stats.hypergeom.cdf(x[wide], *args)
    small = np.flatnonzero(~wide)
    if small.size:
        lo, hi, x = lo[small], hi[small], x[small]
        d, h, t = draws[small].astype(float), hits[small].astype(float), total[small].astype(float)
        y = lo[:, None] + np.arange(int((hi - lo).max()) + 1)[None, :]  # support points, padded
        inside = y <= hi[:, None]
        ys = np.where(inside, y, lo[:, None])[:, :-1].astype(float)
        with np.errstate(divide="ignore"):  # padding past hi may take a log of 0: it is masked below
            ratio = np.log((h[:, None] - ys) * (d[:, None] - ys)) - np.log(
                (ys + 1) * (t[:, None] - h[:, None] - d[:, None] + ys + 1)
            )
        logt = np.concatenate(
            [np.zeros((small.size, 1)), np.cumsum(np.where(inside[:, 1:], ratio, 0.0), axis=1)], axis=1
        )
        logt[~inside] = -np.inf
        weight = np.exp(logt - logt.max(axis=1, keepdims=True))
        tail = (y >= x[:, None]) if upper else (y <= x[:, None])
        # sums in order (cumulative): a row's padding adds exact zeros, so its p has the same bits in any batch
        p[small] = np.cumsum(np.where(tail, weight, 0.0), axis=1)[:, -1] / np.cumsum(weight, axis=1)[:, -1]
    return np.clip(p, 0.0, 1.0)


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
    return make_result("binomial_exact", p, x, note="no troubles in either group" if total == 0 else "")


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
    return make_result("modified_t", p, t, df=float(df))


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
