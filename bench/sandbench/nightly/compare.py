"""Did anything get slower, and is it real? Two runs, or two runtimes of one run, compared.

Samples are matched by runtime, workload, metric and labels (measured rounds, status ok). For
each match: both medians with their bootstrap intervals (stats.py), and the verdict of
verdict.py: the relative change of the median with its interval, a Mann-Whitney U test, and
improved, regressed, unchanged or inconclusive. Around the verdicts: what differs between the
two runs' environments (envdiff.py), and the comparison as JSON.

Same-run A/B (:func:`compare_variants`) compares two runtimes measured in one run, round by
round interleaved on one host: the recommended nightly setup, as drift hits both alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sandbench.analysis import stats
from sandbench.analysis.thresholds import Thresholds
from sandbench.analysis.verdict import ALPHA, CONFIDENCE, MIN_SAMPLES, Judgement, Verdict, judge
from sandbench.errors import BadInput
from sandbench.nightly import envdiff
from sandbench.nightly.envdiff import Difference
from sandbench.results import Run

__all__ = ["ALPHA", "Comparison", "ComparisonError", "Judgement", "MetricComparison", "Side",
           "Verdict", "compare_rows", "compare_runs", "compare_variants", "judge"]

#: Version of the comparison's JSON (``--json``, verdict.json).
FORMAT_VERSION = 1


class ComparisonError(BadInput):
    """Two things that cannot be compared; the message says why and what would do."""


@dataclass(frozen=True)
class Side:
    """One side's summary of a metric."""

    n: int
    failed: int
    median: float
    ci_low: float
    ci_high: float
    cov: float


@dataclass(frozen=True)
class MetricComparison:
    runtime: str
    workload: str
    metric: str
    #: ``"op=getpid"``; "" when there are none.
    labels: str
    unit: str
    better: str
    threshold: float
    base: Side
    new: Side
    judgement: Judgement

    @property
    def verdict(self) -> Verdict:
        return self.judgement.verdict

    @property
    def name(self) -> str:
        return f"{self.metric}[{self.labels}]" if self.labels else self.metric

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = _clean({
            "runtime": self.runtime, "workload": self.workload, "metric": self.metric,
            "labels": self.labels, "unit": self.unit, "better": self.better,
            "threshold": self.threshold, "base": vars(self.base), "new": vars(self.new),
            **{k: v for k, v in vars(self.judgement).items()},
        })
        return row


@dataclass(frozen=True)
class Comparison:
    base_id: str
    new_id: str
    base_dir: Path
    new_dir: Path
    #: "runs" (two runs) or "variants" (two runtimes of one run).
    mode: str
    #: The (base runtime, new runtime) pairs compared.
    pairs: list[tuple[str, str]]
    alpha: float
    thresholds: Thresholds
    metrics: list[MetricComparison]
    environment: list[Difference] = field(default_factory=list)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for m in self.metrics if m.verdict == verdict)

    @property
    def regressed(self) -> list[MetricComparison]:
        return [m for m in self.metrics if m.verdict == Verdict.REGRESSED]

    @property
    def gating_differences(self) -> list[Difference]:
        return [d for d in self.environment if d.gating]

    def tally(self) -> str:
        return ", ".join(f"{self.count(v)} {v}" for v in Verdict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "sandbench-compare", "format_version": FORMAT_VERSION,
            "base": {"run_id": self.base_id, "dir": str(self.base_dir)},
            "new": {"run_id": self.new_id, "dir": str(self.new_dir)},
            "mode": self.mode, "pairs": [list(p) for p in self.pairs], "alpha": self.alpha,
            "min_samples": MIN_SAMPLES, "test": "Mann-Whitney U, two-sided",
            "thresholds": self.thresholds.to_json(),
            "counts": {str(v): self.count(v) for v in Verdict},
            "environment": [d.to_json() for d in self.environment],
            "metrics": [m.to_json() for m in self.metrics],
        }


