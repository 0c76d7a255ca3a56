"""Host drift verdicts across two runs: a change the host made, not the runtime.

The numbers are analysis/drift.py's (each runtime's per-round ratio to its run's baseline);
this module turns them, and the recorded host state, into the "host drift" verdict on a
comparison's metrics (nightly/compare.py calls it on every cross-run comparison).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sandbench.analysis import drift
from sandbench.analysis.verdict import Verdict, judge

if TYPE_CHECKING:
    from sandbench.nightly.compare import MetricComparison


#: A change, between two runs, of how many tasks besides the harness were runnable on the
#: host, past which the host counts as having moved: half a task (one CPU-bound tenant is
#: one). The load average stands in for runs that did not sample runnable tasks.
LOAD_CHANGE = 0.5


def mean_load(meta: Mapping[str, Any]) -> float | None:
    state = meta.get("host_state") or {}
    loads = [float(s["loadavg"][0]) for s in (state.get("start"), state.get("end"))
             if isinstance(s, Mapping) and s.get("loadavg")]
    return sum(loads) / len(loads) if loads else None


def others_runnable(meta: Mapping[str, Any]) -> float | None:
    """Tasks runnable besides the harness, averaged over samples taken before each sandbox
    (runner.py records it): unlike the load average, which trails by a minute, it sees a
    tenant that came or went during a short run."""
    during = (meta.get("host_state") or {}).get("during")
    value = during.get("others_runnable_mean") if isinstance(during, Mapping) else None
    return float(value) if isinstance(value, (int, float)) else None


def load_change(base_meta: Mapping[str, Any], new_meta: Mapping[str, Any]) -> str | None:
    """The recorded load change between the runs, in words, when it is past LOAD_CHANGE."""
    base, new = others_runnable(base_meta), others_runnable(new_meta)
    what = "runnable tasks besides the harness"
    if base is None or new is None:
        base, new = mean_load(base_meta), mean_load(new_meta)
        what = "load average"
    if base is None or new is None or abs(new - base) <= LOAD_CHANGE:
        return None
    return f"{what} {base:.2f} -> {new:.2f}"


def with_a_busier_host(metric: MetricComparison, load: str) -> MetricComparison:
    """When the recorded load changed between the runs, no change is trusted, whatever its
    ratio did. Load does not slow every runtime alike: a Go runtime's threads, a container's
    CPU cgroup and a plain process each lose a different share to a new tenant, so on this
    2-core host a CPU hog moved runc's create 38% against crun's with nothing of runc
    changed. The verdict says what was measured and sends the reader to a comparison that
    can tell: runs on a host in the same state, or variants within one run."""
    if metric.verdict not in (Verdict.REGRESSED, Verdict.IMPROVED):
        return metric
    relative = metric.relative
    ratio = (f"; against {metric.reference} it is {relative.verdict} ({relative.change:+.1%})"
             if relative is not None and metric.reference else "")
    judgement = replace(metric.judgement, verdict=Verdict.HOST_DRIFT, reason=(
        f"{metric.verdict} as measured ({metric.judgement.reason}){ratio}, but the host's "
        f"{load} between the runs: load does not slow every runtime alike, so this change "
        f"cannot be told from the host's. Compare runs taken on a host in the same state, "
        f"or variants within one run"))
    return replace(metric, judgement=judgement)


def baseline_with_the_others(metric: MetricComparison, metrics: list[MetricComparison],
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


def against_drift(metric: MetricComparison, base_rounds: drift.Rounds,
                   new_rounds: drift.Rounds, baseline: str, alpha: float,
                   confidence: float) -> MetricComparison:
    """Judge a change of the metric's ratio to its run's baseline too (drift.py); a change
    of the absolute value that the ratio does not share is the host's, and is called host
    drift. Only changes are judged again: an unchanged or inconclusive metric has nothing
    the host could have made up."""
    judgement = metric.judgement
    if judgement.verdict not in (Verdict.REGRESSED, Verdict.IMPROVED):
        return metric
    key = (metric.runtime, metric.workload, metric.metric, metric.labels)
    base_found = base_rounds.ratios(key, baseline)
    new_found = new_rounds.ratios(key, baseline)
    if base_found is None or new_found is None:
        return metric
    (base_ratios, reference), (new_ratios, _) = base_found, new_found
    relative = judge(base_ratios, new_ratios, better=metric.better, threshold=metric.threshold,
                     alpha=alpha, confidence=confidence)
    if relative.verdict != judgement.verdict:
        judgement = replace(judgement, verdict=Verdict.HOST_DRIFT, reason=(
            f"{judgement.verdict} as measured ({judgement.reason}), but against {reference} "
            f"it is {relative.verdict}: {relative.reason}. The host moved, not "
            f"{metric.runtime}"))
    return replace(metric, judgement=judgement, relative=relative, reference=reference)
