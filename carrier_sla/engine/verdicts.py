"""Verdicts per cell: pick the plan's standard, then benchmark or parity test, then status.

Statuses: met, miss, no_activity (no CLEC records counted), no_retail_analog (parity but
no retail records), undetermined (the test is undefined; status_reason says why), diagnostic.
Benchmarks are judged by stare and compare (equal counts as met), exactly: proportions as
numerator * 100 against target * n in rational arithmetic, never binary floats.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from carrier_sla.engine import exact, stats
from carrier_sla.engine.aggregate import BASE
from carrier_sla.plan.load import Measure, Plan, Standard


def standard_for(measure: Measure, state: str, product: str, dims: dict[str, object]) -> Standard | None:
    """The first of the measure's standards whose `when` matches the cell."""
    for std in measure.standards:
        ok = True
        for key, values in std.when:
            actual = product if key == "products" else state if key == "states" else dims.get(key)
            ok &= actual in values or str(actual).lower() in [str(v).lower() for v in values]
        if ok:
            return std
    return None


def judge(
    plan: Plan,
    measure: Measure,
    cells: pd.DataFrame,
    samples: Samples | None = None,
    missed_before: Callable[[Mapping[str, Any]], bool] = lambda cell: False,
) -> pd.DataFrame:
    """Add figures, statistics and a status to each cell of one measure.

    `samples(cell)` gives the CLEC and retail values of a cell (for permutation tests);
    `missed_before(cell)` says whether the cell missed in the previous month (alpha_after_miss).
    """
    if cells.empty:
        return cells
    dims = [d.field for d in measure.dimensions]
    out = cells.copy()
    rate = measure.type == "rate"
    clec_n = out[BASE].to_numpy(dtype=float) if rate else out["n"].to_numpy(dtype=float)
    clec_num = out["sum"].to_numpy(dtype=float)
    retail_n = out[f"retail_{BASE}"].to_numpy(dtype=float) if rate else out["retail_n"].to_numpy(dtype=float)
    retail_num = out["retail_sum"].to_numpy(dtype=float)
    clec_mean = np.divide(clec_num, clec_n, out=np.full(len(out), np.nan), where=clec_n > 0)
    retail_mean = np.divide(retail_num, retail_n, out=np.full(len(out), np.nan), where=retail_n > 0)
    scale = measure.scale

    # a cell's standard depends on its state, product and dimension values only: looked up once per
    # combination (hundreds of CLECs share each)
    by_key: dict[tuple, Any] = {}
    standards = []
    dim_rows = out[dims].itertuples(index=False, name=None) if dims else [()] * len(out)
    states, products = out["state"].to_numpy(dtype=object), out["product"].to_numpy(dtype=object)
    for key in zip(states, products, dim_rows, strict=True):
        try:
            standard = by_key[key]
        except (KeyError, TypeError):  # TypeError: pd.NA (no truth for ==) met a key of the same hash
            s, p, row = key
            standard = standard_for(measure, s, p, {d: row[i] for i, d in enumerate(dims)})
            with contextlib.suppress(TypeError):
                by_key[key] = standard
        standards.append(standard)
    kind = np.array([s.type if s else "none" for s in standards], dtype=object)
    target = np.array([s.target if s and s.target is not None else np.nan for s in standards], dtype=float)

    higher = np.full(len(out), measure.direction == "higher_better")
    st = plan.statistics
    z = stats.modified_z(
        measure.type,
        higher,
        clec_n,
        clec_mean,
        retail_n,
        retail_mean,
        out["retail_m2"].to_numpy(dtype=float),
        st.rate_variance,
    )

    status = np.full(len(out), None, dtype=object)
    reason = np.full(len(out), None, dtype=object)
    method = np.full(len(out), None, dtype=object)
    statistic = np.full(len(out), np.nan)
    p_value = np.full(len(out), np.nan)
    critical = np.full(len(out), np.nan)
    tail = np.full(len(out), np.nan)  # the one-tailed area a p-value is compared with
    df = np.full(len(out), np.nan)
    resamples = np.full(len(out), np.nan)
    seeds = np.full(len(out), None, dtype=object)

    diagnostic = kind == "diagnostic"
    status[diagnostic] = "diagnostic"
    no_activity = (status == None) & (clec_n == 0) & ~(rate & (clec_num > 0))  # noqa: E711
    if rate:
        no_base = (status == None) & (clec_n == 0) & (clec_num > 0)  # noqa: E711
        status[no_base] = "undetermined"
        reason[no_base] = "troubles reported but no lines in service for this cell"
    status[no_activity] = "no_activity"
    reason[no_activity] = "no CLEC records counted in this period"
    unmatched = (status == None) & (kind == "none")  # noqa: E711
    status[unmatched] = "undetermined"
    reason[unmatched] = "no standard of the plan matches this cell"

    bench = (status == None) & (kind == "benchmark")  # noqa: E711
    allowance = measure.type in plan.statistics.allowance_types
    method[bench] = "stare_and_compare_with_allowance" if allowance else "stare_and_compare"
    allowed = np.full(len(out), np.nan)
    for i in np.flatnonzero(bench):
        if allowance:
            allowed[i] = allowed_misses(int(clec_n[i]), target[i], measure.direction)
            failures = clec_n[i] - clec_num[i] if measure.direction == "higher_better" else clec_num[i]
            status[i] = "met" if failures <= allowed[i] else "miss"
        else:
            status[i] = "met" if _meets(measure, clec_num[i], clec_n[i], target[i]) else "miss"

    parity = (status == None) & (kind == "parity")  # noqa: E711
    no_retail = parity & (retail_n == 0)
    status[no_retail] = "no_retail_analog"
    reason[no_retail] = "no retail records of the analog product for this cell"
    tested = parity & ~no_retail
    scopes = out["scope"].to_numpy(dtype=object)
    # the cells as dicts, for plans with a stricter alpha after a miss (one conversion, not a row at a time)
    records = cast(list[dict[str, Any]], out.to_dict("records")) if st.alpha_after_miss is not None else None
    methods: dict[int, str] = {}  # by CLEC sample size, and critical values by scope and size: once each
    values: dict[tuple[str, int], float | None] = {}
    for i in np.flatnonzero(tested):
        n = int(clec_n[i])
        if n not in methods:
            methods[n] = st.method_for(measure.type, n)
        method[i] = methods[n]
        if (scopes[i], n) not in values:
            values[scopes[i], n] = st.critical_value_for(scopes[i], n)
        cv = values[scopes[i], n]
        critical[i] = np.nan if cv is None else cv
        tail[i] = (
            ndtr(-cv)
            if cv is not None
            else (st.alpha_after_miss if records is not None and missed_before(records[i]) else st.alpha)
        )

    z_cells = tested & (method == "modified_z")
    undefined = z_cells & (z.undefined_reason != None)  # noqa: E711
    if st.undefined_statistic == "exact_test":
        # Perfect (or single) retail service must not hide a CLEC miss: the exact test of the
        # value kind decides, judged like a small-sample cell (tail of the critical value, or alpha).
        method[undefined] = st.exact_method(measure.type)
        undefined_why = np.full(len(out), None, dtype=object)
        undefined_why[undefined] = z.undefined_reason[undefined]
        z_cells = z_cells & ~undefined
    else:
        status[undefined] = "undetermined"
        reason[undefined] = z.undefined_reason[undefined]
        undefined_why = np.full(len(out), None, dtype=object)
    scored = z_cells & ~undefined
    statistic[scored] = z.statistic[scored]
    p_value[scored] = z.p_value[scored]
    z_crit = np.where(np.isnan(critical), ndtri(1 - np.nan_to_num(tail, nan=0.5)), critical)
    status[scored] = np.where(z.statistic[scored] > z_crit[scored], "miss", "met")

    exact_cells = np.flatnonzero(tested & ~z_cells)
    outcomes = _exact_outcomes(
        plan, measure, out, exact_cells, method, undefined_why, (clec_num, clec_n, retail_num, retail_n), samples
    )
    for i, result in zip(exact_cells, outcomes, strict=True):
        if isinstance(result, str):
            status[i], reason[i] = "undetermined", result
            continue
        method[i] = result.method
        statistic[i], p_value[i] = result.z_equivalent, result.p_value
        df[i] = np.nan if result.df is None else result.df
        resamples[i] = np.nan if result.resamples is None else result.resamples
        seeds[i] = result.seed
        if result.method == "modified_t":
            statistic[i] = result.statistic
        status[i] = "miss" if result.p_value < tail[i] else "met"
        notes = [f"{undefined_why[i]}; decided by the exact test instead"] if undefined_why[i] else []
        reason[i] = "; ".join(notes + ([result.note] if result.note else [])) or None

    is_parity = kind == "parity"
    # the retail standard deviation behind the modified z: in the measure's unit for means and
    # proportions (percent), per unit of base (a line) for rates
    retail_var = stats.retail_variance(
        measure.type, retail_n, retail_mean, out["retail_m2"].to_numpy(dtype=float), st.rate_variance
    )
    retail_sd = np.sqrt(np.clip(retail_var, 0, None)) * (scale if measure.type == "proportion" else 1.0)
    return out.assign(
        standard=np.where(kind == "none", None, kind),  # type: ignore[call-overload]  # stubs reject None as a value
        clec_n=clec_n.astype(np.int64),
        clec_numerator=clec_num,
        clec_value=clec_mean * scale,
        retail_n=np.where(is_parity, retail_n, np.nan),
        retail_numerator=np.where(is_parity, retail_num, np.nan),
        retail_value=np.where(is_parity, retail_mean * scale, np.nan),
        retail_stdev=np.where(is_parity & (retail_n > 0), retail_sd, np.nan),
        benchmark=target,
        method=method,
        statistic=statistic,
        p_value=p_value,
        critical_value=critical,
        alpha=tail,
        df=df,
        resamples=resamples,
        seed=seeds,
        allowed_misses=allowed,
        status=status,
        status_reason=reason,
    )


