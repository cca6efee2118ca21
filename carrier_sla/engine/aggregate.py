"""Partial aggregates per batch, their merge, and the cells that verdicts are given on.

A partial aggregate holds, per (carrier, state, product, dimension values), as dense arrays
over those axes: records evaluated, records included (n), the sum of values and M2 (the sum
of squared deviations from the group mean). Partials of any batches merge (counts and sums
add; M2 by Chan et al.'s update M2 = sum(M2_i + n_i (mean_i - mean)^2)), so the computation
can stream or be distributed; cells are roll-ups of merged partials over axes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from carrier_sla import vocabulary
from carrier_sla.engine.evaluate import Evaluated
from carrier_sla.inputs.contract import Records
from carrier_sla.plan import fields
from carrier_sla.plan.load import Measure, Plan

STATS = ["n_evaluated", "n", "sum", "m2"]
BASE = "base"  # rate measures: lines in service


def dimension_fields(plan: Plan) -> dict[str, pa.DataType]:
    """Every dimension field any measure of the plan splits by (result columns), with its Arrow type."""
    return fields.dimension_types(plan)


def dim_codes(rec: Records, name: str) -> tuple[np.ndarray, list[object]]:
    """Dense codes of a dimension field (null = last code) and the value of each code."""
    if name in rec.codes:
        cats: list[object] = list(rec.cats[name])
        codes = rec.codes[name].astype(np.int64)
        return np.where(codes < 0, len(cats), codes), [*cats, None]
    values = rec.cols[name]
    return values.astype(np.int64), [False, True]


@dataclass
class Partial:
    """Dense partial aggregates over axes (carrier_id, state, product, *dimensions)."""

    axes: tuple[str, ...]
    labels: tuple[tuple[object, ...], ...]  # the value of each position on each axis
    n_evaluated: np.ndarray
    n: np.ndarray
    sum: np.ndarray
    m2: np.ndarray

    def label_index(self, axis: str, value: object) -> int | None:
        labels = self.labels[self.axes.index(axis)]
        return labels.index(value) if value in labels else None


def partials(ev: Evaluated) -> Partial:
    """Partial aggregates of one evaluated batch."""
    rec = ev.records
    axes = ["carrier_id", "state", "product"]
    arrays = [rec.codes[k].astype(np.int64) for k in axes]
    labels: list[tuple[object, ...]] = [tuple(rec.cats[k]) for k in axes]
    for d in ev.measure.dimensions:
        codes, cats = dim_codes(rec, d.field)
        arrays.append(codes)
        labels.append(tuple(cats))
        axes.append(d.field)
    shape = tuple(len(x) for x in labels)
    size = int(np.prod(shape))
    flat = np.ravel_multi_index(arrays, shape) if rec.n else np.zeros(0, dtype=np.int64)
    inc = ev.included
    value = np.where(inc, ev.value, 0.0)
    n = np.bincount(flat, weights=inc, minlength=size).astype(np.float64)
    total = np.bincount(flat, weights=value, minlength=size).astype(np.float64)
    mean = np.divide(total, n, out=np.zeros(size), where=n > 0)
    m2 = np.bincount(flat, weights=np.where(inc, (ev.value - mean[flat]) ** 2, 0.0), minlength=size).astype(np.float64)
    return Partial(
        tuple(axes),
        tuple(labels),
        np.bincount(flat, minlength=size).reshape(shape),
        n.reshape(shape),
        total.reshape(shape),
        m2.reshape(shape),
    )


def _align(part: Partial, labels: tuple[tuple[object, ...], ...]) -> Partial:
    """The same aggregates laid out on wider labels (zeros where a label is new)."""
    if part.labels == labels:
        return part
    index = np.ix_(
        *[np.array([new.index(v) for v in old], dtype=np.int64) for old, new in zip(part.labels, labels, strict=True)]
    )
    shape = tuple(len(x) for x in labels)
    arrays = []
    for arr in (part.n_evaluated, part.n, part.sum, part.m2):
        wide = np.zeros(shape, dtype=arr.dtype)
        wide[index] = arr
        arrays.append(wide)
    return Partial(part.axes, labels, *arrays)


def merge(parts: list[Partial]) -> Partial:
    """Merge partial aggregates of several batches (same measure)."""
    axes = parts[0].axes
    labels = tuple(
        tuple(sorted({v for p in parts for v in p.labels[i]}, key=lambda v: (v is None, str(v))))
        for i in range(len(axes))
    )
    if len(parts) == 1:
        labels = parts[0].labels
    aligned = [_align(p, labels) for p in parts]
    n = cast(np.ndarray, sum(p.n for p in aligned))  # parts is never empty: a sum of arrays
    total = cast(np.ndarray, sum(p.sum for p in aligned))
    mean = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
    m2 = sum(p.m2 + p.n * (np.divide(p.sum, p.n, out=np.zeros_like(total), where=p.n > 0) - mean) ** 2 for p in aligned)
    return Partial(axes, labels, cast(np.ndarray, sum(p.n_evaluated for p in aligned)), n, total, m2)


def _roll(n_eval, n, total, m2, *, axes: tuple[int, ...]):
    """Roll aggregates up over axes: counts and sums add, M2 by Chan's update."""
    if not axes:
        return n_eval, n, total, m2
    n_r = n.sum(axis=axes, keepdims=True)
    total_r = total.sum(axis=axes, keepdims=True)
    mean = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
    mean_r = np.divide(total_r, n_r, out=np.zeros_like(total_r), where=n_r > 0)
    m2_r = (m2 + n * (mean - mean_r) ** 2).sum(axis=axes)
    return n_eval.sum(axis=axes), n.sum(axis=axes), total.sum(axis=axes), m2_r


