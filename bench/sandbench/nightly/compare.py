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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sandbench.analysis import drift, stats
from sandbench.analysis.summary import RunSummary, summarize_run
from sandbench.analysis.thresholds import Thresholds
from sandbench.analysis.verdict import ALPHA, CONFIDENCE, MIN_SAMPLES, Judgement, Verdict, judge
from sandbench.errors import BadInput
from sandbench.nightly import envdiff
from sandbench.nightly.envdiff import Difference
from sandbench.results import Run

__all__ = ["ALPHA", "Comparison", "ComparisonError", "Judgement", "MetricComparison", "Side",
           "Verdict", "compare_rows", "compare_runs", "compare_summaries", "compare_variants",
           "judge"]

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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Side:
        return cls(int(data["n"]), int(data["failed"]), *(_number(data.get(k)) for k in
                                                          ("median", "ci_low", "ci_high", "cov")))


def _number(value: Any) -> float:
    """A JSON number back to a float: None was written for NaN (JSON has none)."""
    return math.nan if value is None else float(value)


def _judgement(data: Mapping[str, Any]) -> Judgement:
    return Judgement(Verdict(data["verdict"]), str(data["reason"]),
                     *(_number(data.get(k)) for k in ("change", "change_low", "change_high",
                                                      "p_value", "p_new_larger")))


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
    #: Two runs only: the same judgement made on the runtime's per-round ratio to its own
    #: run's baseline (drift.py), and what that ratio was taken against.
    relative: Judgement | None = None
    reference: str = ""

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
            "relative": vars(self.relative) if self.relative else None,
            "reference": self.reference,
        })
        return row

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricComparison:
        """A metric as ``to_json`` wrote it (verdict.json, ``compare --json``)."""
        relative = data.get("relative")
        return cls(str(data["runtime"]), str(data["workload"]), str(data["metric"]),
                   str(data["labels"]), str(data["unit"]), str(data["better"]),
                   float(data["threshold"]), Side.from_json(data["base"]),
                   Side.from_json(data["new"]), _judgement(data),
                   _judgement(relative) if relative else None, str(data.get("reference") or ""))


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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Comparison:
        """A comparison as ``to_json`` wrote it: the gate's own verdict, not a re-judgement."""
        if data.get("format") != "sandbench-compare":
            raise ComparisonError("not a sandbench comparison (no format: sandbench-compare)")
        thresholds = data.get("thresholds") or {}
        return cls(str(data["base"]["run_id"]), str(data["new"]["run_id"]),
                   Path(data["base"]["dir"]), Path(data["new"]["dir"]), str(data["mode"]),
                   [(str(a), str(b)) for a, b in data["pairs"]], float(data["alpha"]),
                   Thresholds(float(thresholds.get("default", 0.10)),
                              dict(thresholds.get("per_metric") or {})),
                   [MetricComparison.from_json(m) for m in data["metrics"]],
                   [Difference.from_json(d) for d in data.get("environment") or []])


def _clean(value: Any) -> Any:
    """JSON has no NaN: None instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, Verdict):
        return str(value)
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


def _values(good: Mapping[tuple[str, ...], Any], key: tuple[str, ...]) -> Any:
    return good.get(key, np.array([], dtype=np.float64))


def compare_rows(base_rows: pd.DataFrame, new_rows: pd.DataFrame, base_meta: Mapping[str, Any],
                 new_meta: Mapping[str, Any], *, thresholds: Thresholds, alpha: float = ALPHA,
                 confidence: float = CONFIDENCE) -> list[MetricComparison]:
    """Compare rows already passed through stats.measured, matched by stats.GROUP."""
    return _compare(_summaries(base_rows, base_meta), _summaries(new_rows, new_meta),
                    _grouped(stats.good(base_rows)), _grouped(stats.good(new_rows)),
                    thresholds=thresholds, alpha=alpha, confidence=confidence)


def _compare(base_summary: pd.DataFrame, new_summary: pd.DataFrame,
             base_good: Mapping[tuple[str, ...], Any], new_good: Mapping[tuple[str, ...], Any],
             *, thresholds: Thresholds, alpha: float, confidence: float) -> list[MetricComparison]:
    """Both sides' summaries (indexed by stats.GROUP) and good values, judged key by key."""
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
    return compare_summaries(summarize_run(base), summarize_run(new), thresholds=thresholds,
                             alpha=alpha, confidence=confidence)


