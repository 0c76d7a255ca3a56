"""Summary statistics of a run: medians with bootstrap intervals, and each runtime against the
baseline.

One summary row per (runtime, workload, metric, labels), over the measured (non-warmup)
samples. Columns of :func:`summarize`'s table:

    runtime, workload, metric   what was measured, and where
    labels        the labels as one stable string, ``"job=seqread,target=rootfs"`` ("" if none)
    label_values  the same labels as a dict (context labels left out, as from ``labels``)
    unit, better  from the samples and run.json's metrics ("lower" when run.json does not say)
    n             good samples: status ok with a value
    failed, skipped  counts of failed and skipped samples
    median, p5, p90, p95, p99, mean, stdev (ddof 1), cov (stdev / mean)   of the good samples
    ci_low, ci_high      percentile-bootstrap interval of the median
    baseline             the run's baseline runtime ("" when the run names none)
    ratio, ratio_low, ratio_high   this median over the baseline's median, and its interval
    mark    "better", "worse" or "same" against the baseline (judged by whether the ratio's
            interval excludes 1, in the metric's direction), "baseline" on the baseline's own
            rows, "n/a" when there is nothing to compare with
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from sandbench.formats import RunMeta
from sandbench.model import comparable_labels
from sandbench.results import Run

Floats = npt.NDArray[np.float64]

#: What one summary row is about.
GROUP = ["runtime", "workload", "metric", "labels"]
#: Spread above which a median is called noisy (pyperf warns at the same 10%).
COV_LIMIT = 0.10
#: Fewer good samples than this and the summary says so.
MIN_SAMPLES = 5
#: Below this many good samples on either side a bootstrap interval is degenerate (one value
#: resamples only to itself), so no better/worse is claimed.
MIN_SAMPLES_TO_JUDGE = 2
#: Bootstrap resamples: enough for the 2.5% and 97.5% percentiles to settle to ~1%.
RESAMPLES = 4000
#: Fixed so a report recomputed from the same samples shows the same intervals.
SEED = 20240611

COLUMNS = [
    *GROUP, "label_values", "unit", "better", "n", "failed", "skipped",
    "median", "p5", "p90", "p95", "p99", "mean", "stdev", "cov", "ci_low", "ci_high",
    "baseline", "ratio", "ratio_low", "ratio_high", "mark",
]


def labels_key(labels: Mapping[str, Any] | None) -> str:
    """Labels as one string that does not depend on their order: ``"job=seqread,target=rootfs"``.
    Context labels (model.CONTEXT_LABELS, such as the accelerator) are left out: they say how
    a sandbox ran, not what was measured; so are a lone sandbox's concurrency labels
    (model.comparable_labels)."""
    kept = comparable_labels(dict(labels or {}))
    return ",".join(f"{name}={kept[name]}" for name in sorted(kept))


def finite(values: npt.ArrayLike) -> Floats:
    """The finite values, flattened: failed samples (NaN) and infinities never enter a statistic."""
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def median(values: npt.ArrayLike) -> float:
    """The median of the finite values; NaN when there are none."""
    kept = finite(values)
    return float(np.median(kept)) if kept.size else float("nan")


def bootstrap_medians(values: npt.ArrayLike, resamples: int, rng: np.random.Generator) -> Floats:
    """The medians of ``resamples`` bootstrap resamples of ``values``.

    Drawn without building the resamples, so it costs O(resamples) rather than
    O(resamples * n): a resample's k-th smallest value is ``sorted[floor(n * U(k))]``, where
    U(k), the k-th smallest of n uniforms, is Beta(k, n + 1 - k). This has the distribution
    of ``np.median(rng.choice(values, (resamples, n)), axis=1)``; tests/test_stats.py checks.
    """
    ordered = np.sort(finite(values))
    n = ordered.size
    if n == 0:
        return np.full(resamples, np.nan)
    k = (n + 1) // 2
    low = rng.beta(k, n + 1 - k, resamples)
    if n % 2:
        return ordered[_index(low, n)]
    # An even-sized median averages the k-th and (k+1)-th; given U(k) = u, U(k+1) is the
    # least of the n - k uniforms above u.
    high = low + (1.0 - low) * rng.beta(1, n - k, resamples)
    return (ordered[_index(low, n)] + ordered[_index(high, n)]) / 2.0


def _index(uniform: Floats, n: int) -> npt.NDArray[np.int64]:
    return np.minimum((uniform * n).astype(np.int64), n - 1)


def _interval(distribution: Floats, confidence: float) -> tuple[float, float]:
    kept = finite(distribution)
    if not kept.size:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(kept, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_median_ci(
    values: npt.ArrayLike, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median."""
    rng = np.random.default_rng(seed)
    return _interval(bootstrap_medians(values, resamples, rng), confidence)


