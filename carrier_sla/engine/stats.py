"""Parity statistics. Canonical orientation inside: a positive statistic means the CLEC
was served worse than the retail analog; plans that print the other sign convert on display.

Modified z (LCUG; Brownie, Boos and Hughes-Oliver 1990), only the retail variance:
    z = (M_clec - M_retail) / sqrt(s2_retail * (1/n_clec + 1/n_retail))   for lower-is-better,
    z = (M_retail - M_clec) / sqrt(s2_retail * (1/n_clec + 1/n_retail))   for higher-is-better,
with s2_retail the sample variance (n - 1) for means, p(1 - p) for proportions, and for rates
the retail rate r per unit of base (Poisson; troubles per line, n = lines) or, where the plan
says `rate_variance: binomial`, r(1 - r).
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


def retail_variance(
    kind: str, retail_n: np.ndarray, retail_mean: np.ndarray, retail_m2: np.ndarray, rate_variance: str = "poisson"
) -> np.ndarray:
    """The retail variance the modified z uses: the sample variance for means, p(1 - p) for
    proportions, the rate itself (Poisson) or r(1 - r) (binomial) for rates."""
    if kind == "mean":
        return sample_variance(retail_n, retail_m2)
    if kind == "rate" and rate_variance == "poisson":
        return np.asarray(retail_mean, dtype=float).copy()
    return retail_mean * (1.0 - retail_mean)


def modified_z(
    kind: str,
    higher_better: np.ndarray,
    clec_n: np.ndarray,
    clec_mean: np.ndarray,
    retail_n: np.ndarray,
    retail_mean: np.ndarray,
    retail_m2: np.ndarray,
    rate_variance: str = "poisson",
) -> ZResult:
    """Vectorized modified z for cells of one measure type (mean, proportion or rate).

    Means are in the measure's own unit; proportions as fractions (0..1); rates per unit of base.
    """
    clec_n = clec_n.astype(float)
    retail_n = retail_n.astype(float)
    var = retail_variance(kind, retail_n, retail_mean, retail_m2, rate_variance)
    reason = np.full(len(clec_n), None, dtype=object)
    if kind == "mean":
        reason[retail_n < 2] = "retail sample of 1: the sample variance is undefined"
    if kind == "rate" and rate_variance == "binomial":
        over = (reason == None) & (retail_mean > 1)  # noqa: E711
        reason[over] = "retail count exceeds its base (rate above 1 per unit): r(1-r) is not a variance"
    if kind == "rate":
        reason[(reason == None) & ~(var > 0)] = "zero retail rate: the modified z is undefined"  # noqa: E711
    reason[(reason == None) & ~(var > 0)] = "zero retail variance: the modified z is undefined"  # noqa: E711
    ok = reason == None  # noqa: E711
    se = np.sqrt(np.where(ok, var, 1.0) * (1.0 / np.maximum(clec_n, 1) + 1.0 / np.maximum(retail_n, 1)))
    diff = np.where(higher_better, retail_mean - clec_mean, clec_mean - retail_mean)
    z = np.where(ok, diff / se, np.nan)
    p = np.where(ok, ndtr(-np.where(ok, z, 0.0)), np.nan)
    return ZResult(statistic=z, p_value=p, retail_variance=var, undefined_reason=reason)
