"""Partial aggregates per batch, their merge, and the cells that verdicts are given on.

A partial aggregate holds, per (carrier, state, product, dimension values): records
evaluated, records included (n), the sum of values and M2 (sum of squared deviations from
the group mean). Partials of any batches merge exactly (Chan et al.'s pairwise update), so
the computation can stream or be distributed; cells are roll-ups of merged partials.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carrier_sla.contract import Records
from carrier_sla.evaluate import Evaluated
from carrier_sla.plan import Measure, Plan

STATS = ["n_evaluated", "n", "sum", "m2"]
BASE = "base"  # rate measures: lines in service


def dimension_fields(plan: Plan) -> list[str]:
    """Every dimension field any measure of the plan splits by (result columns)."""
    out: list[str] = []
    for m in plan.measures:
        out += [d.field for d in m.dimensions if d.field not in out]
    return out


def dim_codes(rec: Records, name: str) -> tuple[np.ndarray, list[object]]:
    """Dense codes of a dimension field (null = last code) and the value of each code."""
    if name in rec.codes:
        cats: list[object] = list(rec.cats[name])
        codes = rec.codes[name].astype(np.int64)
        return np.where(codes < 0, len(cats), codes), [*cats, None]
    values = rec.cols[name]
    return values.astype(np.int64), [False, True]


def partials(ev: Evaluated) -> pd.DataFrame:
    """Partial aggregates of one evaluated batch, one row per group present."""
    rec = ev.records
    keys = ["carrier_id", "state", "product"]
    arrays, labels = [], []
    for k in keys:
        arrays.append(rec.codes[k].astype(np.int64))
        labels.append(list(rec.cats[k]))
    dims = [d.field for d in ev.measure.dimensions]
    for d in dims:
        codes, cats = dim_codes(rec, d)
        arrays.append(codes)
        labels.append(cats)
    shape = tuple(len(x) for x in labels)
    if rec.n == 0:
        return pd.DataFrame(columns=keys + dims + STATS)
    flat = np.ravel_multi_index(arrays, shape)
    size = int(np.prod(shape))
    inc = ev.included
    value = np.where(inc, ev.value, 0.0)
    n_eval = np.bincount(flat, minlength=size)
    n = np.bincount(flat, weights=inc, minlength=size)
    total = np.bincount(flat, weights=value, minlength=size)
    mean = np.divide(total, n, out=np.zeros(size), where=n > 0)
    m2 = np.bincount(flat, weights=np.where(inc, (ev.value - mean[flat]) ** 2, 0.0), minlength=size)
    present = np.flatnonzero(n_eval)
    index = np.unravel_index(present, shape)
    frame = {name: np.array(lab, dtype=object)[ix] for name, lab, ix in zip(keys + dims, labels, index, strict=True)}
    frame.update(n_evaluated=n_eval[present], n=n[present].astype(np.int64), sum=total[present], m2=m2[present])
    return pd.DataFrame(frame)


def base_partials(lines: Records, measure: Measure) -> pd.DataFrame:
    """Lines in service per (carrier, state, product) of a rate measure's data month."""
    field = measure.rate_base.field if measure.rate_base else "lines_in_service"
    frame = pd.DataFrame(
        {k: lines.decoded(k) for k in ("carrier_id", "state", "product")} | {BASE: lines.cols[field].astype(np.int64)}
    )
    return frame.groupby(["carrier_id", "state", "product"], as_index=False, sort=True)[BASE].sum()