def lines_base(lines: Records, measure: Measure, part: Partial) -> np.ndarray:
    """Lines in service laid out on the partial's (carrier, state, product) axes."""
    field = measure.rate_base.field if measure.rate_base else "lines_in_service"
    shape = tuple(len(x) for x in part.labels[:3])
    base = np.zeros(shape, dtype=np.float64)
    if lines.n == 0:
        return base
    index = []
    for k, labels in zip(("carrier_id", "state", "product"), part.labels[:3], strict=True):
        lookup = np.array([labels.index(v) if v in labels else -1 for v in lines.cats[k]] + [-1], dtype=np.int64)
        index.append(lookup[lines.codes[k]])
    known = np.all([i >= 0 for i in index], axis=0)
    np.add.at(base, tuple(i[known] for i in index), lines.cols[field][known].astype(np.float64))
    return base


def widen_carriers(part: Partial, carriers: list[str]) -> Partial:
    """The partial with every carrier of `carriers` on its carrier axis (e.g. carriers with lines only)."""
    labels = (tuple(sorted(cast(set[str], set(part.labels[0]) | set(carriers)))), *part.labels[1:])  # carrier ids
    return _align(part, labels)


def cells(plan: Plan, measure: Measure, part: Partial, base: np.ndarray | None) -> pd.DataFrame:
    """Per CLEC cell and all-CLEC aggregate: CLEC and retail-analog aggregates side by side.

    A CLEC product's cell is split by the measure's dimensions that apply to that product;
    its retail analog (the analog product's retail records) is split the same way. Test
    carriers get no cells. For rates, `base` holds lines in service per (carrier, state, product).
    """
    carriers = part.labels[0]
    states = part.labels[1]
    retail = part.label_index("carrier_id", plan.retail_carrier_id)
    clec_mask = np.array([c != plan.retail_carrier_id and c not in plan.test_carrier_ids for c in carriers], dtype=bool)
    dims = measure.dimensions
    frames = []
    for product in plan.products:
        p = part.label_index("product", product.code)
        if product.is_retail or p is None:
            continue
        keep = [d.applies_to(product.code) for d in dims]
        drop = [i for i, k in enumerate(keep) if not k]  # dimensions this product is not split by
        # per carrier: axes (carrier, state, *dims) once the product is chosen
        n_eval, n, total, m2 = _roll(
            *(arr[:, :, p] for arr in (part.n_evaluated, part.n, part.sum, part.m2)), axes=tuple(2 + i for i in drop)
        )
        b = base[:, :, p] if base is not None else None
        # CLEC cells: (carrier, state, *kept dims)
        clec = (n_eval, n, total, m2)
        include = clec_mask.reshape((-1,) + (1,) * (n_eval.ndim - 1))
        if b is not None:  # a rate's aggregate counts only the troubles of CLECs with lines in the state
            include = include & (b > 0).reshape(b.shape + (1,) * (n_eval.ndim - 2))
        agg = _roll(*(np.where(include, x, 0) for x in clec), axes=(0,))
        a = part.label_index("product", product.retail_analog)
        if retail is not None and a is not None:
            r_stats = _roll(
                *(arr[retail, :, a] for arr in (part.n_evaluated, part.n, part.sum, part.m2)),
                axes=tuple(1 + i for i in drop),
            )
            r_base = base[retail, :, a] if base is not None else None
        else:
            r_stats = tuple(np.zeros(agg[0].shape) for _ in range(4))
            r_base = np.zeros(len(states)) if base is not None else None
        kept_dims = [d for d, k in zip(dims, keep, strict=True) if k]
        dim_labels = [part.labels[3 + i] for i, k in enumerate(keep) if k]
        for scope, stats_c, base_c in (
            ("clec", clec, b),
            ("clec_aggregate", agg, (b * clec_mask[:, None]).sum(axis=0) if b is not None else None),
        ):
            n_eval_c = stats_c[0]
            present = n_eval_c > 0
            if base_c is not None:
                present = present | (base_c.reshape(base_c.shape + (1,) * (n_eval_c.ndim - base_c.ndim)) > 0)
            if scope == "clec":
                present &= clec_mask.reshape((-1,) + (1,) * (present.ndim - 1))
            idx = np.nonzero(present)
            if not len(idx[0]):
                continue
            frame: dict[str, object] = {}
            if scope == "clec":
                frame["carrier_id"] = np.array(carriers, dtype=object)[idx[0]]
                rest = idx[1:]
            else:
                frame["carrier_id"] = np.full(len(idx[0]), vocabulary.AGGREGATE, dtype=object)
                rest = idx
            state_idx, dim_idx = rest[0], rest[1:]
            frame["state"] = np.array(states, dtype=object)[state_idx]
            frame["product"] = np.full(len(state_idx), product.code, dtype=object)
            for d in dims:
                frame[d.field] = np.full(len(state_idx), None, dtype=object)
            for d, labels, ix in zip(kept_dims, dim_labels, dim_idx, strict=True):
                frame[d.field] = np.array(labels, dtype=object)[ix]
            for name, arr in zip(STATS, stats_c, strict=True):
                frame[name] = arr[idx]
            retail_index = (state_idx, *dim_idx)
            for name, arr in zip(STATS, r_stats, strict=True):
                frame[f"retail_{name}"] = arr[retail_index]
            if base_c is not None:
                assert r_base is not None  # set whenever base (hence base_c) is
                frame[BASE] = base_c[idx[: base_c.ndim]]
                frame[f"retail_{BASE}"] = r_base[state_idx]
            frame["scope"] = np.full(len(state_idx), scope, dtype=object)
            frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass
