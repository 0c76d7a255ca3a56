"""Is a difference between two samples real? The Mann-Whitney U test.

Why this test. Start latencies and per-call times are skewed: a long right tail, the odd
outlier when the host is busy. Mann-Whitney U works on ranks, so neither the skew nor one
outlier can make or hide a difference, and it assumes no distribution. It asks whether one
sample tends to lie above the other; sandbench then judges the *size* of the change by the
medians (a regression needs both, as Firecracker's A/B tests need p < 0.01 and a large effect).

Why not a permutation test on the difference of medians, which tests the reported statistic
itself: the median of a small sample moves in steps, so its permutation distribution is coarse.
Five values against five can never give p below 12/252 = 0.048 that way, and p < 0.01 needs at
least 8 a side; Mann-Whitney reaches 2/252 = 0.0079 with 5 a side, so a gross regression is
flagged from a few rounds, the minimum sandbench asks for.

scipy computes it: the exact distribution of U for small samples without ties, the normal
approximation with tie and continuity corrections otherwise (``method="auto"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy.typing as npt
from scipy import stats as scipy_stats

from sandbench.analysis.stats import finite


@dataclass(frozen=True)
class UTest:
    """The outcome of one Mann-Whitney U test of ``new`` against ``base``."""

    #: Two-sided p-value; NaN when a side has no values.
    p_value: float
    #: U of the new sample: pairs (new, base) where new is larger, ties counted half.
    u_new: float
    #: ``u_new / (len(new) * len(base))``: the chance that a new value exceeds a base value
    #: (ties half). 0.5: no tendency; above 0.5: new tends to be larger.
    p_new_larger: float


def mann_whitney(base: npt.ArrayLike, new: npt.ArrayLike) -> UTest:
    """Two-sided Mann-Whitney U test of ``new`` against ``base`` (non-finite values dropped)."""
    a, b = finite(base), finite(new)
    if not a.size or not b.size:
        return UTest(float("nan"), float("nan"), float("nan"))
    result = scipy_stats.mannwhitneyu(b, a, alternative="two-sided", method="auto")
    u_new = float(result.statistic)
    p_value = float(result.pvalue)
    return UTest(p_value if math.isfinite(p_value) else 1.0, u_new, u_new / (a.size * b.size))