def merge(frames: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    """Merge partial aggregates over `keys`: counts and sums add, M2 by Chan's update:
    M2 = sum(M2_i + n_i (mean_i - mean)^2) over the parts i of a group."""
    nonempty = [f for f in frames if len(f)]
    if not nonempty:
        return pd.DataFrame(columns=keys + STATS)
    frame = pd.concat(nonempty, ignore_index=True) if len(nonempty) > 1 else nonempty[0]
    codes = frame.groupby(keys, dropna=False, sort=True).ngroup().to_numpy()
    groups, first = np.unique(codes, return_index=True)
    size = len(groups)
    own_n = frame["n"].to_numpy(dtype=float)
    own_sum = frame["sum"].to_numpy(dtype=float)
    n = np.bincount(codes, weights=own_n, minlength=size)
    total = np.bincount(codes, weights=own_sum, minlength=size)
    own_mean = np.divide(own_sum, own_n, out=np.zeros(len(frame)), where=own_n > 0)
    mean = np.divide(total, n, out=np.zeros(size), where=n > 0)
    m2 = np.bincount(codes, weights=frame["m2"].to_numpy(dtype=float) + own_n * (own_mean - mean[codes]) ** 2,
                     minlength=size)
    out = frame.iloc[first][keys].reset_index(drop=True)
    out["n_evaluated"] = np.bincount(codes, weights=frame["n_evaluated"].to_numpy(dtype=float), minlength=size).astype(np.int64)
    out["n"] = n.astype(np.int64)
    out["sum"] = total
    out["m2"] = m2
    return out


def cells(plan: Plan, measure: Measure, parts: pd.DataFrame, base: pd.DataFrame | None) -> pd.DataFrame:
    """Per CLEC cell and all-CLEC aggregate: CLEC and retail-analog aggregates side by side.

    A CLEC product's cell is split by the measure's dimensions that apply to that product;
    its retail analog (the analog product's retail records) is split the same way.
    """
    retail_id = plan.retail_carrier_id
    dims = [d.field for d in measure.dimensions]
    stats = STATS + ([BASE] if base is not None else [])
    if base is not None:
        parts = _with_base(parts, base)
    clec_products = [p for p in plan.products if not p.is_retail]
    is_retail = (parts["carrier_id"] == retail_id).to_numpy()
    clec = _blank_dims(measure, parts[~is_retail & parts["product"].isin([p.code for p in clec_products]).to_numpy()])
    if clec.empty:
        return pd.DataFrame()
    # the retail analog of each CLEC product, relabelled with the CLEC product and split like it
    retail = parts[is_retail]
    analogs = [retail[retail["product"] == p.retail_analog].assign(product=p.code) for p in clec_products]
    analogs = [_blank_dims(measure, a) for a in analogs if len(a)]
    keys = ["state", "product", *dims]
    retail_cells = _roll(pd.concat(analogs, ignore_index=True), keys, stats) if analogs else None
    out = []
    for scope, frame in (("clec", _roll(clec, ["carrier_id", *keys], stats)), ("clec_aggregate", _roll(clec, keys, stats))):
        frame = frame.assign(scope=scope)
        if "carrier_id" not in frame.columns:
            frame["carrier_id"] = None
        if retail_cells is not None:
            frame = frame.merge(retail_cells.add_prefix("retail_").rename(columns={f"retail_{k}": k for k in keys}),
                                how="left", on=keys)
        out.append(frame)
    result = pd.concat(out, ignore_index=True)
    for k in stats:
        col = f"retail_{k}"
        result[col] = result[col].fillna(0) if col in result.columns else 0
    return result


def _blank_dims(measure: Measure, frame: pd.DataFrame) -> pd.DataFrame:
    """Null the dimension values a product is not split by."""
    frame = frame.copy()
    for d in measure.dimensions:
        if d.products is not None:
            keep = frame["product"].isin(d.products).to_numpy()
            frame[d.field] = np.where(keep, frame[d.field].to_numpy(dtype=object), None)
    return frame


def _with_base(parts: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """Outer-join counts with the lines base: a carrier with lines and no troubles has n=0 troubles."""
    keys = ["carrier_id", "state", "product"]
    rolled = merge([parts], keys) if not parts.empty else pd.DataFrame(columns=keys + STATS)
    out = rolled.merge(base[keys + [BASE]], how="outer", on=keys)
    for k in STATS + [BASE]:
        out[k] = out[k].fillna(0)
    return out


def _roll(frame: pd.DataFrame, keys: list[str], stats: list[str]) -> pd.DataFrame:
    merged = merge([frame], keys)
    if BASE in stats:
        bases = frame.groupby(keys, dropna=False, sort=True, as_index=False)[BASE].sum()
        merged = merged.merge(bases, on=keys, how="outer")
    return merged