def _exact_outcomes(
    plan: Plan,
    measure: Measure,
    cells: pd.DataFrame,
    exact_cells: np.ndarray,
    method: np.ndarray,
    undefined_why: np.ndarray,
    figures: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    samples: Samples | None,
) -> list[exact.TestResult | str]:
    """The exact or resampling test of each of `exact_cells` (positions in `cells`), or why it is undefined.
    A modified t on logs undefined for its retail values switches `method` (and `undefined_why`) in place.

    The cells' values are gathered here (CellSamples is not thread-safe). Fisher cells are tested all at
    once; permutation cells pool by pool (exact.permutation_tests), on a thread per core: mostly numpy
    with the GIL released. A pool's Monte Carlo streams come from seeds of the pool and the CLEC sample
    size (monte_carlo_seed), so results do not depend on the order in which pools finish.
    """
    st = plan.statistics
    clec_num, clec_n, retail_num, retail_n = figures
    found: dict[int, exact.TestResult | str] = {}
    worse_is_higher = measure.direction == "lower_better"
    is_fisher = method[exact_cells] == "fisher_exact"
    fisher = exact_cells[is_fisher]
    if fisher.size:
        tests = exact.fisher_exact_tests(
            np.round(clec_num[fisher]),
            np.trunc(clec_n[fisher]),
            np.round(retail_num[fisher]),
            np.trunc(retail_n[fisher]),
            worse_is_higher,
        )
        found.update((int(i), str(r) if isinstance(r, ValueError) else r) for i, r in zip(fisher, tests, strict=True))
    by_pool: dict[int, tuple[exact.Pool, list[tuple[int, dict[str, Any], np.ndarray]]]] = {}
    pools: dict[int, tuple[np.ndarray, exact.Pool | str]] = {}  # by retail sample: a retail analog serves many cells
    valued = exact_cells[~is_fisher]  # the cells whose test needs their values: their keys as dicts, at once
    rows = cast(list[dict[str, Any]], cells.iloc[valued].to_dict("records") if valued.size else [])
    for c, cell in zip(valued.tolist(), rows, strict=True):
        values = _values(samples, method[c], cell)
        why = (
            _log_t_undefined(values[1])
            if method[c] == "modified_t_log" and st.undefined_statistic == "exact_test" and values is not None
            else None
        )
        if why is not None:  # a mean's exact test, the permutation test, needs the very values gathered above
            method[c], undefined_why[c] = st.exact_method(measure.type), why
        if method[c] == "permutation" and values is not None:
            retail_pool = _pool(pools, values[1])
            if isinstance(retail_pool, str):
                found[c] = retail_pool
            else:
                by_pool.setdefault(id(retail_pool), (retail_pool, []))[1].append((c, cell, values[0]))
            continue
        cell_figures = (clec_num[c], clec_n[c], retail_num[c], retail_n[c])
        found[c] = _exact_or_reason(plan, measure, method[c], cell, cell_figures, values)
    jobs = [functools.partial(_permutation_cells, plan, measure, pool, members) for pool, members in by_pool.values()]
    with ThreadPoolExecutor(max_workers=_workers(len(jobs))) as threads:
        for tested_cells in threads.map(lambda job: job(), jobs):
            found.update(tested_cells)
    return [found[c] for c in exact_cells.tolist()]