def _ratios(medians: Floats, base_medians: Floats) -> Floats:
    with np.errstate(divide="ignore", invalid="ignore"):
        return medians / base_medians


def ratio_ci(
    values: npt.ArrayLike, base_values: npt.ArrayLike, confidence: float = 0.95,
    resamples: int = RESAMPLES, seed: int = SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``median(values) / median(base_values)``; the two sides
    are resampled independently."""
    rng, base_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    medians = bootstrap_medians(values, resamples, rng)
    base_medians = bootstrap_medians(base_values, resamples, base_rng)
    return _interval(_ratios(medians, base_medians), confidence)


def difference_ci(
    values: npt.ArrayLike, base_values: npt.ArrayLike, confidence: float = 0.95,
    resamples: int = RESAMPLES, seed: int = SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``median(values) - median(base_values)``, resampled
    as :func:`ratio_ci` does: for what is added (ms of start, MiB of memory), not multiplied."""
    rng, base_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    medians = bootstrap_medians(values, resamples, rng)
    base_medians = bootstrap_medians(base_values, resamples, base_rng)
    return _interval(medians - base_medians, confidence)


def mark(ratio_low: float, ratio_high: float, better: str, threshold: float = 0.0) -> str:
    """"better", "worse" or "same": a change counts only when the ratio's whole interval lies
    beyond ``1 ± threshold``, and which way is better depends on the metric."""
    if not (np.isfinite(ratio_low) and np.isfinite(ratio_high)):
        return "n/a"
    if ratio_low > 1.0 + threshold:
        return "better" if better == "higher" else "worse"
    if ratio_high < 1.0 - threshold:
        return "worse" if better == "higher" else "better"
    return "same"


def measured(samples: pd.DataFrame) -> pd.DataFrame:
    """The non-warmup samples, with ``labels`` as :func:`labels_key` strings (so they group)
    and the dicts kept in ``label_values``."""
    rows = samples.loc[~samples["warmup"].astype(bool)].copy()
    rows["label_values"] = rows["labels"].map(lambda labels: labels or {})
    rows["labels"] = rows["labels"].map(labels_key)
    return rows


def good(rows: pd.DataFrame) -> pd.DataFrame:
    """The samples that count: status ok and a finite value."""
    return rows.loc[(rows["status"] == "ok") & np.isfinite(rows["value"].astype(float))]


def summarize(
    run: Run, *, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = SEED,
    threshold: float = 0.0,
) -> pd.DataFrame:
    """One row per (runtime, workload, metric, labels); the columns are in this module's
    docstring."""
    return summarize_rows(measured(run.samples), run.info, confidence=confidence,
                          resamples=resamples, seed=seed, threshold=threshold)


def summarize_rows(
    rows: pd.DataFrame, meta: RunMeta, *, confidence: float = 0.95,
    resamples: int = RESAMPLES, seed: int = SEED, threshold: float = 0.0,
    against_baseline: bool = True,
) -> pd.DataFrame:
    """:func:`summarize` for samples already passed through :func:`measured`; without
    ``against_baseline`` the ratio columns stay empty (a comparison of two runs wants only
    each group's own numbers)."""
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    ok = good(rows)
    summary = _counts(rows).join(_spread(ok)).reset_index()
    summary["n"] = summary["n"].fillna(0).astype(int)
    summary["better"] = summary["metric"].map(meta.better)
    medians = _bootstrap(ok, resamples, seed)
    _add_intervals(summary, medians, confidence)
    baseline = (meta.baseline or "") if against_baseline else ""
    _add_ratios(summary, medians, baseline, confidence, threshold)
    return summary[COLUMNS]


def _counts(rows: pd.DataFrame) -> pd.DataFrame:
    first = rows.groupby(GROUP, sort=True)[["label_values", "unit"]].first()
    # As in the labels key: a runtime's context (its platform, what an io target is under it)
    # must not name a row, or one row of a table or chart would split by runtime.
    first["label_values"] = first["label_values"].map(comparable_labels)
    status = rows.groupby(GROUP + ["status"], sort=True).size().unstack("status", fill_value=0)
    for name in ("failed", "skipped"):
        first[name] = status[name] if name in status else 0
    return first


def _spread(ok: pd.DataFrame) -> pd.DataFrame:
    values = ok.groupby(GROUP, sort=True)["value"]
    spread = values.agg(n="count", median="median", mean="mean", stdev="std")
    for name, q in (("p5", 0.05), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99)):
        spread[name] = values.quantile(q)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread["cov"] = spread["stdev"] / spread["mean"]
    return spread


