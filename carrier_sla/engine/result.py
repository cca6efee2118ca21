"""TestResult: everything behind one exact or resampling parity test (exact, permutation)."""

from __future__ import annotations

from dataclasses import dataclass

from scipy import special


@dataclass(frozen=True)
class TestResult:
    """Everything behind one exact or resampling parity test."""

    __test__ = False  # not a pytest test class, despite the name

    method: str  # "fisher_exact" | "binomial_exact" | "permutation_exact" | "permutation_monte_carlo" | "modified_t"
    p_value: float  # one-tailed: probability under parity of a CLEC result at least as bad as observed
    statistic: float  # t for modified_t; the CLEC sum for permutation; the CLEC count for fisher/binomial
    z_equivalent: float  # inverse normal of 1 - p, with p clipped to [1e-300, 1]
    df: float | None = None
    resamples: int | None = None
    seed: int | None = None  # the seed of the Monte Carlo stream (shared by the cells of one retail pool and size)
    note: str = ""  # e.g. why Monte Carlo instead of exact


def z_equivalent(p: float) -> float:
    """Inverse normal of 1 - p, computed as -ndtri(p) so that small p keep their precision.

    p is clipped to [1e-300, 1] first: p = 0 (an underflowed tail) gives 37.04, p = 1 gives -inf.
    """
    return float(-special.ndtri(min(max(p, 1e-300), 1.0)))


def make_result(method: str, p: float, statistic: float, **extra: object) -> TestResult:
    """A TestResult with p clipped to [0, 1] and its z equivalent."""
    p = min(max(float(p), 0.0), 1.0)
    return TestResult(method=method, p_value=p, statistic=float(statistic), z_equivalent=z_equivalent(p), **extra)  # type: ignore[arg-type]
