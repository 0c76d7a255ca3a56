"""Curves against concurrency: each metric's p50, p90 and p99 at each level, with bootstrap
intervals, per runtime.

Only samples labelled with a ``concurrency`` (a run with concurrency as its axis) enter. The
median's interval is stats' bootstrap of the median; a tail quantile's is the bootstrap of
the order statistic that estimates it (numpy's ``inverted_cdf``), drawn without building the
resamples as stats.bootstrap_medians does. With few samples a p99 is the slowest sample and
its interval reaches to it: the report says how many samples each point has.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd

from sandbench.analysis import stats

#: The statistics drawn against concurrency, by name, with their quantile.
STATISTICS = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))
COLUMNS = ["runtime", "workload", "metric", "unit", "concurrency", "statistic", "value",
           "ci_low", "ci_high", "n"]


def bootstrap_quantiles(values: stats.Floats, q: float, resamples: int,
                        rng: np.random.Generator) -> stats.Floats:
    """Bootstrap distribution of the inverted-CDF ``q`` quantile of ``values``: a resample's
    k-th smallest value (k = ceil(q n)) is ``sorted[floor(n U(k))]``, U(k) ~ Beta(k, n+1-k)."""
    ordered = np.sort(stats.finite(values))
    n = ordered.size
    if n == 0:
        return np.full(resamples, np.nan)
    k = min(max(math.ceil(q * n), 1), n)
    uniform = rng.beta(k, n + 1 - k, resamples)
    return ordered[np.minimum((uniform * n).astype(np.int64), n - 1)]


def quantile_ci(values: stats.Floats, q: float, confidence: float = 0.95,
                resamples: int = stats.RESAMPLES, seed: int = stats.SEED,
                stream: int = 0) -> tuple[float, float, float]:
    """The ``q`` quantile of ``values`` and its percentile-bootstrap interval; the median as
    stats computes it (the mean of the middle two at an even count)."""
    kept = stats.finite(values)
    if not kept.size:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng([seed, stream])
    if q == 0.5:
        point, draws = float(np.median(kept)), stats.bootstrap_medians(kept, resamples, rng)
    else:
        point = float(np.quantile(kept, q, method="inverted_cdf"))
        draws = bootstrap_quantiles(kept, q, resamples, rng)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return point, float(low), float(high)


def levels_of(rows: pd.DataFrame) -> pd.Series:
    """Each row's concurrency from its labels (``label_values``), or NaN without one."""
    return rows["label_values"].map(
        lambda labels: float(labels["concurrency"]) if "concurrency" in (labels or {})
        else math.nan)


def curves(rows: pd.DataFrame, confidence: float = 0.95, resamples: int = stats.RESAMPLES,
           seed: int = stats.SEED) -> pd.DataFrame:
    """One row per (runtime, workload, metric, concurrency, statistic) of the measured rows
    (stats.measured) that carry a concurrency; the columns are COLUMNS."""
    ok = stats.good(rows)
    if ok.empty:
        return pd.DataFrame(columns=COLUMNS)
    ok = ok.assign(concurrency=levels_of(ok)).dropna(subset=["concurrency"])
    out = []
    for (runtime, workload, metric, level), group in ok.groupby(
            ["runtime", "workload", "metric", "concurrency"], sort=True):
        values = group["value"].to_numpy(dtype=np.float64)
        for name, q in STATISTICS:
            stream = zlib.crc32(f"{runtime}\x1f{workload}\x1f{metric}\x1f{level}\x1f{name}"
                                .encode())
            point, low, high = quantile_ci(values, q, confidence, resamples, seed, stream)
            out.append({"runtime": runtime, "workload": workload, "metric": metric,
                        "unit": str(group["unit"].iloc[0]), "concurrency": int(level),
                        "statistic": name, "value": point, "ci_low": low, "ci_high": high,
                        "n": int(values.size)})
    return pd.DataFrame(out, columns=COLUMNS)
