"""Modified z (retail variance only) on hand-computed cells, its undefined cases, its
orientation, and its p-values against scipy.stats.norm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from carrier_sla.engine.stats import modified_z, sample_variance


def z_one(
    kind: str,
    higher_better: bool,
    clec_n: float,
    clec_mean: float,
    retail_n: float,
    retail_mean: float,
    retail_m2: float = 0.0,
):
    """modified_z for a single cell: (statistic, p-value, retail variance, undefined reason)."""
    r = modified_z(
        kind,
        np.array([higher_better]),
        np.array([clec_n]),
        np.array([clec_mean]),
        np.array([retail_n]),
        np.array([retail_mean]),
        np.array([retail_m2]),
    )
    return r.statistic[0], r.p_value[0], r.retail_variance[0], r.undefined_reason[0]


def test_mean_lower_is_better_hand_computed():
    """Retail 2, 4, 6 hours against a CLEC mean of 6 over 4 records gives z = 1.3093 (CLEC worse)."""
    # retail mean = (2 + 4 + 6) / 3 = 4; M2 = (2-4)^2 + (4-4)^2 + (6-4)^2 = 8; s2 = 8 / (3 - 1) = 4
    # se = sqrt(4 * (1/4 + 1/3)) = sqrt(4 * 7/12) = sqrt(7/3) = 1.527525
    # z = (M_clec - M_retail) / se = (6 - 4) / 1.527525 = 1.309307
    z, p, var, reason = z_one("mean", False, clec_n=4, clec_mean=6.0, retail_n=3, retail_mean=4.0, retail_m2=8.0)
    assert reason is None
    assert var == pytest.approx(4.0)
    assert z == pytest.approx(2 / math.sqrt(7 / 3)) and z == pytest.approx(1.309307, abs=1e-6)
    # one-tailed p = 1 - Phi(1.309307) = 0.095215
    assert p == pytest.approx(0.095215, abs=1e-6)


def test_proportion_higher_is_better_hand_computed():
    """Retail 90 of 100 on time against CLEC 20 of 25 gives z = 1.4907 (CLEC worse)."""
    # p_retail = 0.9; variance = p(1 - p) = 0.9 * 0.1 = 0.09
    # se = sqrt(0.09 * (1/25 + 1/100)) = sqrt(0.09 * 0.05) = sqrt(0.0045) = 0.0670820
    # z = (p_retail - p_clec) / se = (0.9 - 0.8) / 0.0670820 = 1.490712
    z, p, var, reason = z_one("proportion", True, clec_n=25, clec_mean=0.8, retail_n=100, retail_mean=0.9)
    assert reason is None
    assert var == pytest.approx(0.09)
    assert z == pytest.approx(1.490712, abs=1e-6)
    # one-tailed p = 1 - Phi(1.490712) = 0.068019
    assert p == pytest.approx(0.068019, abs=1e-6)


def test_only_the_retail_variance_enters_the_statistic():
    """The CLEC's own spread does not enter: the same CLEC mean gives the same z whatever the CLEC variance."""
    # modified_z takes no CLEC variance at all; changing the retail M2 does change z:
    # s2 = 8/2 = 4 -> z = 1.309307 (above); s2 = 32/2 = 16 -> se doubles -> z = 0.654654
    z4 = z_one("mean", False, 4, 6.0, 3, 4.0, 8.0)[0]
    z16 = z_one("mean", False, 4, 6.0, 3, 4.0, 32.0)[0]
    assert z16 == pytest.approx(z4 / 2) and z16 == pytest.approx(0.654654, abs=1e-6)


def test_orientation_flips_the_sign():
    """The same figures read as higher-is-better and as lower-is-better give statistics of opposite sign."""
    # proportion case above: higher better -> +1.490712; lower better -> (0.8 - 0.9) / 0.0670820 = -1.490712
    up = z_one("proportion", True, 25, 0.8, 100, 0.9)
    down = z_one("proportion", False, 25, 0.8, 100, 0.9)
    assert up[0] == pytest.approx(1.490712, abs=1e-6)
    assert down[0] == pytest.approx(-1.490712, abs=1e-6)
    # the p-value is the upper tail of the canonical statistic: 1 - Phi(-1.490712) = 0.931981
    assert down[1] == pytest.approx(0.931981, abs=1e-6)
    assert up[1] + down[1] == pytest.approx(1.0)