class SampleIndex:
    """The included values of one measure's records, by group (carrier, state, product,
    dimension values; flat positions over `shape`), as a histogram: each distinct (group, value)
    once with its number of records, sorted by group then value. Histograms of batches or
    partitions merge, and the order is canonical: the values behind a cell, and so a
    resampling test's draws, do not depend on the order records were read in."""

    flat: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    labels: tuple[tuple[object, ...], ...]
    shape: tuple[int, ...]


def sample_index(ev: Evaluated) -> SampleIndex:
    rec = ev.records
    inc = np.flatnonzero(ev.included)
    arrays = [rec.codes[k][inc].astype(np.int64) for k in ("carrier_id", "state", "product")]
    labels: list[tuple[object, ...]] = [tuple(rec.cats[k]) for k in ("carrier_id", "state", "product")]
    for d in ev.measure.dimensions:
        codes, cats = dim_codes(rec, d.field)
        arrays.append(codes[inc])
        labels.append(tuple(cats))
    shape = tuple(max(len(x), 1) for x in labels)
    flat = np.ravel_multi_index(arrays, shape) if len(inc) else np.zeros(0, dtype=np.int64)
    return _histogram(flat, ev.value[inc], np.ones(len(inc), dtype=np.int64), tuple(labels), shape)


def _histogram(flat: np.ndarray, values: np.ndarray, counts: np.ndarray, labels: tuple, shape: tuple) -> SampleIndex:
    # by group, then value: a stable sort by value, then a stable one by group (a radix sort
    # when the groups fit 16 bits), the order np.lexsort((values, flat)) gives, 1.4x faster
    by_value = np.argsort(values, kind="stable")
    groups = flat[by_value]
    if int(np.prod(shape)) <= 1 << 16:
        groups = groups.astype(np.uint16)
    order = by_value[np.argsort(groups, kind="stable")]
    flat, values, counts = flat[order], values[order], counts[order]
    first = np.ones(len(flat), dtype=bool)
    first[1:] = (flat[1:] != flat[:-1]) | (values[1:] != values[:-1])
    starts = np.flatnonzero(first)
    summed = np.add.reduceat(counts, starts) if len(starts) else counts[:0]
    positions = flat[starts]
    if int(np.prod(shape)) < 2**31:  # 16 bytes a distinct value instead of 24
        positions = positions.astype(np.int32)
    return SampleIndex(positions, values[starts], summed.astype(np.int32), labels, shape)


