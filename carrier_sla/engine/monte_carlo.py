"""Seeded Monte Carlo for the permutation test (exact.permutation_test): how many of `resamples`
uniformly random k-subsets of a pooled value histogram have a sum at least as bad as the CLEC's, or,
sequentially, after how many draws the h-th such sum comes (Besag and Clifford 1991).

Subsets are drawn by Floyd's algorithm, vectorised over many subsets at once; values are looked up
through cache-sized arrays. The random stream depends only on the seed and the constants below,
never on threads or on other cells.
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
    are at most _PAIRWISE_MAX_K rows (k (k - 1) / 2 vectorised comparisons) and the columns are many
    enough to pay for that many numpy calls (at least 8 k^2: a sequential test's first batches are
    small), else by sorting each column. Either way the same columns: the draws do not depend on it."""
    k = pos.shape[0]
    if k <= _PAIRWISE_MAX_K and 8 * k * k <= pos.shape[1]:
        dup = np.zeros(pos.shape[1], dtype=bool)
        for i in range(1, k):
            dup |= (pos[:i] == pos[i]).any(axis=0)
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
    """
    n_pool = int(counts.sum())
    if n_pool > _EXPAND_LIMIT:
        cum = np.cumsum(counts)
        return lambda pos: items.take(np.searchsorted(cum, pos, side="right"))
    narrow = items.dtype.kind == "i" and int(items[-1]) < 2**31
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
    """(b, L): of the first L resampled subset sums, b are at least as bad as `observed` (see permutation_test).

    Without `stop_at`, L = resamples. With it (sequential Monte Carlo, Besag and Clifford 1991) the
    draws stop at the stop_at-th sum at least as bad: then b = stop_at and L is the index of that draw
    (counted from 1), or L = resamples and b < stop_at when it never comes. `expanded`: see
    _position_values.

    Subsets are drawn by _floyd_positions in batches of a fixed schedule (_batches); the schedule is
    part of the random stream, so a given seed reproduces the same p-value only with the same
    constants. A sequential test finds its stopping draw inside a batch, so L is the draw a
    draw-by-draw loop over the same stream would stop at; the rest of that batch is discarded.
    Values are gathered in slices of about _GATHER_POSITIONS positions and each subset's k values
    added in draw order, in float64 (int64 on a lattice).
    """
    rng = np.random.default_rng(seed)
    n_pool = int(counts.sum())
    integer = items.dtype.kind == "i"
    tol = 0.0 if integer else SUM_RTOL * max(1.0, abs(observed))
    chunk = max(1, _CHUNK_POSITIONS // max(k, 1))
    step = max(1, _GATHER_POSITIONS // max(k, 1))  # subsets gathered at a time
    values_at = _position_values(items, counts, min(chunk, step) * k, expanded)
    chunk_sums: np.ndarray = np.empty(chunk, dtype=np.int64 if integer else np.float64)
    hits = 0
    for start, rows in _batches(resamples, chunk, sequential=stop_at is not None):
        pos = _floyd_positions(rng, n_pool, k, rows)
        sums = chunk_sums[:rows]
        for c in range(0, rows, step):
            values_at(pos[:, c : c + step]).sum(axis=0, dtype=sums.dtype, out=sums[c : c + step])
        if complement:
            sums = total - sums
        bad = sums >= observed - tol if upper else sums <= observed + tol
        found = int(np.count_nonzero(bad))
        if stop_at is not None and hits + found >= stop_at:
            return stop_at, start + int(np.flatnonzero(bad)[stop_at - hits - 1]) + 1
        hits += found
    return hits, resamples


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
