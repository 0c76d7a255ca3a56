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

from sandbench.analysis import drift, stats
from sandbench.analysis.summary import RunSummary, summarize_run
from sandbench.analysis.thresholds import Thresholds
from sandbench.analysis.verdict import ALPHA, CONFIDENCE, MIN_SAMPLES, Judgement, Verdict, judge
from sandbench.errors import BadInput
from sandbench.formats import (COMPARE_VERSION, ComparisonRecord, DifferenceRecord,
                               JudgementRecord, MetricRecord, RemeasureRecord, RunMeta, RunRef,
                               SideRecord, SpecInfo, ThresholdsRecord)
from sandbench.nightly import envdiff, hostdrift
from sandbench.nightly.envdiff import Difference
from sandbench.results import Run

__all__ = ["ALPHA", "Comparison", "ComparisonError", "Judgement", "MetricComparison", "Side",
           "Verdict", "compare_rows", "compare_runs", "compare_summaries", "compare_variants",
           "judge"]

#: Version of the comparison's JSON (``--json``, verdict.json); its model is
#: formats.ComparisonRecord.
FORMAT_VERSION = COMPARE_VERSION


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
    def from_record(cls, record: SideRecord) -> Side:
        return cls(record.n, record.failed, _number(record.median), _number(record.ci_low),
                   _number(record.ci_high), _number(record.cov))

    def record(self) -> SideRecord:
        return SideRecord(n=self.n, failed=self.failed, median=self.median, ci_low=self.ci_low,
                          ci_high=self.ci_high, cov=self.cov)


def _number(value: float | None) -> float:
    """A JSON number back to a float: None was written for NaN and infinities (JSON has none)."""
    return math.nan if value is None else float(value)


def _judgement(record: JudgementRecord | MetricRecord) -> Judgement:
    return Judgement(Verdict(record.verdict), record.reason, _number(record.change),
                     _number(record.change_low), _number(record.change_high),
                     _number(record.p_value), _number(record.p_new_larger))


def _judgement_record(judgement: Judgement) -> JudgementRecord:
    return JudgementRecord(verdict=str(judgement.verdict), **{
        k: v for k, v in vars(judgement).items() if k != "verdict"})


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
    #: The smallest absolute change of the median, in ``unit``, that could count (0: none).
    min_change: float = 0.0

    @property
    def verdict(self) -> Verdict:
        return self.judgement.verdict

    @property
    def name(self) -> str:
        return f"{self.metric}[{self.labels}]" if self.labels else self.metric

    def record(self) -> MetricRecord:
        judged = _judgement_record(self.judgement)
        return MetricRecord(
            runtime=self.runtime, workload=self.workload, metric=self.metric,
            labels=self.labels, unit=self.unit, better=self.better, threshold=self.threshold,
            base=self.base.record(), new=self.new.record(), **judged.model_dump(),
            relative=_judgement_record(self.relative) if self.relative else None,
            reference=self.reference, min_change=self.min_change)

    def to_json(self) -> dict[str, Any]:
        """The metric as verdict.json holds it: NaN and infinities as null."""
        return self.record().model_dump(mode="json")

    @classmethod
    def from_record(cls, record: MetricRecord) -> MetricComparison:
        """A metric as verdict.json or ``compare --json`` holds it."""
        return cls(record.runtime, record.workload, record.metric, record.labels, record.unit,
                   record.better, record.threshold, Side.from_record(record.base),
                   Side.from_record(record.new), _judgement(record),
                   _judgement(record.relative) if record.relative else None, record.reference,
                   record.min_change)


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
    #: ``compare --remeasure``: the run that measured borderline metrics again (remeasure.py).
    remeasured: RemeasureRecord | None = None

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

    def record(self) -> ComparisonRecord:
        return ComparisonRecord(
            format="sandbench-compare", format_version=FORMAT_VERSION,
            base=RunRef(run_id=self.base_id, dir=str(self.base_dir)),
            new=RunRef(run_id=self.new_id, dir=str(self.new_dir)),
            mode="runs" if self.mode == "runs" else "variants", pairs=list(self.pairs),
            alpha=self.alpha, min_samples=MIN_SAMPLES, test="Mann-Whitney U, two-sided",
            thresholds=ThresholdsRecord(default=self.thresholds.default,
                                        per_metric=dict(self.thresholds.per_metric),
                                        min_change_ms=self.thresholds.min_change_ms,
                                        min_change=dict(self.thresholds.min_change)),
            counts={str(v): self.count(v) for v in Verdict},
            environment=[DifferenceRecord(**d.to_json()) for d in self.environment],
            metrics=[m.record() for m in self.metrics], remeasured=self.remeasured)

    def to_json(self) -> dict[str, Any]:
        """The comparison as ``compare --json`` writes it (formats.ComparisonRecord)."""
        return self.record().model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Comparison:
        """A comparison as ``to_json`` wrote it: the gate's own verdict, not a re-judgement.
        Raises ComparisonError for another document, pydantic's ValidationError (a ValueError)
        for a damaged one."""
        if data.get("format") != "sandbench-compare":
            raise ComparisonError("not a sandbench comparison (no format: sandbench-compare)")
        return cls.from_record(ComparisonRecord.model_validate(data))

    @classmethod
    def from_record(cls, record: ComparisonRecord) -> Comparison:
        return cls(record.base.run_id, record.new.run_id, Path(record.base.dir),
                   Path(record.new.dir), record.mode, list(record.pairs), record.alpha,
                   Thresholds(record.thresholds.default, dict(record.thresholds.per_metric),
                              record.thresholds.min_change_ms,
                              dict(record.thresholds.min_change)),
                   [MetricComparison.from_record(m) for m in record.metrics],
                   [Difference(d.fact, d.base, d.new, d.gating) for d in record.environment],
                   record.remeasured)


