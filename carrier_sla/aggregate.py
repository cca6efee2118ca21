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
    """Merge partial aggregates over `keys`: counts and sums add, M2 by Chan's update."""
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else frames[0]
    if frame.empty:
        return frame[keys + STATS].copy() if set(keys + STATS) <= set(frame.columns) else pd.DataFrame(columns=keys + STATS)
    grouped = frame.groupby(keys, dropna=False, sort=True)
    n = grouped["n"].transform("sum").to_numpy(dtype=float)
    total = grouped["sum"].transform("sum").to_numpy(dtype=float)
    own_n = frame["n"].to_numpy(dtype=float)
    own_mean = np.divide(frame["sum"].to_numpy(dtype=float), own_n, out=np.zeros(len(frame)), where=own_n > 0)
    group_mean = np.divide(total, n, out=np.zeros(len(frame)), where=n > 0)
    frame = frame.assign(m2=frame["m2"].to_numpy(dtype=float) + own_n * (own_mean - group_mean) ** 2)
    out = frame.groupby(keys, dropna=False, sort=True, as_index=False)[STATS].sum()
    out["n"] = out["n"].astype(np.int64)
    out["n_evaluated"] = out["n_evaluated"].astype(np.int64)
    return out


def cells(plan: Plan, measure: Measure, parts: pd.DataFrame, base: pd.DataFrame | None) -> pd.DataFrame:
    """Per CLEC cell and all-CLEC aggregate: CLEC and retail-analog aggregates side by side.

    A CLEC product's cell is split by the measure's dimensions that apply to that product;
    its retail analog (the analog product's retail records) is split the same way.
    """
    retail_id = plan.retail_carrier_id
    dims_all = [d.field for d in measure.dimensions]
    is_retail = parts["carrier_id"] == retail_id
    clec_products = [p.code for p in plan.products if not p.is_retail]
    rows = []
    for product in clec_products:
        dims = [d.field for d in measure.dimensions if d.applies_to(product)]
        analog = plan.product(product).retail_analog
        clec = parts[~is_retail & (parts["product"] == product)]
        retail = parts[is_retail & (parts["product"] == analog)]
        if base is not None:
            clec = _with_base(clec, base[(base["carrier_id"] != retail_id) & (base["product"] == product)])
            retail = _with_base(retail, base[(base["carrier_id"] == retail_id) & (base["product"] == analog)])
        if clec.empty:
            continue
        stats = STATS + ([BASE] if base is not None else [])
        per_clec = _roll(clec, ["carrier_id", "state", *dims], stats).assign(scope="clec")
        everyone = _roll(clec, ["state", *dims], stats).assign(scope="clec_aggregate", carrier_id=None)
        analog_cells = _roll(retail, ["state", *dims], stats) if not retail.empty else None
        for frame in (per_clec, everyone):
            frame = frame.assign(product=product)
            if analog_cells is not None:
                frame = frame.merge(analog_cells.add_prefix("retail_"), how="left",
                                    left_on=["state", *dims], right_on=[f"retail_{k}" for k in ["state", *dims]])
                frame = frame.drop(columns=[f"retail_{k}" for k in ["state", *dims]])
            for d in dims_all:
                if d not in dims:
                    frame[d] = None
            rows.append(frame)
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows, ignore_index=True)
    for k in STATS + ([BASE] if base is not None else []):
        col = f"retail_{k}"
        out[col] = out[col].fillna(0) if col in out.columns else 0
    return out


def _with_base(parts: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """Outer-join counts with the lines base: a carrier with lines and no troubles has n=0 troubles."""
    keys = ["carrier_id", "state", "product"]
    rolled = _roll(parts, keys, STATS) if not parts.empty else pd.DataFrame(columns=keys + STATS)
    out = rolled.merge(base[keys + [BASE]], how="outer", on=keys)
    for k in STATS + [BASE]:
        out[k] = out[k].fillna(0)
    return out


def _roll(frame: pd.DataFrame, keys: list[str], stats: list[str]) -> pd.DataFrame:
    merged = merge([frame[[*keys, *STATS]]], keys) if set(STATS) <= set(frame.columns) else frame
    if BASE in stats:
        bases = frame.groupby(keys, dropna=False, sort=True, as_index=False)[BASE].sum()
        merged = merged.merge(bases, on=keys, how="outer")
    return merged
