"""Verdicts per cell: pick the plan's standard, then benchmark or parity test, then status.

Statuses: met, miss, no_activity (no CLEC records counted), no_retail_analog (parity but
no retail records), undetermined (the test is undefined; status_reason says why), diagnostic.
Benchmarks are judged by stare and compare (equal counts as met), exactly: proportions as
numerator * 100 against target * n in rational arithmetic, never binary floats.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from carrier_sla import stats
from carrier_sla.aggregate import BASE
from carrier_sla.plan import Measure, Plan, Standard

RESULT_STATUS = ("met", "miss", "no_activity", "no_retail_analog", "undetermined", "diagnostic")


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


def judge(plan: Plan, measure: Measure, cells: pd.DataFrame) -> pd.DataFrame:
    """Add figures, statistics and a status to each cell of one measure."""
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

    standards = [
        standard_for(measure, s, p, {d: row[i] for i, d in enumerate(dims)})
        for s, p, row in zip(
            out["state"], out["product"], out[dims].itertuples(index=False) if dims else [()] * len(out), strict=True
        )
    ]
    kind = np.array([s.type if s else "none" for s in standards], dtype=object)
    target = np.array([s.target if s and s.target is not None else np.nan for s in standards], dtype=float)

    higher = np.full(len(out), measure.direction == "higher_better")
    z = stats.modified_z(
        measure.type, higher, clec_n, clec_mean, retail_n, retail_mean, out["retail_m2"].to_numpy(dtype=float)
    )

    status = np.full(len(out), None, dtype=object)
    reason = np.full(len(out), None, dtype=object)
    method = np.full(len(out), None, dtype=object)
    statistic = np.full(len(out), np.nan)
    p_value = np.full(len(out), np.nan)
    critical = np.full(len(out), np.nan)

    diagnostic = kind == "diagnostic"
    status[diagnostic] = "diagnostic"
    status[kind == "none"] = "undetermined"
    reason[kind == "none"] = "no standard of the plan matches this cell"
    no_activity = (status == None) & (clec_n == 0) & ~(rate & (clec_num > 0))  # noqa: E711
    if rate:
        no_base = (status == None) & (clec_n == 0) & (clec_num > 0)  # noqa: E711
        status[no_base] = "undetermined"
        reason[no_base] = "troubles reported but no lines in service for this cell"
    status[no_activity] = "no_activity"
    reason[no_activity] = "no CLEC records counted in this period"

    bench = (status == None) & (kind == "benchmark")  # noqa: E711
    method[bench] = "stare_and_compare"
    met = np.array(
        [_meets(measure, num, n, t) for num, n, t in zip(clec_num[bench], clec_n[bench], target[bench], strict=True)],
        dtype=bool,
    )
    status[bench] = np.where(met, "met", "miss")

    parity = (status == None) & (kind == "parity")  # noqa: E711
    no_retail = parity & (retail_n == 0)
    status[no_retail] = "no_retail_analog"
    reason[no_retail] = "no retail records of the analog product for this cell"
    tested = parity & ~no_retail
    method[tested] = plan.statistics.parity_method
    undefined = tested & (z.undefined_reason != None)  # noqa: E711
    status[undefined] = "undetermined"
    reason[undefined] = z.undefined_reason[undefined]
    scored = tested & ~undefined
    statistic[scored] = z.statistic[scored]
    p_value[scored] = z.p_value[scored]
    critical[tested] = plan.statistics.critical_value
    status[scored] = np.where(z.statistic[scored] > plan.statistics.critical_value, "miss", "met")

    is_parity = kind == "parity"
    retail_sd = (
        np.sqrt(stats.sample_variance(retail_n, out["retail_m2"].to_numpy(dtype=float)))
        if measure.type == "mean"
        else np.sqrt(retail_mean * (1 - retail_mean)) * scale
    )
    return out.assign(
        standard=np.where(kind == "none", None, kind),
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
        status=status,
        status_reason=reason,
    )


def _meets(measure: Measure, numerator: float, n: float, target: float) -> bool:
    """Stare and compare in exact rational arithmetic; equal counts as met."""
    result = Fraction(numerator) * Fraction(str(measure.scale)) / Fraction(int(n))
    goal = Fraction(str(target))
    return result >= goal if measure.direction == "higher_better" else result <= goal