def _clean(value: Any) -> Any:
    """JSON has no NaN: None instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _summaries(rows: pd.DataFrame, meta: Mapping[str, Any]) -> pd.DataFrame:
    # The run's own baseline ratios are not wanted here; only the per-group summaries.
    summary = stats.summarize_rows(rows, {**meta, "baseline": ""})
    return summary.set_index(stats.GROUP)


def _side(summary: pd.DataFrame, key: tuple[str, ...]) -> Side:
    if key not in summary.index:
        return Side(0, 0, math.nan, math.nan, math.nan, math.nan)
    row = summary.loc[key]
    return Side(int(row["n"]), int(row["failed"]), float(row["median"]), float(row["ci_low"]),
                float(row["ci_high"]), float(row["cov"]))


def _values(good: pd.DataFrame, key: tuple[str, ...]) -> Any:
    return good.get(key, np.array([], dtype=np.float64))


def compare_rows(base_rows: pd.DataFrame, new_rows: pd.DataFrame, base_meta: Mapping[str, Any],
                 new_meta: Mapping[str, Any], *, thresholds: Thresholds, alpha: float = ALPHA,
                 confidence: float = CONFIDENCE) -> list[MetricComparison]:
    """Compare rows already passed through stats.measured, matched by stats.GROUP."""
    base_summary = _summaries(base_rows, base_meta)
    new_summary = _summaries(new_rows, new_meta)
    base_good = _grouped(stats.good(base_rows))
    new_good = _grouped(stats.good(new_rows))
    out = []
    for key in sorted(set(base_summary.index) | set(new_summary.index)):
        base, new = _side(base_summary, key), _side(new_summary, key)
        if not (base.n or base.failed or new.n or new.failed):
            continue  # skipped on both sides: nothing was meant to be measured
        facts = new_summary.loc[key] if key in new_summary.index else base_summary.loc[key]
        runtime, workload, metric, labels = key
        threshold = thresholds.of(metric)
        judgement = judge(_values(base_good, key), _values(new_good, key),
                          better=str(facts["better"]), threshold=threshold, alpha=alpha,
                          confidence=confidence)
        out.append(MetricComparison(runtime, workload, metric, labels, str(facts["unit"]),
                                    str(facts["better"]), threshold, base, new, judgement))
    return out


def _grouped(good: pd.DataFrame) -> dict[tuple[str, ...], Any]:
    return {tuple(str(k) for k in key): values.to_numpy(dtype=np.float64)
            for key, values in good.groupby(stats.GROUP, sort=False)["value"]}


def compare_runs(base: Run, new: Run, *, thresholds: Thresholds | None = None,
                 alpha: float = ALPHA, confidence: float = CONFIDENCE) -> Comparison:
    """BASE against NEW, runtime by runtime."""
    base_rows, new_rows = stats.measured(base.samples), stats.measured(new.samples)
    common = sorted(set(base_rows["runtime"]) & set(new_rows["runtime"]))
    if not common:
        raise ComparisonError(
            f"runs {base.run_id!r} and {new.run_id!r} share no runtime (base: "
            f"{', '.join(sorted(set(base_rows['runtime']))) or 'none'}; new: "
            f"{', '.join(sorted(set(new_rows['runtime']))) or 'none'})")
    thresholds = thresholds or Thresholds()
    metrics = compare_rows(base_rows, new_rows, base.meta, new.meta, thresholds=thresholds,
                           alpha=alpha, confidence=confidence)
    pairs = [(r, r) for r in common]
    return Comparison(base.run_id, new.run_id, base.dir, new.dir, "runs", pairs, alpha,
                      thresholds, metrics, envdiff.differences(base.meta, new.meta, pairs))


def ab_label(a: str, b: str) -> str:
    """How a same-run A/B pair is named where a runtime would be."""
    return f"{a} -> {b}"


def compare_variants(run: Run, a: str, b: str, *, thresholds: Thresholds | None = None,
                     alpha: float = ALPHA, confidence: float = CONFIDENCE) -> Comparison:
    """Runtime ``b`` against runtime ``a`` within one run (same-run A/B)."""
    rows = stats.measured(run.samples)
    present = sorted(set(rows["runtime"]))
    for name in (a, b):
        if name not in present:
            raise ComparisonError(f"runtime {name!r} is not in run {run.run_id!r}; its "
                                  f"runtimes: {', '.join(present) or 'none'}")
    if a == b:
        raise ComparisonError(f"--a and --b are both {a!r}; name two runtimes of the run")
    label = ab_label(a, b)
    base_rows = rows[rows["runtime"] == a].assign(runtime=label)
    new_rows = rows[rows["runtime"] == b].assign(runtime=label)
    thresholds = thresholds or Thresholds()
    metrics = compare_rows(base_rows, new_rows, run.meta, run.meta, thresholds=thresholds,
                           alpha=alpha, confidence=confidence)
    # One run: one environment. What differs between the two runtimes is the experiment.
    intended = envdiff.runtime_differences(run.meta, run.meta, a, b, gating=False)
    return Comparison(run.run_id, run.run_id, run.dir, run.dir, "variants", [(a, b)], alpha,
                      thresholds, metrics, intended)


def variant_pairs(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(A, B) for each variant B in a run's runtimes: A is the runtime it varies when that
    ran too, else the first listed variant of the same runtime (runc-a, runc-b)."""
    spec = meta.get("spec") or {}
    runtimes = [str(r) for r in spec.get("runtimes") or []]
    variants: Mapping[str, Any] = spec.get("variants") or {}
    pairs = []
    for name in runtimes:
        of = str((variants.get(name) or {}).get("runtime") or "")
        if not of:
            continue
        siblings = [r for r in runtimes if (variants.get(r) or {}).get("runtime") == of]
        base = of if of in runtimes else siblings[0]
        if base != name:
            pairs.append((base, name))
    return pairs


def compare_all_variants(run: Run, *, thresholds: Thresholds | None = None,
                         alpha: float = ALPHA) -> list[Comparison]:
    """Each variant of the run against the runtime it varies, when both ran."""
    return [compare_variants(run, a, b, thresholds=thresholds, alpha=alpha)
            for a, b in variant_pairs(run.meta)]


def merge(comparisons: Iterable[Comparison]) -> Comparison:
    """Several same-run comparisons as one (for one table, one JSON, one gate)."""
    items = list(comparisons)
    if not items:
        raise ComparisonError("nothing to compare")
    first = items[0]
    return Comparison(first.base_id, first.new_id, first.base_dir, first.new_dir, first.mode,
                      [p for c in items for p in c.pairs], first.alpha, first.thresholds,
                      [m for c in items for m in c.metrics],
                      [d for c in items for d in c.environment])