class CellSamples:
    """The values of the records behind a cell, for tests that need more than counts and
    sums (permutation, modified t on logs), gathered from a measure's value histograms (one per
    batch or partition: they are never merged whole); in a canonical order (by value), so the
    values, and a resampling test's draws, do not depend on how the records were split."""

    def __init__(self, plan: Plan, measure: Measure, indexes: list[SampleIndex]):
        self.plan = plan
        self.measure = measure
        self.indexes = indexes
        self._cache: dict[tuple, np.ndarray] = {}
        self._groups: dict[tuple, list[tuple[int, int, int]]] | None = None
        self._axis_labels: dict[int, tuple] = {}

    def _values(self, carriers: list[object], state: object, product: object, dims: list[object]) -> np.ndarray:
        key = (tuple(carriers), state, product, tuple("*" if _rolled(d) else d for d in dims))
        if key not in self._cache:  # a retail analog serves many CLEC cells
            self._cache[key] = self._gather(carriers, state, product, dims)
        return self._cache[key]

    def _spans(self) -> dict[tuple, list[tuple[int, int, int]]]:
        """Every group of every index as a dict from its labels (carrier, state, product, dimension values)
        to its (index, start, end) slices, made on first use: a gather then costs a dict read or a few
        instead of a pass over every index (thousands of small cells gather from dozens of partitions)."""
        if self._groups is None:
            self._groups = _spans_by_labels(self.indexes)
        return self._groups

    def _labels(self, axis: int) -> tuple:
        """The labels of an axis in any index, made once."""
        if axis not in self._axis_labels:
            self._axis_labels[axis] = tuple(dict.fromkeys(x for index in self.indexes for x in index.labels[axis]))
        return self._axis_labels[axis]

    def _gather(self, carriers: list[object], state: object, product: object, dims: list[object]) -> np.ndarray:
        spans = self._spans()
        if len(carriers) == 1 and not any(_rolled(d) for d in dims):  # one group: one dict read
            keys: Iterable[tuple] = [(carriers[0], state, product, *dims)]
        else:  # every carrier, and every label of a rolled-up dimension
            axes = [self._labels(axis) if _rolled(d) else (d,) for axis, d in enumerate(dims, start=3)]
            keys = itertools.product(carriers, (state,), (product,), *axes)
        values, counts = [], []
        for key in keys:
            for i, start, end in spans.get(key, ()):
                values.append(self.indexes[i].values[start:end])
                counts.append(self.indexes[i].counts[start:end])
        return _canonical(values, counts)

    def __call__(self, cell: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        plan, measure = self.plan, self.measure
        carrier = cell.get("carrier_id")
        carriers: list[object]
        if _rolled(carrier):
            carriers = [
                c
                for c in dict.fromkeys(c for index in self.indexes for c in index.labels[0])
                if c != plan.retail_carrier_id and c not in plan.test_carrier_ids
            ]
        else:
            carriers = [carrier]
        dims = [cell.get(d.field) for d in measure.dimensions]
        analog = plan.product(cell["product"]).retail_analog
        return (
            self._values(carriers, cell["state"], cell["product"], dims),
            self._values([plan.retail_carrier_id], cell["state"], analog, dims),
        )


def _spans_by_labels(indexes: list[SampleIndex]) -> dict[tuple, list[tuple[int, int, int]]]:
    """The groups of several SampleIndexes as a dict from their labels (carrier, state, product, dimension
    values) to their (index, start, end) slices, by index, then position: every group coded by its labels'
    codes among every index's labels (the first index naming a label codes it), then one stable sort of all."""
    if not indexes:
        return {}
    axes = len(indexes[0].shape)
    codes: list[dict[object, int]] = [{} for _ in range(axes)]
    coded, owner, firsts, lasts = [], [], [], []
    for i, index in enumerate(indexes):
        flat = index.flat
        cut = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.concatenate([[0], cut]) if flat.size else cut
        ends = np.concatenate([cut, [flat.size]]) if flat.size else cut
        local = np.unravel_index(flat[starts], index.shape)
        glob = []
        for axis, (labels, at) in enumerate(zip(index.labels, local, strict=True)):
            table = np.array([codes[axis].setdefault(x, len(codes[axis])) for x in labels], dtype=np.int64)
            glob.append(table[at] if table.size else at.astype(np.int64))
        coded.append(glob)
        owner.append(np.full(starts.size, i, dtype=np.int64))
        firsts.append(starts)
        lasts.append(ends)
    shape = tuple(max(len(c), 1) for c in codes)
    flat = np.concatenate([np.ravel_multi_index(g, shape) if g[0].size else g[0] for g in coded])
    order = np.argsort(flat, kind="stable")
    flat = flat[order]
    slices = list(zip(*(np.concatenate(x)[order].tolist() for x in (owner, firsts, lasts)), strict=True))
    groups = (np.flatnonzero(flat[1:] != flat[:-1]) + 1).tolist()
    bounds = [0, *groups, len(slices)]
    named = [list(c) for c in codes]
    leads = np.unravel_index(flat[bounds[:-1]], shape) if slices else [np.zeros(0, np.int64)] * axes
    keys = zip(*([named[axis][x] for x in leads[axis].tolist()] for axis in range(axes)), strict=True)
    return {key: slices[a:b] for key, a, b in zip(keys, bounds[:-1], bounds[1:], strict=True)}


def _canonical(values: list[np.ndarray], counts: list[np.ndarray]) -> np.ndarray:
    """The values of several histogram slices, one per record, in one canonical order (ascending: equal
    values are the same number, so their order does not show)."""
    if not values:
        return np.zeros(0)
    if len(values) == 1:  # one slice: already ascending
        return np.repeat(values[0], counts[0])
    v, c = np.concatenate(values), np.concatenate(counts)
    if v.size <= 1024 or (v.dtype.kind == "f" and bool(np.any(np.signbit(v) & (v == 0)))):
        return np.sort(np.repeat(v, c))  # few values (fewer numpy calls), or -0.0 and 0.0: the records sorted
    if 2 * v.size > int(c.sum()):  # mostly single records: one merge of the slices' ascending runs (timsort)
        return np.sort(np.repeat(v, c), kind="stable")
    order = np.argsort(v, kind="stable")  # the distinct values of the slices sorted, not their many records
    return np.repeat(v[order], c[order])


def _rolled(value: object) -> bool:
    """Whether a cell's carrier_id stands for every CLEC (the aggregate)."""
    return value is None or value == vocabulary.AGGREGATE or (isinstance(value, float) and np.isnan(value))