def compare_summaries(base: RunSummary, new: RunSummary, *,
                      thresholds: Thresholds | None = None, alpha: float = ALPHA,
                      confidence: float = CONFIDENCE) -> Comparison:
    """:func:`compare_runs` on the runs' summaries, when they were already made."""
    common = sorted(set(base.rows["runtime"]) & set(new.rows["runtime"]))
    if not common:
        raise ComparisonError(
            f"runs {base.run.run_id!r} and {new.run.run_id!r} share no runtime (base: "
            f"{', '.join(sorted(set(base.rows['runtime']))) or 'none'}; new: "
            f"{', '.join(sorted(set(new.rows['runtime']))) or 'none'})")
    thresholds = thresholds or Thresholds()
    # The summaries' medians and intervals do not depend on the run's baseline runtime: each
    # group is bootstrapped on its own stream (stats._bootstrap).
    metrics = _compare(base.by_key, new.by_key, base.values, new.values, thresholds=thresholds,
                       alpha=alpha, confidence=confidence)
    baseline = _common_baseline(base.run.meta, new.run.meta, common)
    metrics = [_against_drift(m, base.good, new.good, baseline, alpha, confidence)
               for m in metrics]
    metrics = [_baseline_with_the_others(m, metrics, baseline, alpha) for m in metrics]
    pairs = [(r, r) for r in common]
    return Comparison(base.run.run_id, new.run.run_id, base.run.dir, new.run.dir, "runs",
                      pairs, alpha, thresholds, metrics,
                      envdiff.differences(base.run.meta, new.run.meta, pairs))


def _common_baseline(base_meta: Mapping[str, Any], new_meta: Mapping[str, Any],
                     common: list[str]) -> str:
    """The baseline runtime both runs measured: the new run's, else the base run's."""
    for meta in (new_meta, base_meta):
        name = str(meta.get("baseline") or "")
        if name in common:
            return name
    return ""


def _baseline_with_the_others(metric: MetricComparison, metrics: list[MetricComparison],
                              baseline: str, alpha: float) -> MetricComparison:
    """The baseline's own change is the host's when another runtime's same metric moved the
    same way, significantly. Its ratio to them cannot tell: a short operation (native's 2 ms
    start) is moved by load far more than a long one (a 50 ms container start), so under a
    busier host the baseline's ratio grows though nothing of its own changed."""
    if metric.runtime != baseline or metric.verdict not in (Verdict.REGRESSED, Verdict.IMPROVED):
        return metric
    same_way = [m for m in metrics if m.runtime != baseline
                and (m.workload, m.metric, m.labels) == (metric.workload, metric.metric,
                                                          metric.labels)
                and m.judgement.p_value < alpha
                and (m.judgement.change > 0) == (metric.judgement.change > 0)]
    if not same_way:
        return metric
    moved = ", ".join(f"{m.runtime} {m.judgement.change:+.1%}" for m in same_way)
    judgement = replace(metric.judgement, verdict=Verdict.HOST_DRIFT, reason=(
        f"{metric.verdict} as measured ({metric.judgement.reason}), but {moved} moved the "
        f"same way in the same runs. The host moved, not {metric.runtime}"))
    return replace(metric, judgement=judgement)


def _against_drift(metric: MetricComparison, base_good: pd.DataFrame, new_good: pd.DataFrame,
                   baseline: str, alpha: float, confidence: float) -> MetricComparison:
    """Judge the metric's ratio to its run's baseline too (drift.py); a change of the absolute
    value that the ratio does not share is the host's, and is called host drift."""
    key = (metric.runtime, metric.workload, metric.metric, metric.labels)
    base_found = drift.ratios(base_good, key, baseline)
    new_found = drift.ratios(new_good, key, baseline)
    if base_found is None or new_found is None:
        return metric
    (base_ratios, reference), (new_ratios, _) = base_found, new_found
    relative = judge(base_ratios, new_ratios, better=metric.better, threshold=metric.threshold,
                     alpha=alpha, confidence=confidence)
    judgement = metric.judgement
    if judgement.verdict in (Verdict.REGRESSED, Verdict.IMPROVED) \
            and relative.verdict != judgement.verdict:
        judgement = replace(judgement, verdict=Verdict.HOST_DRIFT, reason=(
            f"{judgement.verdict} as measured ({judgement.reason}), but against {reference} "
            f"it is {relative.verdict}: {relative.reason}. The host moved, not "
            f"{metric.runtime}"))
    return replace(metric, judgement=judgement, relative=relative, reference=reference)


def ab_label(a: str, b: str) -> str:
    """How a same-run A/B pair is named where a runtime would be."""
    return f"{a} -> {b}"


def compare_variants(run: Run, a: str, b: str, *, thresholds: Thresholds | None = None,
                     alpha: float = ALPHA, confidence: float = CONFIDENCE,
                     measured: pd.DataFrame | None = None) -> Comparison:
    """Runtime ``b`` against runtime ``a`` within one run (same-run A/B); ``measured``: the
    run's samples through stats.measured, when already made (RunSummary.rows).

    Each side is summarised again under the pair's name: its bootstrap stream is seeded by
    that name (stats._bootstrap), so these intervals are not the run summary's."""
    rows = stats.measured(run.samples) if measured is None else measured
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
                         alpha: float = ALPHA,
                         measured: pd.DataFrame | None = None) -> list[Comparison]:
    """Each variant of the run against the runtime it varies, when both ran."""
    pairs = variant_pairs(run.meta)
    if pairs and measured is None:
        measured = stats.measured(run.samples)
    return [compare_variants(run, a, b, thresholds=thresholds, alpha=alpha, measured=measured)
            for a, b in pairs]


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
