"""The verdict on one metric from its raw values on two sides: improved, regressed,
unchanged or inconclusive.

    regressed     significant (Mann-Whitney U, p < alpha, default 0.01; significance.py says why
                  that test) AND the median moved by more than the metric's threshold
                  (thresholds.py) in the direction that is worse for it (run.json's metrics
                  table: ``better: lower|higher``); the test and the medians must agree on the
                  direction
    improved      the same, in the better direction
    unchanged     not a change beyond the threshold: the 95% bootstrap interval of the change
                  (stats.ratio_ci) lies within ±threshold, whether or not a smaller change is
                  significant; or the median moved by less than the metric's minimum absolute
                  change (thresholds.py: 1 ms for millisecond metrics), significantly or with
                  an interval within that minimum
    inconclusive  fewer than 5 good samples on a side, or too noisy to tell: the interval of
                  the change reaches past the threshold without a significant large change
    host drift    (two runs only) regressed or improved as measured, but the runtime's ratio
                  to its own run's baseline runtime did not change the same way: the host got
                  slower or faster between the runs, not the runtime (drift.py)

A regression needs both significance and size, as in Firecracker's A/B tests and asv: with many
metrics compared every night, significance alone flags trivial shifts, and size alone flags noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from sandbench.analysis import stats
from sandbench.analysis.significance import mann_whitney

#: Firecracker's A/B tests gate at p < 0.01: one false alarm in a hundred metrics compared.
ALPHA = 0.01
#: Fewer good samples than this on a side and no verdict is given (stats.py warns at the same).
MIN_SAMPLES = stats.MIN_SAMPLES
CONFIDENCE = 0.95


class Verdict(StrEnum):
    IMPROVED = "improved"
    REGRESSED = "regressed"
    UNCHANGED = "unchanged"
    INCONCLUSIVE = "inconclusive"
    HOST_DRIFT = "host drift"


@dataclass(frozen=True)
class Judgement:
    """The verdict on one metric from its raw values, and the numbers behind it."""

    verdict: Verdict
    reason: str
    #: ``median(new) / median(base) - 1``; ±inf when the base median is 0 and the new is not.
    change: float
    change_low: float
    change_high: float
    p_value: float
    #: Chance that a new value exceeds a base one (Mann-Whitney's effect size).
    p_new_larger: float


def _percent(value: float) -> str:
    return f"{value:+.1%}" if math.isfinite(value) else "n/a"


def relative_change(base_median: float, new_median: float) -> float:
    if base_median == 0:
        return 0.0 if new_median == 0 else math.copysign(math.inf, new_median)
    return new_median / base_median - 1.0


def _within(low: float, high: float, base_median: float, min_change: float) -> bool:
    """Whether the change's interval, in the metric's unit, lies within ±min_change."""
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(base_median)):
        return False
    return max(abs(low), abs(high)) * abs(base_median) < min_change


def judge(base: Any, new: Any, *, better: str, threshold: float, alpha: float = ALPHA,
          confidence: float = CONFIDENCE, min_change: float = 0.0, unit: str = "") -> Judgement:
    """The verdict on one metric from its good values on each side (see the module
    docstring). MIN_CHANGE is the smallest absolute move of the median, in the metric's UNIT,
    that can count as a change (thresholds.py); 0 for none."""
    a = np.asarray(base, dtype=np.float64)
    b = np.asarray(new, dtype=np.float64)
    base_median, new_median = stats.median(a), stats.median(b)
    change = relative_change(base_median, new_median)
    low, high = math.nan, math.nan
    if a.size and b.size:
        ratio_low, ratio_high = stats.ratio_ci(b, a, confidence)
        low, high = ratio_low - 1.0, ratio_high - 1.0
    test = mann_whitney(a, b)
    numbers = dict(change=change, change_low=low, change_high=high, p_value=test.p_value,
                   p_new_larger=test.p_new_larger)
    if min(a.size, b.size) < MIN_SAMPLES:
        reason = f"too few samples: {a.size} base, {b.size} new (need {MIN_SAMPLES} a side)"
        return Judgement(Verdict.INCONCLUSIVE, reason, **numbers)
    # The test and the medians must agree on the direction of the change.
    significant = test.p_value < alpha and (test.p_new_larger > 0.5) == (change > 0)
    worse = change > 0 if better != "higher" else change < 0
    band = f"±{threshold:.0%}"
    moved = abs(new_median - base_median)
    if min_change > 0 and math.isfinite(moved) and moved < min_change and (
            significant or _within(low, high, base_median, min_change)):
        note = "significant, but" if significant else "no significant change;"
        in_unit = f" {unit}" if unit else ""
        reason = (f"{note} the median moved {_percent(change)}, by {moved:.3g}{in_unit}: under "
                  f"the minimum change of {min_change:g}{in_unit} that can count (--min-change)")
        return Judgement(Verdict.UNCHANGED, reason, **numbers)
    if significant and abs(change) > threshold:
        verdict = Verdict.REGRESSED if worse else Verdict.IMPROVED
        reason = (f"{_percent(change)} (p = {test.p_value:.2g} < {alpha:g}), beyond "
                  f"the {threshold:.0%} threshold; {'worse' if worse else 'better'}: "
                  f"{better} is better")
        return Judgement(verdict, reason, **numbers)
    if math.isfinite(low) and math.isfinite(high) and -threshold <= low and high <= threshold:
        note = "significant but" if significant else "no significant change;"
        reason = f"{note} the change's interval [{_percent(low)}, {_percent(high)}] is within {band}"
        return Judgement(Verdict.UNCHANGED, reason, **numbers)
    reason = (f"too noisy to tell: {_percent(change)} (p = {test.p_value:.2g}), its interval "
              f"[{_percent(low)}, {_percent(high)}] reaches past {band}")
    return Judgement(Verdict.INCONCLUSIVE, reason, **numbers)
