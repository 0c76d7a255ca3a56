"""What a sandbox costs the host, from a run's footprint and density samples.

Density: total host PSS against the number of sandboxes held together, fitted by least
squares. The slope is the marginal cost of one more sandbox, the intercept the fixed cost
(runsc's binary text, shared by every sandbox, lands there); both with t-based intervals,
which assume independent, equally spread errors around a line (the residual spread is
reported so a bent curve shows). The recommendation for a RuntimeClass's podFixed overhead is
a high quantile of the measured per-sandbox overhead plus a stated margin, its interval from
a bootstrap of that quantile.

Computed once per run (FootprintSummary, from the RunSummary's good samples) and read by the
report, the decision summary and ``runtimeclasses recommend``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as scipy_stats

from sandbench.analysis.stats import SEED, Floats

#: The metric density is fitted on, and the label holding N.
DENSITY_METRIC = "total_host_pss_mib"
#: On a cluster, where the kubelet's working sets stand in for host PSS.
POD_DENSITY_METRIC = "total_pod_working_set_mib"
SANDBOXES = "sandboxes"
#: The per-sandbox figure a RuntimeClass's overhead is compared with.
OVERHEAD_METRIC = "overhead_pss_mib"
#: The same on a cluster, from the kubelet's working sets.
POD_OVERHEAD_METRIC = "pod_overhead_mib"
CONFIDENCE = 0.95


@dataclass(frozen=True)
class LineFit:
    """y = intercept + slope * x by least squares, with t-based intervals."""

    slope: float
    slope_low: float
    slope_high: float
    intercept: float
    intercept_low: float
    intercept_high: float
    #: Points fitted, and how many distinct x among them.
    n: int
    distinct_x: int
    #: Standard deviation of the residuals (ddof 2).
    residual_sd: float


def fit_line(xs: npt.ArrayLike, ys: npt.ArrayLike, confidence: float = CONFIDENCE) -> LineFit | None:
    """Ordinary least squares with Student-t intervals (n - 2 degrees of freedom); None with
    fewer than 3 points or fewer than 2 distinct x (no line, or no interval)."""
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    n, distinct = len(x), len(np.unique(x))
    if n < 3 or distinct < 2:
        return None
    x_mean, y_mean = x.mean(), y.mean()
    sxx = float(((x - x_mean) ** 2).sum())
    slope = float(((x - x_mean) * (y - y_mean)).sum() / sxx)
    intercept = float(y_mean - slope * x_mean)
    residuals = y - (intercept + slope * x)
    sd = math.sqrt(float((residuals ** 2).sum()) / (n - 2))
    t = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 2))
    slope_se = sd / math.sqrt(sxx)
    intercept_se = sd * math.sqrt(1 / n + x_mean ** 2 / sxx)
    return LineFit(slope, slope - t * slope_se, slope + t * slope_se, intercept,
                   intercept - t * intercept_se, intercept + t * intercept_se, n, distinct, sd)


@dataclass(frozen=True)
class Recommendation:
    """A podFixed overhead to declare: a high quantile of the measured overhead plus margin."""

    quantile: float
    #: The measured quantile and its bootstrap interval, MiB.
    measured: float
    measured_low: float
    measured_high: float
    #: Added on top, as a fraction of the quantile (0.1 = 10%).
    margin: float
    n: int

    @property
    def value_mib(self) -> int:
        """What to declare: the quantile plus the margin, rounded up to a whole MiB."""
        return math.ceil(self.measured * (1 + self.margin))

    @property
    def low_mib(self) -> float:
        return self.measured_low * (1 + self.margin)

    @property
    def high_mib(self) -> float:
        return self.measured_high * (1 + self.margin)


def recommend(values: npt.ArrayLike, quantile: float = 0.95, margin: float = 0.10,
              resamples: int = 4000, seed: int = SEED) -> Recommendation | None:
    """The recommendation from per-sandbox overheads; None without at least 2 of them."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return None
    rng = np.random.default_rng(seed)
    draws: Floats = np.quantile(rng.choice(v, size=(resamples, len(v)), replace=True),
                                quantile, axis=1)
    tail = (1 - CONFIDENCE) / 2
    return Recommendation(quantile, float(np.quantile(v, quantile)),
                          float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail)),
                          margin, len(v))


@dataclass(frozen=True)
class DensityCurve:
    """One runtime's density sweep: the points, the fit, and what stopped it."""

    runtime: str
    #: (N, total host PSS MiB) of every good sample.
    points: list[tuple[int, float]]
    fit: LineFit | None
    #: The N that were asked for and not measured, each with the reason.
    stopped: dict[int, str] = field(default_factory=dict)


def density_curves(good: pd.DataFrame, failed: pd.DataFrame) -> list[DensityCurve]:
    """Each runtime's curve from the good and failed density samples (label_values hold N)."""
    curves = []
    density = good[good["workload"] == "density"]
    metric = POD_DENSITY_METRIC if (density["metric"] == POD_DENSITY_METRIC).any() \
        else DENSITY_METRIC
    mine = density[density["metric"] == metric]
    lost = failed[(failed["workload"] == "density") & (failed["metric"] == DENSITY_METRIC)]
    for runtime in sorted(set(mine["runtime"]) | set(lost["runtime"])):
        rows = mine[mine["runtime"] == runtime]
        points = sorted((int(labels[SANDBOXES]), float(value)) for labels, value
                        in zip(rows["label_values"], rows["value"]))
        stopped = {int(labels[SANDBOXES]): str(reason) for labels, reason
                   in zip(lost[lost["runtime"] == runtime]["label_values"],
                          lost[lost["runtime"] == runtime]["reason"])}
        fit = fit_line([p[0] for p in points], [p[1] for p in points]) if points else None
        curves.append(DensityCurve(runtime, points, fit, stopped))
    return curves