def test_clec_served_better_gives_a_negative_statistic():
    """A CLEC mean interval shorter than retail (lower is better) is negative: better service is never a miss."""
    # (3 - 4) / sqrt(7/3) = -0.654654
    z, p, _, _ = z_one("mean", False, 4, 3.0, 3, 4.0, 8.0)
    assert z == pytest.approx(-0.654654, abs=1e-6)
    assert p > 0.5


def test_zero_retail_variance_is_undefined_with_a_reason():
    """Identical retail values (M2 = 0) or a retail proportion of 0 or 1 leave z undefined, with the reason."""
    cases = [
        ("mean", False, 5, 3.0, 5, 2.0, 0.0),  # five retail values of 2: s2 = 0 / 4 = 0
        ("proportion", True, 10, 0.5, 40, 1.0, 0.0),  # p = 1: p(1 - p) = 0
        ("proportion", False, 10, 0.5, 40, 0.0, 0.0),  # p = 0: p(1 - p) = 0
    ]
    for case in cases:
        z, p, _, reason = z_one(*case)
        assert math.isnan(z) and math.isnan(p), case
        assert reason == "zero retail variance: the modified z is undefined", case


def test_retail_sample_of_one_is_undefined_for_means():
    """A single retail value has no sample variance (n - 1 = 0): the mean's z is undefined with that reason."""
    z, p, var, reason = z_one("mean", False, clec_n=4, clec_mean=6.0, retail_n=1, retail_mean=4.0, retail_m2=0.0)
    assert math.isnan(z) and math.isnan(p) and math.isnan(var)
    assert reason == "retail sample of 1: the sample variance is undefined"


def test_cells_are_computed_independently_in_one_call():
    """A vector of cells gives, cell by cell, what each gives alone; an undefined cell does not disturb the others."""
    args = [
        ("mean", False, 4, 6.0, 3, 4.0, 8.0),
        ("mean", False, 4, 6.0, 1, 4.0, 0.0),
        ("mean", True, 10, 2.0, 50, 2.5, 49.0),
    ]
    together = modified_z("mean", *[np.array([a[i] for a in args]) for i in range(1, 7)])
    for i, a in enumerate(args):
        alone = z_one(*a)
        assert np.allclose(together.statistic[i], alone[0], equal_nan=True)
        assert np.allclose(together.p_value[i], alone[1], equal_nan=True)
        assert together.undefined_reason[i] == alone[3]
    # third cell: s2 = 49/49 = 1; se = sqrt(1 * (1/10 + 1/50)) = sqrt(0.12) = 0.346410; z = 0.5 / 0.346410 = 1.443376
    assert together.statistic[2] == pytest.approx(1.443376, abs=1e-6)


def test_p_values_match_scipy_norm_upper_tail():
    """The p-value is scipy.stats.norm.sf of the statistic over a spread of cells."""
    rng = np.random.default_rng(7)
    n = 200
    clec_mean = rng.uniform(0.05, 0.95, n)
    retail_mean = rng.uniform(0.05, 0.95, n)
    clec_n = rng.integers(1, 500, n)
    retail_n = rng.integers(2, 5000, n)
    higher = rng.random(n) < 0.5
    r = modified_z("proportion", higher, clec_n, clec_mean, retail_n, retail_mean, np.zeros(n))
    assert np.all(r.undefined_reason == None)  # noqa: E711
    np.testing.assert_allclose(r.p_value, sps.norm.sf(r.statistic), rtol=1e-12, atol=1e-300)
    # and the critical value 1.645 is the one-tailed 5% point
    assert sps.norm.sf(1.645) == pytest.approx(0.05, abs=1e-3)


