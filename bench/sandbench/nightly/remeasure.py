"""Borderline verdicts, measured again: which metrics are borderline, what to run again, and
the verdict after.

One more measurement could well flip a borderline verdict:

    near significance  inconclusive, but the median moved past the threshold and p lies
                       between alpha and 10 x alpha: at a slightly looser alpha it would have
                       read regressed or improved
    near the threshold regressed or improved, but the interval of the change reaches back
                       inside ±threshold: a slightly smaller change would have read unchanged

Firecracker's A/B tool runs a failing comparison again before it reports it; sandbench runs
again only the runtimes and workloads of borderline metrics (``compare --remeasure``), and the
verdict after is the re-measurement's own. It is judged on the new measurement alone, never
on samples pooled across the two: a second run may see another host, and pooling would hide
that. Host drift is never borderline: it is a statement about the host, which measuring the
same runtimes again does not settle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from sandbench.analysis.verdict import Verdict
from sandbench.formats import RemeasureRecord
from sandbench.nightly.compare import Comparison, MetricComparison, ab_label

#: "p between alpha and this many times alpha" is near significance.
NEAR_ALPHA = 10

Key = tuple[str, str, str, str]


def key(metric: MetricComparison) -> Key:
    return (metric.runtime, metric.workload, metric.metric, metric.labels)


def why_borderline(metric: MetricComparison, alpha: float) -> str | None:
    """Why one more measurement could flip this metric's verdict, or None when it could not."""
    j, threshold = metric.judgement, metric.threshold
    if not all(math.isfinite(x) for x in (j.change, j.change_low, j.change_high, j.p_value)):
        return None
    # Under the minimum change a significant move reads unchanged, never regressed: nothing
    # a looser alpha could flip, so nothing worth minutes of sandboxes.
    moved = abs(metric.new.median - metric.base.median)
    if (j.verdict == Verdict.INCONCLUSIVE and abs(j.change) > threshold
            and not (metric.min_change > 0 and moved < metric.min_change)
            and alpha <= j.p_value < NEAR_ALPHA * alpha):
        return (f"near significance: moved {j.change:+.1%} (threshold {threshold:.0%}) at "
                f"p = {j.p_value:.3g}, between alpha {alpha:g} and {NEAR_ALPHA * alpha:g}")
    if (j.verdict in (Verdict.REGRESSED, Verdict.IMPROVED)
            and j.change_low <= threshold and j.change_high >= -threshold):
        return (f"near the threshold: {j.verdict} by {j.change:+.1%}, but its interval "
                f"[{j.change_low:+.1%}, {j.change_high:+.1%}] reaches inside ±{threshold:.0%}")
    return None


def borderline(comparison: Comparison) -> dict[Key, str]:
    """Each borderline metric of the comparison, with why."""
    found = {}
    for metric in comparison.metrics:
        why = why_borderline(metric, comparison.alpha)
        if why is not None:
            found[key(metric)] = why
    return found


@dataclass(frozen=True)
class Selection:
    """What to run again: runtimes and workloads, in the first run's spec order."""

    runtimes: list[str]
    workloads: list[str]
    #: Runtimes the borderline metrics need that the spec does not run.
    missing: list[str]


def selection(comparison: Comparison, keys: dict[Key, str], baseline: str | None,
              spec_runtimes: list[str]) -> Selection:
    """The runtimes and workloads the borderline metrics need. Two runs: their runtimes and
    the baseline (cross-run verdicts also judge against it, hostdrift.py). Same-run A/B: both
    runtimes of each borderline pair, run again side by side as the first time."""
    by_label = {ab_label(a, b): (a, b) for a, b in comparison.pairs}
    wanted: set[str] = set()
    for runtime, _workload, _metric, _labels in keys:
        wanted.update(by_label.get(runtime, (runtime,)))
    if comparison.mode == "runs" and baseline:
        wanted.add(baseline)
    workloads = list(dict.fromkeys(workload for _r, workload, _m, _l in keys))
    return Selection([r for r in spec_runtimes if r in wanted], workloads,
                     sorted(wanted - set(spec_runtimes)))


def merged(first: Comparison, again: Comparison, keys: dict[Key, str],
           run_id: str) -> Comparison:
    """The first comparison with each borderline metric's verdict replaced by the one measured
    again in run ``run_id``; its reason says what the first verdict was and why it was
    re-measured."""
    second = {key(m): m for m in again.metrics}
    metrics = []
    for metric in first.metrics:
        why = keys.get(key(metric))
        if why is None:
            metrics.append(metric)
            continue
        before = (f"re-measured in run {run_id} ({why}; first: {metric.verdict}, "
                  f"p = {metric.judgement.p_value:.3g})")
        after = second.get(key(metric))
        if after is None:
            judgement = replace(metric.judgement, verdict=Verdict.INCONCLUSIVE,
                                reason=f"{before}; the re-measurement has no value for it")
            metrics.append(replace(metric, judgement=judgement))
            continue
        judgement = replace(after.judgement, reason=f"{before}: {after.judgement.reason}")
        metrics.append(replace(after, judgement=judgement))
    record = RemeasureRecord(run_id=run_id, dir=str(again.new_dir),
                             metrics=[f"{r} {w} {m}" + (f"[{l}]" if l else "")
                                      for r, w, m, l in keys])
    return replace(first, metrics=metrics, remeasured=record)
