"""Seeded Monte Carlo for the permutation test (permutation.permutation_tests): how many of `resamples`
uniformly random k-subsets of a pooled value histogram have a sum at least as bad as the CLEC's, or,
sequentially, after how many draws the h-th such sum comes (Besag and Clifford 1991); for several
CLEC cells of one retail pool and size at once, from one stream of draws (tail_counts).

Subsets are drawn by rejection of draws with a repeated position, or by Floyd's algorithm where
repeats are common, vectorised over many subsets at once; values are looked up through cache-sized
arrays. The random stream depends only on the seed and the constants below, never on threads or on
other cells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

# Monte Carlo: resampled float sums within this relative distance of the observed sum count as ties
# (ties are "at least as bad"); integer lattice sums compare exactly.
SUM_RTOL = 1e-9
# Monte Carlo draws subsets in chunks of about this many positions (bounding memory for large n_clec)
# and looks their values up in slices of about _GATHER_POSITIONS, whose arrays stay in cache.
_CHUNK_POSITIONS = 1 << 18
_GATHER_POSITIONS = 1 << 15
# A sequential test draws this many subsets first, then doubles the batch up to a chunk.
_FIRST_BATCH = 256
# Monte Carlo looks values up in arrays with one entry per pooled item of at most this many bytes
# where it can (see _position_values), and by binary search above _EXPAND_LIMIT items.
_GATHER_BYTES = 1 << 22
_EXPAND_LIMIT = 1 << 24
# Subsets of at most this many draws find clashes by comparing every pair of draws, larger ones by sorting.
_PAIRWISE_MAX_K = 32


def _subset_positions(rng: np.random.Generator, n_pool: int, k: int, rows: int) -> np.ndarray:
    """`rows` uniformly random k-subsets of range(n_pool), one per column of a (k, rows) array.

    When a column of k independent uniform draws rarely holds a value twice (k (k - 1) <= n_pool / 4:
    at most about one column in eight), by rejection: the k * rows draws come from one rng.integers
    call, and the columns holding a value twice are drawn again, whole, until none does; k distinct
    independent uniform draws are a uniformly random k-subset. Otherwise by Floyd's algorithm
    (_floyd_positions), which never redraws. The choice depends only on n_pool and k.
    """
    if k * (k - 1) > n_pool // 4:
        return _floyd_positions(rng, n_pool, k, rows)
    dtype = np.int32 if n_pool < 2**31 else np.int64  # int32 positions sort and compare faster
    pos = rng.integers(0, n_pool, size=(k, rows), dtype=dtype)
    clash = _clashing(pos)
    while clash.size:
        fresh = rng.integers(0, n_pool, size=(k, clash.size), dtype=dtype)
        pos[:, clash] = fresh
        clash = clash[_clashing(fresh)]
    return pos


def _floyd_positions(rng: np.random.Generator, n_pool: int, k: int, rows: int) -> np.ndarray:
    """`rows` uniformly random k-subsets of range(n_pool), one per column of a (k, rows) array.

    Floyd's algorithm: draw i takes t_i uniform on [0, n_pool - k + i] and keeps it unless an earlier
    draw of the same subset already holds it, in which case it takes n_pool - k + i.
    All k * rows draws come from one rng.integers call on [0, n_pool) (row i holds draw i); the few
    draws i above n_pool - k + i (probability (k - 1 - i) / n_pool each) are drawn again on
    [0, n_pool - k + i], which leaves every t_i exactly uniform on its range and all independent.
    A subset whose draws are all distinct keeps every draw, so the draw-by-draw pass runs only on
    the few subsets with a clash (about rows * k^2 / 2N of them).
    """
    dtype = np.int32 if n_pool < 2**31 else np.int64  # int32 positions sort and compare faster
    pos = rng.integers(0, n_pool, size=(k, rows), dtype=dtype)
    top: np.ndarray = np.arange(n_pool - k, n_pool, dtype=dtype)  # the largest position draw i may take
    over = np.flatnonzero(pos > top[:, None])
    if over.size:
        pos.reshape(-1)[over] = rng.integers(0, top[over // rows] + 1)
    clash = _clashing(pos)
    if clash.size:
        sub = pos[:, clash]
        for i in range(1, k):
            taken = (sub[:i] == sub[i]).any(axis=0)
            sub[i, taken] = top[i]
        pos[:, clash] = sub
    return pos


def _clashing(pos: np.ndarray) -> np.ndarray:
    """The columns of `pos` holding some value twice: found by comparing every pair of rows when there
    are at most _PAIRWISE_MAX_K rows (each row with the row d below it, for d = 1 .. k - 1: k - 1
    vectorised comparisons) and the columns are many enough to pay for that many numpy calls (at least
    min(512, 32 k), measured: a sequential test's first batches are small), else by sorting each column.
    Either way the same columns: the draws do not depend on it."""
    k, rows = pos.shape
    if 1 < k <= _PAIRWISE_MAX_K and min(512, 32 * k) <= rows:
        equal = np.zeros((k - 1, rows), dtype=bool)  # equal[i, c]: pos[i, c] equals some pos[i + d, c]
        for d in range(1, k):
            equal[: k - d] |= pos[d:] == pos[:-d]
        dup = np.logical_or.reduce(equal, axis=0)
    else:
        s = np.sort(pos, axis=0)
        dup = (s[1:] == s[:-1]).any(axis=0)
    return np.flatnonzero(dup)


def _position_values(
    items: np.ndarray, counts: np.ndarray, size: int, expanded: Callable[[], np.ndarray] | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """A function from an array of at most `size` pool positions to the values there, the pool being
    `counts` copies of each of the ascending `items` in turn. Its result is overwritten by the next call.
    `expanded()`, when given, returns that pool one value per item (np.repeat(items, counts)) faster
    than np.repeat (from a retail pool expanded once for many cells).

    Random gathers are fast while the gathered array fits in cache, so the pool is expanded to one value
    per item (int32 for integers below 2**31) when that takes at most _GATHER_BYTES or an index would be
    no narrower, else to indices into `items` in the narrowest integer type (2 MB for a million records
    and up to 65,536 distinct values) and gathered twice; above _EXPAND_LIMIT items, binary search.
    The positions are converted to intp (what take works on) and gathered into arrays made once.
    A position at or past the end of the pool gives its last value (tail_counts replaces those sums).
    """
    n_pool = int(counts.sum())
    if n_pool > _EXPAND_LIMIT:
        cum = np.cumsum(counts)
        return lambda pos: items.take(np.searchsorted(cum, pos, side="right"), mode="clip")
    narrow = items.dtype.kind == "i" and int(items.max()) < 2**31
    value_type = np.dtype(np.int32) if narrow else items.dtype
    index_type = np.dtype(np.uint8 if items.size <= 2**8 else np.uint16 if items.size <= 2**16 else np.int32)
    if n_pool * value_type.itemsize <= _GATHER_BYTES or index_type.itemsize >= value_type.itemsize:
        tables = [expanded() if expanded is not None and not narrow else np.repeat(items.astype(value_type), counts)]
    else:
        tables = [np.repeat(np.arange(items.size, dtype=index_type), counts), items]
    at, out = np.empty(size, dtype=np.intp), np.empty(size, dtype=tables[-1].dtype)

    def gather(pos: np.ndarray) -> np.ndarray:
        x = at[: pos.size].reshape(pos.shape)
        np.copyto(x, pos)
        if len(tables) == 2:
            np.copyto(x, tables[0].take(x, mode="clip"))  # positions are in range: no bounds checks
        return tables[-1].take(x, out=out[: pos.size].reshape(pos.shape), mode="clip")

    return gather


def tail_count(
    items: np.ndarray,
    counts: np.ndarray,
    k: int,
    observed: float,
    upper: bool,
    total: float,
    complement: bool,
    resamples: int,
    seed: int,
    stop_at: int | None = None,
    expanded: Callable[[], np.ndarray] | None = None,
) -> tuple[int, int]:
    """(b, L): of the first L resampled k-subset sums of the pool np.repeat(items, counts), b are at least as
    bad as `observed` (total minus the sum when `complement`); tail_counts for one cell without values of its
    own. Without `stop_at`, L = resamples; with it the draws stop at the stop_at-th sum at least as bad."""
    b, drawn = tail_counts(
        items, counts, np.zeros((1, 0), dtype=items.dtype), k, np.array([observed]), upper, complement,
        resamples, seed, stop_at, expanded, totals=np.array([total]),
    )  # fmt: skip
    return int(b[0]), int(drawn[0])


def tail_counts(
    items: np.ndarray,
    counts: np.ndarray,
    own: np.ndarray,
    k: int,
    observed: np.ndarray,
    upper: bool,
    complement: bool,
    resamples: int,
    seed: int,
    stop_at: int | None = None,
    expanded: Callable[[], np.ndarray] | None = None,
    totals: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(b, L) for each of several cells that share one retail pool and one stream of draws (common random
    numbers): of the first L resampled subset sums of cell c, b are at least as bad as observed[c].

    The pool of cell c is the retail, np.repeat(items, counts) (N values, ascending), followed by the m
    values of its own row own[c]: positions 0 .. N - 1 are the retail's, N .. N + m - 1 the cell's. One
    stream of random k-subsets of range(N + m) (_subset_positions, seeded by `seed`) serves every cell: a
    subset is summed once for all cells (positions past the retail's gather its last value), and the few
    subsets holding one of the cells' own positions (about k m / (N + m) of them) are summed again per
    cell, each of its k values added in draw order. A cell's draws are thus exactly those it would get
    alone with the same seed, whatever the other cells, and its counts the same. With `complement` a
    cell's resampled sum is its total (retail and own values; `totals` when given) minus the subset's sum.

    Without `stop_at`, L = resamples for every cell. With it (sequential Monte Carlo, Besag and Clifford
    1991) a cell stops at its stop_at-th sum at least as bad: b = stop_at and L the index of that draw
    (counted from 1), or L = resamples and b < stop_at when it never comes; the stream goes on while any
    cell has not stopped. Subsets come in batches of a fixed schedule (_batches), part of the random
    stream: a given seed reproduces the same counts only with the same constants. Sums are float64, or
    int64 on a lattice (integer items); resampled float sums within SUM_RTOL of the observed count as ties.
    """
    rng = np.random.default_rng(seed)
    n_retail = int(counts.sum())
    cells, m = own.shape
    n_pool = n_retail + m
    integer = items.dtype.kind == "i"
    sum_type = np.dtype(np.int64 if integer else np.float64)
    own = own.astype(sum_type, copy=False)
    observed = np.asarray(observed, dtype=sum_type if integer else np.float64)
    tol = np.zeros(cells) if integer else SUM_RTOL * np.maximum(1.0, np.abs(observed))
    threshold = observed - tol if upper else observed + tol
    if complement and totals is None:
        retail_total = int(np.dot(items, counts)) if integer else float((items * counts).sum())
        totals = retail_total + own.sum(axis=1, dtype=sum_type)
    if not n_retail:  # no retail: every subset is empty (k = 0), but the gather needs a table
        items, counts, expanded = np.zeros(1, items.dtype), np.ones(1, np.int64), None
    chunk = max(1, _CHUNK_POSITIONS // max(k, 1))
    step = max(1, _GATHER_POSITIONS // max(k, 1))  # subsets gathered at a time
    values_at = _position_values(items, counts, min(chunk, step) * k, expanded)
    chunk_sums: np.ndarray = np.empty(chunk, dtype=sum_type)
    hits = np.zeros(cells, dtype=np.int64)
    drawn = np.full(cells, resamples, dtype=np.int64)
    active = np.arange(cells)
    going = np.ones(cells, dtype=bool)  # the cells that have not stopped
    for start, rows in _batches(resamples, chunk, sequential=stop_at is not None):
        pos = _subset_positions(rng, n_pool, k, rows)
        shared = chunk_sums[:rows]
        for c in range(0, rows, step):
            values_at(pos[:, c : c + step]).sum(axis=0, dtype=sum_type, out=shared[c : c + step])
        mixed = np.flatnonzero(pos.max(axis=0) >= n_retail) if m and k else np.zeros(0, dtype=np.intp)
        if mixed.size:
            at = pos[:, mixed]
            retail_part = np.empty(at.shape, dtype=sum_type)
            for c in range(0, mixed.size, step):
                retail_part[:, c : c + step] = values_at(at[:, c : c + step])
            is_own = at >= n_retail
            own_at = np.maximum(at - n_retail, 0)  # positions end at n_pool - 1: own_at <= m - 1
        block = max(1, (1 << 20) // rows)  # cells compared at a time: a (cells, rows) array stays small
        stopped = []
        for b0 in range(0, active.size, block):
            group = active[b0 : b0 + block]
            limit = threshold[group, None]
            if complement:
                assert totals is not None
                sums = np.repeat(shared[None, :], group.size, axis=0)
                if mixed.size:
                    sums[:, mixed] = _mixed_sums(own[group], own_at, is_own, retail_part)
                sums = totals[group, None] - sums
                bad = sums >= limit if upper else sums <= limit
            else:
                bad = shared[None, :] >= limit if upper else shared[None, :] <= limit
                if mixed.size:
                    mixed_sums = _mixed_sums(own[group], own_at, is_own, retail_part)
                    bad[:, mixed] = mixed_sums >= limit if upper else mixed_sums <= limit
            found = np.count_nonzero(bad, axis=1)
            if stop_at is not None:
                done = hits[group] + found >= stop_at
                if done.any():
                    need = stop_at - hits[group[done]]
                    # the draws before each stopping cell's need-th bad one: that draw's column, read from the
                    # columns of its bad draws (row by row, ascending), the cell's found[done] of them
                    _, column = np.nonzero(bad[done])
                    first = np.cumsum(found[done]) - found[done]
                    drawn[group[done]] = start + column[first + need - 1] + 1
                    hits[group[done]] = stop_at
                    stopped.append(group[done])
                    found[done] = 0
            hits[group] += found
        if stopped:
            going[np.concatenate(stopped)] = False
            active = active[going[active]]
            if not active.size:
                break
    return hits, drawn


def _mixed_sums(own: np.ndarray, own_at: np.ndarray, is_own: np.ndarray, retail_part: np.ndarray) -> np.ndarray:
    """(cells, subsets): the sums of the subsets holding some of the cells' own positions, each cell's
    values (own[:, own_at] where is_own, the retail's retail_part elsewhere) added in draw order
    (a cumulative sum: one addition after another, whatever the shapes)."""
    values = np.where(is_own[None], own[:, own_at], retail_part[None])  # (cells, k, subsets)
    return np.cumsum(values, axis=1)[:, -1]


def _batches(resamples: int, chunk: int, sequential: bool) -> Iterator[tuple[int, int]]:
    """(first draw, draws) of each batch: whole chunks; for a sequential test _FIRST_BATCH draws,
    then twice as many each batch up to a chunk, so that a test stopping after L draws draws fewer
    than 2 L + _FIRST_BATCH. A fixed function of its arguments: it never depends on timing or threads."""
    start, size = 0, min(_FIRST_BATCH, chunk) if sequential else chunk
    while start < resamples:
        rows = min(size, resamples - start)
        yield start, rows
        start += rows
        size = min(2 * size, chunk)