def _bootstrap(ok: pd.DataFrame, resamples: int, seed: int) -> dict[tuple[str, ...], Floats]:
    """Each group's bootstrap medians, each group on its own stream so a runtime and the
    baseline are resampled independently and a group's interval does not depend on the
    others."""
    out: dict[tuple[str, ...], Floats] = {}
    for key, values in ok.groupby(GROUP, sort=False)["value"]:
        group = tuple(str(part) for part in key)
        stream = zlib.crc32("\x1f".join(group).encode())
        rng = np.random.default_rng([seed, stream])
        out[group] = bootstrap_medians(values.to_numpy(), resamples, rng)
    return out


def _add_intervals(
    summary: pd.DataFrame, medians: dict[tuple[str, ...], Floats], confidence: float
) -> None:
    keys = summary[GROUP].itertuples(index=False, name=None)
    nan = np.array([np.nan])
    bounds = [_interval(medians.get(key, nan), confidence) for key in keys]
    summary["ci_low"] = [low for low, _ in bounds]
    summary["ci_high"] = [high for _, high in bounds]


def _add_ratios(
    summary: pd.DataFrame, medians: dict[tuple[str, ...], Floats], baseline: str,
    confidence: float, threshold: float,
) -> None:
    base = summary.loc[summary["runtime"] == baseline].set_index(GROUP[1:])[["median", "n"]]
    joined = summary.join(base.add_suffix("_base"), on=GROUP[1:])
    # A ratio says how many times the baseline's amount a runtime takes: it means nothing when
    # either is zero or negative (MemAvailable can rise while sandboxes are held).
    signed = (joined["median"] <= 0) | (joined["median_base"] <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        summary["ratio"] = (joined["median"] / joined["median_base"]).mask(signed)
    summary["baseline"] = baseline
    lows, highs, marks = [], [], []
    for row in joined.itertuples(index=False):
        low, high, verdict = _judge(row, medians, baseline, confidence, threshold)
        lows.append(low)
        highs.append(high)
        marks.append(verdict)
    summary["ratio_low"], summary["ratio_high"], summary["mark"] = lows, highs, marks


def _judge(
    row: Any, medians: dict[tuple[str, ...], Floats], baseline: str, confidence: float,
    threshold: float,
) -> tuple[float, float, str]:
    if baseline and row.runtime == baseline:
        return float("nan"), float("nan"), "baseline"
    key = (row.runtime, row.workload, row.metric, row.labels)
    base_key = (baseline, row.workload, row.metric, row.labels)
    if base_key not in medians or min(row.n, row.n_base) < MIN_SAMPLES_TO_JUDGE \
            or not (row.median > 0 and row.median_base > 0):
        return float("nan"), float("nan"), "n/a"
    low, high = _interval(_ratios(medians[key], medians[base_key]), confidence)
    return low, high, mark(low, high, row.better, threshold)


def warnings(summary: pd.DataFrame) -> list[str]:
    """Human sentences for noisy medians, small samples and failed samples."""
    out: list[str] = []
    for row in summary.itertuples(index=False):
        where = f"{row.runtime} · {row.workload} · {row.metric}"
        where += f" [{row.labels}]" if row.labels else ""
        if row.n and row.cov > COV_LIMIT:
            out.append(f"{where}: CoV {row.cov:.1%} is over {COV_LIMIT:.0%}; the median is noisy")
        # A group that was only ever skipped was not meant to be measured.
        if row.n < MIN_SAMPLES and (row.n or row.failed):
            out.append(f"{where}: only {row.n} good samples (fewer than {MIN_SAMPLES})")
        if row.failed:
            out.append(f"{where}: {row.failed} failed sample{'s' * (row.failed != 1)}")
    return out
