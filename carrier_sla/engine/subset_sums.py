"""Exact distributions of subset sums on a lattice, for the permutation test (exact.permutation_test).

- subset_sum_distribution  P(sum = s) of a uniformly random k-subset of a multiset of lattice values
                           (or the table of every subset size up to k), by a dynamic programme over the
                           distinct values whose entries are all probabilities.
- RetailTable              that table for a retail pool, made once for every CLEC cell tested against
                           it: a cell then adds only its own few values (a hypergeometric mixture).
"""

from __future__ import annotations

import math

import numpy as np


def _log_comb(n: int, kmax: int) -> np.ndarray:
    """log C(n, r) for r = 0 .. kmax (-inf where r > n), as a running sum of log((n - t) / (t + 1)).

    Small terms summed instead of differences of gammaln(1e6) ~ 1.3e7, which would lose ~9 digits.
    """
    out = np.full(kmax + 1, -np.inf)
    m = min(kmax, n)
    t = np.arange(m, dtype=float)
    out[0] = 0.0
    out[1 : m + 1] = np.cumsum(np.log((n - t) / (t + 1.0)))
    return out


def _take_weights(n_prev: int, cnt: int, k: int) -> np.ndarray:
    """w[r, j] = C(cnt, j) C(n_prev, r - j) / C(n_prev + cnt, r) for r = 0..k, j = 0..min(cnt, k):
    the hypergeometric probability that a random r-subset of the first n_prev + cnt items holds
    j copies of the newest value.

    Computed in logs and renormalised per row (the rows sum to 1 by Vandermonde's identity), so the
    huge C(n, r) never appear and rounding cannot create or lose probability. Rows with
    r > n_prev + cnt (no such subset yet) are zero.
    """
    jmax = min(cnt, k)
    lc_cnt = _log_comb(cnt, jmax)
    lc_prev = np.concatenate([np.full(jmax, -np.inf), _log_comb(n_prev, k)])  # index r - j + jmax
    rest = np.arange(k + 1)[:, None] - np.arange(jmax + 1)[None, :] + jmax
    logw = lc_cnt[None, :] + lc_prev[rest]
    top = logw.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    w = np.exp(logw - top)
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def subset_sum_distribution(d: np.ndarray, c: np.ndarray, k: int, all_rows: bool = False) -> np.ndarray:
    """P(sum = s), s = 0 .. k * max(d), for a uniformly random k-subset of the multiset
    {d_i repeated c_i times}; d are distinct non-negative integers in ascending order. With all_rows,
    the table of every subset size: row r holds P(sum = s) for a random r-subset (zero when r > sum(c)).

    Built value by value: with N_i items after value i, the probability table over
    (subset size r, sum s) is updated by the hypergeometric weight of taking j copies of value i,
        P_i(r, s) = sum_j  C(c_i, j) C(N_{i-1}, r - j) / C(N_i, r) * P_{i-1}(r - j, s - j d_i),
    so every entry stays a probability (no overflow of C(N, k) for a million retail records).

    Work saved: values go in ascending order, so step i touches only sums s <= k d_i; and a row
    r < k - (items still to come) can no longer reach size k, so it is not computed (unless all_rows). One step is a
    single einsum over a strided view of the flat table, in which (j, r, s) reads the entry
    (r - j, s - j d_i): rows r - j < 0 fall into zero padding in front of the table, and a negative
    column s - j d_i falls into the unused tail of row r - j - 1 (its sums stop at (r - j - 1) d_i).
    """
    from numpy.lib.stride_tricks import as_strided

    dmax = int(d[-1])
    width_total = k * dmax + 1
    pad = (k + 1) * (width_total + dmax)  # room for the most negative offset, k rows and k * dmax columns back
    bufs = [np.zeros(pad + (k + 1) * width_total), np.zeros(pad + (k + 1) * width_total)]
    bufs[0][pad] = 1.0  # P_0: the empty subset has sum 0
    src = 0
    remaining = int(c.sum())
    n_prev = 0
    for du, cnt in zip(d.tolist(), c.tolist(), strict=True):
        remaining -= cnt
        lo = 0 if all_rows else max(0, k - remaining)
        w = _take_weights(n_prev, cnt, k)[lo:]
        width = k * du + 1
        item = bufs[src].itemsize
        view = as_strided(
            bufs[src][pad + lo * width_total :],
            shape=(w.shape[1], k + 1 - lo, width),
            strides=(-(width_total + du) * item, width_total * item, item),
            writeable=False,
        )
        out = bufs[1 - src][pad:].reshape(k + 1, width_total)
        out[lo:, :width] = np.einsum("rj,jrs->rs", w, view)
        src = 1 - src
        n_prev += cnt
    if all_rows:
        return bufs[src][pad:].reshape(k + 1, width_total).copy()
    return bufs[src][pad + k * width_total : pad + (k + 1) * width_total]


# Subset sizes a RetailTable covers: the small samples plans route to the permutation test (Qwest: 30 or fewer).
TABLE_ROWS = 30