def test_sample_variance_uses_n_minus_1():
    """sample_variance divides M2 by n - 1 and is undefined (NaN) for n below 2."""
    out = sample_variance(np.array([3.0, 1.0, 0.0, 5.0]), np.array([8.0, 0.0, 0.0, 10.0]))
    assert out[0] == pytest.approx(4.0) and out[3] == pytest.approx(2.5)
    assert math.isnan(out[1]) and math.isnan(out[2])


def test_mean_z_agrees_with_a_direct_computation_from_raw_values():
    """z from (n, mean, M2) equals the textbook formula computed from the raw retail and CLEC samples."""
    rng = np.random.default_rng(11)
    retail = rng.gamma(2.0, 4.0, 300)
    clec = rng.gamma(2.0, 5.0, 23)
    m2 = float(((retail - retail.mean()) ** 2).sum())
    z = z_one("mean", False, len(clec), clec.mean(), len(retail), retail.mean(), m2)[0]
    expected = (clec.mean() - retail.mean()) / math.sqrt(np.var(retail, ddof=1) * (1 / len(clec) + 1 / len(retail)))
    assert z == pytest.approx(expected, rel=1e-12)


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    clec=finite,
    retail=finite,
    m2=st.floats(min_value=1e-3, max_value=1e6),
    n_c=st.integers(1, 10_000),
    n_r=st.integers(2, 10_000),
    worse=st.floats(min_value=0, max_value=100),
)
def test_worse_clec_service_never_lowers_the_statistic(clec, retail, m2, n_c, n_r, worse):
    """Raising the CLEC mean (lower is better) never lowers z, and reading it as higher-is-better negates it."""
    low = z_one("mean", False, n_c, clec, n_r, retail, m2)[0]
    higher_mean = z_one("mean", False, n_c, clec + worse, n_r, retail, m2)[0]
    flipped = z_one("mean", True, n_c, clec, n_r, retail, m2)[0]
    assert higher_mean >= low - 1e-9 * max(1.0, abs(low))
    assert flipped == pytest.approx(-low, rel=1e-12, abs=1e-12)


def test_a_rate_above_one_per_unit_is_undefined_only_under_the_binomial_variance():
    """More retail troubles than lines makes r(1-r) negative: under rate_variance binomial the z is undefined
    and says why; under the Poisson variance (the default) the rate itself is the variance and z is defined."""
    import numpy as np

    from carrier_sla.engine.stats import modified_z

    args = (
        "rate",
        np.array([False]),
        np.array([10]),
        np.array([0.5]),
        np.array([4]),
        np.array([1.25]),
        np.array([0.0]),
    )
    result = modified_z(*args, rate_variance="binomial")
    assert np.isnan(result.statistic[0])
    assert "exceeds its base" in result.undefined_reason[0]
    # Poisson: z = (0.5 - 1.25) / sqrt(1.25 x (1/10 + 1/4)) = -0.75 / 0.661438 = -1.133893 (CLEC better)
    poisson = modified_z(*args)
    assert poisson.undefined_reason[0] is None
    assert poisson.statistic[0] == pytest.approx(-0.75 / np.sqrt(1.25 * 0.35), rel=1e-12)


def test_a_rate_z_uses_the_retail_rate_as_its_variance():
    """MR-8 by hand: CLEC 30 troubles on 1,000 lines (0.03), retail 1,000 on 100,000 (0.01):
    z = (0.03 - 0.01) / sqrt(0.01 x (1/1,000 + 1/100,000)) = 0.02 / 0.0031780 = 6.29317; binomial gives 6.32487."""
    import numpy as np

    from carrier_sla.engine.stats import modified_z

    args = ("rate", np.array([False]), np.array([1000]), np.array([0.03]), np.array([100_000]), np.array([0.01]))
    assert modified_z(*args, np.array([0.0])).statistic[0] == pytest.approx(6.29317, abs=5e-5)
    assert modified_z(*args, np.array([0.0]), "binomial").statistic[0] == pytest.approx(6.32487, abs=5e-5)