def _summaries(rows: pd.DataFrame, meta: RunMeta) -> pd.DataFrame:
    # The run's own baseline ratios are not wanted here; only the per-group summaries.
    summary = stats.summarize_rows(rows, meta, against_baseline=False)
    return summary.set_index(stats.GROUP)


def _side(summary: pd.DataFrame, key: tuple[str, ...]) -> Side:
    if key not in summary.index:
        return Side(0, 0, math.nan, math.nan, math.nan, math.nan)
    row = summary.loc[key]
    return Side(int(row["n"]), int(row["failed"]), float(row["median"]), float(row["ci_low"]),
                float(row["ci_high"]), float(row["cov"]))


def _values(good: Mapping[tuple[str, ...], Any], key: tuple[str, ...]) -> Any:
    return good.get(key, np.array([], dtype=np.float64))


def compare_rows(base_rows: pd.DataFrame, new_rows: pd.DataFrame, base_meta: RunMeta,
                 new_meta: RunMeta, *, thresholds: Thresholds, alpha: float = ALPHA,
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
        threshold, unit = thresholds.of(metric), str(facts["unit"])
        minimum = thresholds.minimum(metric, unit)
        judgement = judge(_values(base_good, key), _values(new_good, key),
                          better=str(facts["better"]), threshold=threshold, alpha=alpha,
                          confidence=confidence, min_change=minimum, unit=unit)
        out.append(MetricComparison(runtime, workload, metric, labels, unit,
                                    str(facts["better"]), threshold, base, new, judgement,
                                    min_change=minimum))
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
    _something_in_common(metrics, f"runs {base.run.run_id!r} and {new.run.run_id!r}",
                         base.rows, new.rows)
    baseline = _common_baseline(base.run.info, new.run.info, common)
    base_rounds, new_rounds = drift.Rounds(base.good), drift.Rounds(new.good)
    metrics = [hostdrift.against_drift(m, base_rounds, new_rounds, baseline, alpha, confidence)
               for m in metrics]
    metrics = [hostdrift.baseline_with_the_others(m, metrics, baseline, alpha) for m in metrics]
    load = hostdrift.load_change(base.run.meta, new.run.meta)
    if load is not None:
        metrics = [hostdrift.with_a_busier_host(m, load) for m in metrics]
    pairs = [(r, r) for r in common]
    return Comparison(base.run.run_id, new.run.run_id, base.run.dir, new.run.dir, "runs",
                      pairs, alpha, thresholds, metrics,
                      envdiff.differences(base.run.meta, new.run.meta, pairs))


def _something_in_common(metrics: list[MetricComparison], what: str, base_rows: pd.DataFrame,
                         new_rows: pd.DataFrame) -> None:
    """Refuse a comparison where no metric was measured on both sides: every verdict would be
    "inconclusive", which reads as a result when it is a mistake (two different suites)."""
    if any((m.base.n or m.base.failed) and (m.new.n or m.new.failed) for m in metrics):
        return

    def measured(rows: pd.DataFrame) -> str:
        return ", ".join(sorted(set(rows["workload"] + " " + rows["metric"]))) or "none"

    raise ComparisonError(f"{what} have nothing to compare: no metric was measured in both "
                          f"(base: {measured(base_rows)}; new: {measured(new_rows)})")


def _common_baseline(base_meta: RunMeta, new_meta: RunMeta, common: list[str]) -> str:
    """The baseline runtime both runs measured: the new run's, else the base run's."""
    for meta in (new_meta, base_meta):
        if meta.baseline and meta.baseline in common:
            return meta.baseline
    return ""


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
    metrics = compare_rows(base_rows, new_rows, run.info, run.info, thresholds=thresholds,
                           alpha=alpha, confidence=confidence)
    _something_in_common(metrics, f"runtimes {a!r} and {b!r} of run {run.run_id!r}", base_rows,
                         new_rows)
    # One run: one environment. What differs between the two runtimes is the experiment.
    intended = envdiff.runtime_differences(run.meta, run.meta, a, b, gating=False)
    return Comparison(run.run_id, run.run_id, run.dir, run.dir, "variants", [(a, b)], alpha,
                      thresholds, metrics, intended)


def variant_pairs(spec: SpecInfo) -> list[tuple[str, str]]:
    """(A, B) for each variant B in a run's runtimes (its spec as run.json records it): A is
    the runtime it varies when that ran too, else the first listed variant of the same
    runtime (runc-a, runc-b)."""
    runtimes, variants = spec.runtimes, spec.variants
    pairs = []
    for name in runtimes:
        of = variants[name].runtime if name in variants else ""
        if not of:
            continue
        siblings = [r for r in runtimes if r in variants and variants[r].runtime == of]
        base = of if of in runtimes else siblings[0]
        if base != name:
            pairs.append((base, name))
    return pairs


def compare_all_variants(run: Run, *, thresholds: Thresholds | None = None,
                         alpha: float = ALPHA,
                         measured: pd.DataFrame | None = None) -> list[Comparison]:
    """Each variant of the run against the runtime it varies, when both ran."""
    pairs = variant_pairs(run.info.spec)
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