def _meets(measure: Measure, numerator: float, n: float, target: float) -> bool:
    """Stare and compare in exact rational arithmetic; equal counts as met."""
    result = Fraction(numerator) * Fraction(str(measure.scale)) / Fraction(int(n))
    goal = Fraction(str(target))
    return result >= goal if measure.direction == "higher_better" else result <= goal


Samples = Callable[[Mapping[str, Any]], tuple[np.ndarray, np.ndarray]]


def allowed_misses(n: int, target_percent: float, direction: str) -> int:
    """Misses a benchmark allows: max(1, floor(n x (1 - target))) in exact decimal arithmetic.

    The floor never loosens the benchmark (at 95%, 28 of 30 is 93.3% and misses); the minimum of
    one is the small-sample adjustment: one miss never fails a cell too small to allow one.
    For a lower-is-better benchmark the target is itself the share of failures allowed.
    """
    share = Decimal(str(target_percent)) / 100
    failures = Decimal(n) * ((1 - share) if direction == "higher_better" else share)
    return max(int(failures.to_integral_value(rounding=ROUND_FLOOR)), 1)


def log_offset(plan: Plan, measure: Measure) -> float:
    """California's offset: ln(x + log_offset x the measure's unit of measurement)."""
    if measure.unit_of_measurement is None:
        raise ValueError(f"{measure.id} has no unit_of_measurement: the log offset is undefined")
    return plan.statistics.log_offset * measure.unit_of_measurement


