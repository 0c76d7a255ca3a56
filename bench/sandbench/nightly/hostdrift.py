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


#: A change of the host's mean load average between two runs past which the host counts as
#: having moved (half a core: one CPU-bound tenant on a 2-core host moves it by about 1).
LOAD_CHANGE = 0.5


def mean_load(meta: Mapping[str, Any]) -> float | None:
    state = meta.get("host_state") or {}
    loads = [float(s["loadavg"][0]) for s in (state.get("start"), state.get("end"))
             if isinstance(s, Mapping) and s.get("loadavg")]
    return sum(loads) / len(loads) if loads else None


def load_change(base_meta: Mapping[str, Any], new_meta: Mapping[str, Any]) -> str | None:
    """The recorded load change between the runs, in words, when it is past LOAD_CHANGE."""
    base, new = mean_load(base_meta), mean_load(new_meta)
    if base is None or new is None or abs(new - base) <= LOAD_CHANGE:
        return None
    return f"load average {base:.2f} -> {new:.2f}"


def with_a_busier_host(metric: MetricComparison, metrics: list[MetricComparison],
                        baseline: str, alpha: float, load: str) -> MetricComparison:
    """When the recorded load changed between the runs and the baseline's same operation
    moved the same way, a runtime's change is not trusted even where its ratio moved too:
    load does not slow every runtime alike (a container under a CPU quota is throttled where
    a plain process is not), so the ratio cannot tell the runtime from the host then."""
    if metric.runtime == baseline or metric.verdict not in (Verdict.REGRESSED, Verdict.IMPROVED):
        return metric
    base = next((m for m in metrics if m.runtime == baseline and (m.workload, m.metric, m.labels)
                 == (metric.workload, metric.metric, metric.labels)), None)
    if base is None or not (base.judgement.p_value < alpha and
                            (base.judgement.change > 0) == (metric.judgement.change > 0)):
        return metric
    judgement = replace(metric.judgement, verdict=Verdict.HOST_DRIFT, reason=(
        f"{metric.verdict} as measured ({metric.judgement.reason}), but the host's {load} "
        f"and {baseline}'s same operation moved the same way ({base.judgement.change:+.1%}): "
        f"not trusted across a changed host; compare runs on a host in the same state"))
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