class RetailTable:
    """The subset-sum distributions of a retail pool of lattice values, every subset size up to `rows`,
    made once and shared by the permutation tests of every CLEC cell compared with that pool.

    With the retail values u (in lattice units) written v = (u - min u) / g, g their common step,
    R[m, s] = P(sum of v over a random m-subset of the retail = s). A CLEC cell of n <= rows values
    (each u_c = min u + g v_c) draws j of the random n-subset from its own values and n - j from the
    retail, j hypergeometric: w_j = C(n, j) C(N, n - j) / C(N + n, n). With C[j, a] the distribution
    of a random j-subset of its own values v_c - min v_c,
        P(sum >= T) = sum_j w_j sum_a C[j, a] P(R_{n-j} >= T - a - j min v_c)     (<= when lower),
    T the CLEC's own sum of v: the pooled test's exact p-value, every term a probability. A cell then
    costs a table of its own few values instead of a programme over the whole pool.
    """

    @classmethod
    def of(cls, units: np.ndarray, counts: np.ndarray, max_cells: int, rows: int = TABLE_ROWS) -> RetailTable | None:
        """The table of the distinct retail values `units` (lattice units, ascending) and their counts, or
        None when there are none or the programme that builds it would exceed max_cells cells, counted as
        the permutation test counts them: (rows + 1) x (rows x span + 1) entries x distinct values."""
        if units.size == 0:
            return None
        step = int(np.gcd.reduce(units - units[0])) or 1
        span = int(units[-1] - units[0]) // step
        return cls(units, counts, rows) if (rows + 1) * (rows * span + 1) * units.size <= max_cells else None

    def __init__(self, units: np.ndarray, counts: np.ndarray, rows: int = TABLE_ROWS):
        """units: the distinct retail values in lattice units, ascending; counts: their records."""
        self.base = int(units[0])
        self.step = int(np.gcd.reduce(units - self.base)) or 1
        v = (units - self.base) // self.step
        self.span = int(v[-1])  # the value range in steps
        self.n = int(counts.sum())
        self.rows = rows
        table = subset_sum_distribution(v, counts, rows, all_rows=True)
        width = table.shape[1]
        # P(R_m >= s) for s = 0 .. width (the last column 0) and P(R_m <= s - 1) for s = 0 .. width (the
        # first column 0): each tail summed from its own far end, small terms first
        self.upper = np.zeros((rows + 1, width + 1))
        self.upper[:, :width] = np.cumsum(table[:, ::-1], axis=1)[:, ::-1]
        self.lower = np.zeros((rows + 1, width + 1))
        self.lower[:, 1:] = np.cumsum(table, axis=1)

    def serves(self, clec_units: np.ndarray, n: int) -> bool:
        """Whether the table gives the exact p-value of a CLEC cell of n values with these distinct values
        (lattice units): at most `rows` values, all on the pool's step."""
        return 0 < n <= self.rows and not np.any((clec_units - self.base) % self.step)

    def tail(self, clec_units: np.ndarray, clec_counts: np.ndarray, upper: bool) -> float | None:
        """The exact one-tailed p-value of the CLEC cell (distinct values in lattice units, ascending, and
        their counts) against this pool (see tails), or None when the table does not serve the cell (more
        than `rows` values, or values off the pool's step): the caller runs the whole programme instead."""
        n = int(clec_counts.sum())
        if not self.serves(clec_units, n):
            return None
        return float(self.tails(np.repeat(clec_units, clec_counts)[None, :], upper)[0])

    def tails(self, clec: np.ndarray, upper: bool) -> np.ndarray:
        """The exact one-tailed p-values of CLEC cells of one size n against this pool, one cell per row of
        `clec` (its n values in lattice units, each on the pool's step, n <= rows): P(sum of a random
        n-subset of the pooled values >= the CLEC's sum) when upper, <= otherwise (see tails_of)."""
        return self.tails_of(list(clec), upper)

    def tails_of(self, clec: list[np.ndarray], upper: bool) -> np.ndarray:
        """The exact one-tailed p-values of CLEC cells of any sizes against this pool, one cell per array of
        `clec` (its n values in lattice units, each on the pool's step, 1 <= n <= rows): P(sum of a random
        n-subset of the pooled values >= the CLEC's sum) when upper, <= otherwise.

        The mixture of the class docstring with C[j, a] = E[j, a] / C(n, j), E[j, a] the number of j-subsets
        of the cell's n values (as v - min v) summing to a, counted exactly (below 2^53) by a programme over
        the n values vectorised over the cells:
            p = sum_j  C(N, n - j) / C(N + n, n)  sum_a E[j, a] P(R_{n-j} >= T - a - j min v_c).
        Cells of several sizes are computed together, each padded with zeros (counts of no subset, terms
        j > n, sums a past its own) that add exact zeros after its own terms, one addition after another
        (cumulative sums): a row's p-value does not depend on the other rows or their sizes, to the last bit.
        """
        cells = len(clec)
        out = np.empty(cells)
        if not cells:
            return out
        sizes = np.array([c.size for c in clec], dtype=np.int64)
        nmax = int(sizes.max())
        # each cell's values (steps above the pool's minimum), padded past its size with its first value
        flat = (np.concatenate(clec).astype(np.int64) - self.base) // self.step
        starts = np.cumsum(sizes) - sizes
        v = np.repeat(flat[starts], nmax).reshape(cells, nmax)
        v[np.arange(nmax)[None, :] < sizes[:, None]] = flat
        low = v.min(axis=1)
        own = v - low[:, None]
        target = np.add.reduceat(flat, starts)
        coef = np.zeros((cells, nmax + 1))
        for n in np.unique(sizes).tolist():
            logw = _log_comb(n, n) + _log_comb(self.n, n)[::-1]  # log C(n, j) + log C(N, n - j)
            w = np.exp(logw - logw.max())
            w /= w.sum()  # the weights sum to 1 (Vandermonde); dividing leaves no rounding of C(N + n, n)
            coef[sizes == n, : n + 1] = w / np.array([math.comb(n, x) for x in range(n + 1)], dtype=float)
        width = self.upper.shape[1] - 1
        tails = self.upper if upper else self.lower
        for rows in _blocks(sizes, own.max(axis=1)):
            n = int(sizes[rows].max())
            count = _subset_counts(own[rows, :n], sizes[rows])  # (cells, n + 1, W)
            a = np.arange(count.shape[2])
            j = np.arange(n + 1)
            rest = target[rows, None, None] - a[None, None, :] - (j[None, :, None] * low[rows, None, None])
            col = np.clip(rest, 0, width) if upper else np.clip(rest + 1, 0, width)
            beyond = tails[np.maximum(sizes[rows, None] - j[None, :], 0)[:, :, None], col]
            # sums in order, one addition after another (cumulative sums): a row's padding adds exact zeros,
            # so its p-value has the same bits alone or among other rows
            terms = np.cumsum(count * beyond, axis=2)[:, :, -1] * coef[rows, : n + 1]
            out[rows] = np.cumsum(terms, axis=1)[:, -1]
        return out


