"""Parity statistics. Canonical orientation inside: a positive statistic means the CLEC
was served worse than the retail analog; plans that print the other sign convert on display.

Modified z (LCUG; Brownie, Boos and Hughes-Oliver 1990), only the retail variance:
    z = (M_clec - M_retail) / sqrt(s2_retail * (1/n_clec + 1/n_retail))   for lower-is-better,
    z = (M_retail - M_clec) / sqrt(s2_retail * (1/n_clec + 1/n_retail))   for higher-is-better,
with s2_retail the sample variance (n - 1) for means and p(1 - p) for proportions and rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr


@dataclass(frozen=True)
class ZResult:
    """Everything behind modified z verdicts, one entry per cell."""

    statistic: np.ndarray  # NaN where undefined
    p_value: np.ndarray  # one-tailed normal tail area of the statistic
    retail_variance: np.ndarray
    undefined_reason: np.ndarray  # object: None, or why z is undefined


def sample_variance(n: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Sample variance (n - 1 denominator) from a count and a sum of squared deviations."""
    return np.divide(m2, n - 1, out=np.full(len(n), np.nan), where=n > 1)


def modified_z(
    kind: str,
    higher_better: np.ndarray,
    clec_n: np.ndarray,
    clec_mean: np.ndarray,
    retail_n: np.ndarray,
    retail_mean: np.ndarray,
    retail_m2: np.ndarray,
) -> ZResult:
    """Vectorized modified z for cells of one measure type (mean, proportion or rate).

    Means are in the measure's own unit; proportions and rates as fractions (0..1).
    """
    clec_n = clec_n.astype(float)
    retail_n = retail_n.astype(float)
    var = sample_variance(retail_n, retail_m2) if kind == "mean" else retail_mean * (1.0 - retail_mean)
    reason = np.full(len(clec_n), None, dtype=object)
    if kind == "mean":
        reason[retail_n < 2] = "retail sample of 1: the sample variance is undefined"
    if kind != "mean":
        over = (reason == None) & (retail_mean > 1)  # noqa: E711
        reason[over] = "retail count exceeds its base (rate above 1 per unit): p(1-p) is not a variance"
    reason[(reason == None) & ~(var > 0)] = "zero retail variance: the modified z is undefined"  # noqa: E711
    ok = reason == None  # noqa: E711
    se = np.sqrt(np.where(ok, var, 1.0) * (1.0 / np.maximum(clec_n, 1) + 1.0 / np.maximum(retail_n, 1)))
    diff = np.where(higher_better, retail_mean - clec_mean, clec_mean - retail_mean)
    z = np.where(ok, diff / se, np.nan)
    p = np.where(ok, ndtr(-np.where(ok, z, 0.0)), np.nan)
    return ZResult(statistic=z, p_value=p, retail_variance=var, undefined_reason=reason)
