"""The verdict section at the top of a report: this run against a baseline run, and each
runtime variant against the runtime it varies (same-run A/B). The numbers come from
compare.py; this module only words and orders them for the template."""

from __future__ import annotations

import math
from typing import Any

from sandbench.nightly import compare
from sandbench.nightly.compare import Comparison, MetricComparison, Verdict
from sandbench.report.labels import interval, number
from sandbench.results import Run

#: What needs a look first.
ORDER = [Verdict.REGRESSED, Verdict.IMPROVED, Verdict.INCONCLUSIVE, Verdict.UNCHANGED]
#: The report's existing mark styles (base.html.j2).
MARK_CLASS = {Verdict.REGRESSED: "worse", Verdict.IMPROVED: "better",
              Verdict.INCONCLUSIVE: "na", Verdict.UNCHANGED: "same"}
MARK_TEXT = {Verdict.REGRESSED: "✘ regressed", Verdict.IMPROVED: "✔ improved",
             Verdict.INCONCLUSIVE: "? inconclusive", Verdict.UNCHANGED: "= unchanged"}


def _percent(value: float) -> str:
    return f"{value:+.1%}" if math.isfinite(value) else "—"


def _side(side: compare.Side) -> tuple[str, str]:
    if not side.n:
        return (f"failed ×{side.failed}" if side.failed else "—"), ""
    return number(side.median), interval(side.ci_low, side.ci_high)


def _row(metric: MetricComparison) -> dict[str, str]:
    j = metric.judgement
    base, base_ci = _side(metric.base)
    new, new_ci = _side(metric.new)
    change_ci = (f"[{_percent(j.change_low)}, {_percent(j.change_high)}]"
                 if math.isfinite(j.change_low) else "—")
    return {
        "runtime": metric.runtime, "workload": metric.workload, "metric": metric.name,
        "unit": metric.unit, "base": base, "base_ci": base_ci, "new": new, "new_ci": new_ci,
        "n": f"{metric.base.n} / {metric.new.n}", "change": _percent(j.change),
        "change_ci": change_ci, "p": f"{j.p_value:.2g}" if math.isfinite(j.p_value) else "—",
        "threshold": f"{metric.threshold:.0%}", "mark_class": MARK_CLASS[metric.verdict],
        "mark_text": MARK_TEXT[metric.verdict], "reason": j.reason,
    }


#: A verdict that could not be given: the template shows ``error`` instead.
EMPTY: dict[str, Any] = {"tally": "", "regressed": 0, "alpha": "", "threshold": "",
                         "gating": [], "notes": [], "changes": [], "unchanged": [], "error": ""}


def section(comparison: Comparison, title: str) -> dict[str, Any]:
    """One comparison as the template's verdict block."""
    ordered = sorted(comparison.metrics, key=lambda m: ORDER.index(m.verdict))
    return {
        "title": title,
        "tally": comparison.tally(),
        "regressed": comparison.count(Verdict.REGRESSED),
        "alpha": f"{comparison.alpha:g}",
        "threshold": f"{comparison.thresholds.default:.0%}",
        "gating": [str(d) for d in comparison.gating_differences],
        "notes": [str(d) for d in comparison.environment if not d.gating],
        "changes": [_row(m) for m in ordered if m.verdict != Verdict.UNCHANGED],
        "unchanged": [_row(m) for m in ordered if m.verdict == Verdict.UNCHANGED],
        "error": "",
    }


def sections(run: Run, baseline: Run | None) -> list[dict[str, Any]]:
    """The verdicts a report shows: against ``baseline`` when given, and same-run A/B for
    every variant of the run's spec that ran beside its runtime."""
    found = []
    if baseline is not None:
        title = f"Against the baseline run {baseline.run_id}"
        try:
            found.append(section(compare.compare_runs(baseline, run), title))
        except compare.ComparisonError as exc:
            found.append({**EMPTY, "title": title, "error": str(exc)})
    for pair in compare.compare_all_variants(run):
        a, b = pair.pairs[0]
        found.append(section(pair, f"Same-run A/B: {b} against {a}"))
    return found