def _log_t_undefined(retail_values: np.ndarray) -> str | None:
    """Why the modified t on logs is undefined for these retail values, or None."""
    if len(retail_values) < 2:
        return "retail sample of 1: the sample variance is undefined"
    if np.all(retail_values == retail_values[0]):
        return "zero retail variance: the modified t is undefined"
    return None


_COUNT_METHODS = ("fisher_exact", "binomial_exact")  # tests that need only counts, not the cell's values


def _workers(jobs: int) -> int:
    """Threads for a measure's exact tests: one per core available to this process, at most one per test;
    one on a Dask worker, whose single thread is its share of the machine (the other cores run the
    other workers: a thread per core in each would oversubscribe them)."""
    if _on_dask_worker():
        return 1
    return max(1, min(jobs, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _on_dask_worker() -> bool:
    if "distributed" not in sys.modules:  # never imported: not a worker (and no import just to ask)
        return False
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:  # "No worker found": the run's own process, or a thread outside any task
        return False
    return True


def _values(samples: Samples | None, method: str, cell: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """The CLEC and retail values a test of `method` needs, or None when counts suffice or none are at hand."""
    return None if samples is None or method in _COUNT_METHODS else samples(cell)


def _pool(pools: dict[int, tuple[np.ndarray, exact.Pool | str]], retail: np.ndarray) -> exact.Pool | str:
    """The permutation pool of a retail sample, built once per sample (or why it cannot be), in the
    calling thread: the tests on other threads only read it."""
    if id(retail) not in pools:
        try:
            pool: exact.Pool | str = exact.Pool.of_samples(retail)
        except ValueError as exc:
            pool = str(exc)
        pools[id(retail)] = (retail, pool)  # the sample too: its id stays its own while the entry lives
    return pools[id(retail)][1]


def _exact_or_reason(
    plan: Plan,
    measure: Measure,
    method: str,
    cell: Mapping[str, Any],
    figures: tuple[float, float, float, float],
    values: tuple[np.ndarray, np.ndarray] | None,
    pool: exact.Pool | str | None = None,
) -> exact.TestResult | str:
    """exact_test's result, or the reason the test is undefined for this cell."""
    if isinstance(pool, str):
        return pool
    try:
        return exact_test(plan, measure, method, cell, *figures, values, pool)
    except ValueError as exc:
        return str(exc)


def exact_test(
    plan: Plan,
    measure: Measure,
    method: str,
    cell: Mapping[str, Any],
    clec_num: float,
    clec_n: float,
    retail_num: float,
    retail_n: float,
    values: tuple[np.ndarray, np.ndarray] | None,
    pool: exact.Pool | None = None,
) -> exact.TestResult:
    """Run one cell's small-sample or alternative parity test; ValueError when it is undefined.
    `values` are the cell's CLEC and retail values, needed by all but the count tests; `pool`, the
    retail values prepared for permutation tests (exact.Pool), when the caller shares one between cells."""
    worse_is_higher = measure.direction == "lower_better"
    if method == "fisher_exact":
        return exact.fisher_exact(round(clec_num), int(clec_n), round(retail_num), int(retail_n), worse_is_higher)
    if method == "binomial_exact":
        return exact.binomial_rate(round(clec_num), clec_n, round(retail_num), retail_n, worse_is_higher)
    if values is None:
        raise ValueError(f"{method} needs the cell's values")
    clec_values, retail_values = values
    if method == "modified_t_log":
        offset = log_offset(plan, measure)
        c, r = np.log(clec_values + offset), np.log(retail_values + offset)
        if len(r) < 2:
            raise ValueError("retail sample of 1: the sample variance is undefined")
        return exact.modified_t(float(c.mean()), len(c), float(r.mean()), float(r.var(ddof=1)), len(r), worse_is_higher)
    cv, cc = np.unique(clec_values, return_counts=True)
    retail = pool if pool is not None else exact.Pool.of_samples(retail_values)
    return exact.permutation_test(
        cv,
        cc,
        retail,
        None,
        worse_is_higher,
        lattice=dict(plan.statistics.lattice).get(measure.unit),
        resamples=plan.statistics.resamples,
        seed=monte_carlo_seed(plan, measure, cell, int(cc.sum())),
        sequential_h=plan.statistics.sequential_h,
    )


def monte_carlo_seed(plan: Plan, measure: Measure, cell: Mapping[str, Any], clec_n: int) -> int:
    """The Monte Carlo seed of a permutation cell: from the plan's run seed, the cell's retail pool (measure,
    state, retail analog product, dimension values, '*' where rolled up) and its CLEC sample size, so that
    the cells of one pool and size share one stream of draws (exact.permutation_tests)."""
    key = [measure.id, "retail", str(cell["state"]), str(plan.product(cell["product"]).retail_analog)]
    key += [f"{d.field}={'*' if _blank(cell.get(d.field)) else cell.get(d.field)}" for d in measure.dimensions]
    return exact.seed_for(plan.statistics.seed, *key, f"n={clec_n}")


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _permutation_cells(
    plan: Plan, measure: Measure, pool: exact.Pool, members: list[tuple[int, dict[str, Any], np.ndarray]]
) -> list[tuple[int, exact.TestResult | str]]:
    """The permutation tests of the cells (index, cell, CLEC values) of one retail pool, all at once."""
    st = plan.statistics
    clec = _histograms([values for _i, _cell, values in members])
    first = members[0][1]
    results = exact.permutation_tests(
        clec,
        pool,
        measure.direction == "lower_better",
        lattice=dict(st.lattice).get(measure.unit),
        resamples=st.resamples,
        seeds=lambda n: monte_carlo_seed(plan, measure, first, n),
        sequential_h=st.sequential_h,
    )
    return [(i, str(r) if isinstance(r, ValueError) else r) for (i, _c, _v), r in zip(members, results, strict=True)]


def _histograms(samples: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """[np.unique(x, return_counts=True) for x in samples]: the same distinct values and counts, found at once for
    samples that are all one-dimensional floats in ascending order (as CellSamples gives them: the runs of equal
    values, a few numpy calls for every sample together), else by np.unique (unsorted, NaN, -0.0 beside 0.0)."""
    arrays = [np.asarray(x) for x in samples]
    if not arrays or any(x.ndim != 1 or x.dtype != np.float64 for x in arrays):
        return [np.unique(x, return_counts=True) for x in arrays]
    sizes = np.array([x.size for x in arrays], dtype=np.int64)
    v = np.concatenate(arrays)
    starts = np.cumsum(sizes) - sizes
    new = np.ones(v.size, dtype=bool)  # where a run of equal values begins: a sample's start, or a new value
    np.not_equal(v[1:], v[:-1], out=new[1:])
    ascending = v[1:] >= v[:-1]
    ascending[starts[(starts > 0) & (starts < v.size)] - 1] = True
    if not ascending.all() or bool(np.any((v == 0) & np.signbit(v))):
        return [np.unique(x, return_counts=True) for x in arrays]
    new[starts[starts < v.size]] = True
    first = np.flatnonzero(new)
    counts = np.diff(np.append(first, v.size))
    values = v[first]
    bounds = np.searchsorted(first, np.append(starts, v.size)).tolist()
    return [(values[a:b], counts[a:b]) for a, b in itertools.pairwise(bounds)]