def _blocks(sizes: np.ndarray, spans: np.ndarray) -> list[np.ndarray]:
    """The cells (positions) computed together by RetailTable.tails_of: ordered by size and span, a block
    grows while its padded tables, cells x (n + 1) x (n x span + 1) for its largest size n and span, hold
    at most _BLOCK_ENTRIES entries and at most twice the cells' own (plus _BLOCK_SLACK: small cells join
    freely), so that padding never doubles the work while numpy calls are shared by many cells."""
    order = np.lexsort((spans, sizes))
    own = ((sizes + 1) * (sizes * spans + 1)).tolist()
    blocks, first, n, span, total = [], 0, 0, 0, 0
    for at, c in enumerate(order.tolist()):
        size, width = int(sizes[c]), int(spans[c])
        n2, span2, total2 = max(n, size), max(span, width), total + own[c]
        padded = (at + 1 - first) * (n2 + 1) * (n2 * span2 + 1)
        if at > first and (padded > _BLOCK_ENTRIES or padded > 2 * total2 + _BLOCK_SLACK):
            blocks.append(order[first:at])
            first, n2, span2, total2 = at, size, width, own[c]
        n, span, total = n2, span2, total2
    blocks.append(order[first:])
    return blocks


# A block of RetailTable.tails_of holds tables of at most this many entries (32 MB of float64), padding
# included; padding up to _BLOCK_SLACK entries is free (cheaper than another round of numpy calls).
_BLOCK_ENTRIES = 1 << 22
_BLOCK_SLACK = 1 << 12


def _subset_counts(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """E[c, j, a]: the number of j-subsets (j = 0 .. n) of the first sizes[c] values of row c (non-negative
    integers) that sum to a, a = 0 .. n * max value, n the width of `values`; float64, exact while below
    2^53 (C(30, 15) is 1.6e8). Zero for j > sizes[c].

    The 0/1 knapsack over the values one at a time: E_i[j, a] = E_{i-1}[j, a] + E_{i-1}[j - 1, a - v_i],
    the shifted table read per row (each row's v_i differs) from a strided view of a buffer holding zeros
    in front of each table row; a row past its size reads only zeros.
    """
    from numpy.lib.stride_tricks import as_strided

    cells, n = values.shape
    width = n * int(values.max(initial=0)) + 1
    buffer = np.zeros((cells, n + 1, 2 * width))  # zeros, then the table, in each (cell, j) row
    count = buffer[:, :, width:]
    count[:, 0, 0] = 1.0
    item = buffer.itemsize
    # shifted[c, s, j, a] = buffer[c, j, width - s + a]: table row j of cell c moved s sums up (zeros below s)
    shifted = as_strided(
        buffer[:, :, width:],
        shape=(cells, width + 1, n + 1, width),
        strides=(buffer.strides[0], -item, buffer.strides[1], item),
        writeable=False,
    )
    cell = np.arange(cells)
    shift = np.where(np.arange(n)[None, :] < sizes[:, None], values, width)  # width: a whole row of zeros
    for i in range(n):
        count[:, 1 : i + 2, :] += shifted[:, :, : i + 1][cell, shift[:, i]]
    return count
