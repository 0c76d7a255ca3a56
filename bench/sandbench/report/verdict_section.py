"""The verdict section at the top of a report: this run against a baseline run, and each
runtime variant against the runtime it varies (same-run A/B). The numbers come from
compare.py; this module only words and orders them for the template."""

from __future__ import annotations

import json
import math
from typing import Any

from sandbench.formats import VerdictRecord
from sandbench.analysis.summary import RunSummary, summarize_run
from sandbench.nightly import compare
from sandbench.nightly.compare import Comparison, MetricComparison, Verdict
from sandbench.nightly.history import VERDICT_FILE
from sandbench.report.labels import interval, number
from sandbench.results import Run

#: What needs a look first.
ORDER = [Verdict.REGRESSED, Verdict.IMPROVED, Verdict.HOST_DRIFT, Verdict.INCONCLUSIVE,
         Verdict.UNCHANGED]
#: The report's existing mark styles (base.html.j2).
MARK_CLASS = {Verdict.REGRESSED: "worse", Verdict.IMPROVED: "better", Verdict.HOST_DRIFT: "na",
              Verdict.INCONCLUSIVE: "na", Verdict.UNCHANGED: "same"}
MARK_TEXT = {Verdict.REGRESSED: "✘ regressed", Verdict.IMPROVED: "✔ improved",
             Verdict.HOST_DRIFT: "~ host drift", Verdict.INCONCLUSIVE: "? inconclusive",
             Verdict.UNCHANGED: "= unchanged"}


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
                         "per_metric": "", "min_change": "",
                         "gating": [], "notes": [], "changes": [], "unchanged": [], "error": ""}


def _remeasured(comparison: Comparison) -> list[str]:
    again = comparison.remeasured
    if again is None:
        return []
    return [f"{len(again.metrics)} borderline metrics were measured again in run {again.run_id} "
            f"(compare --remeasure): their verdicts are that run's: {', '.join(again.metrics)}"]


def section(comparison: Comparison, title: str) -> dict[str, Any]:
    """One comparison as the template's verdict block."""
    ordered = sorted(comparison.metrics, key=lambda m: ORDER.index(m.verdict))
    return {
        "title": title,
        "tally": comparison.tally(),
        "regressed": comparison.count(Verdict.REGRESSED),
        "alpha": f"{comparison.alpha:g}",
        "threshold": f"{comparison.thresholds.default:.0%}",
        "per_metric": ", ".join(f"{name} {value:.0%}" for name, value
                                in sorted(comparison.thresholds.per_metric.items())),
        "min_change": comparison.thresholds.min_change_text(),
        "gating": [str(d) for d in comparison.gating_differences],
        "notes": ([str(d) for d in comparison.environment if not d.gating]
                  + _remeasured(comparison)),
        "changes": [_row(m) for m in ordered if m.verdict != Verdict.UNCHANGED],
        "unchanged": [_row(m) for m in ordered if m.verdict == Verdict.UNCHANGED],
        "error": "",
    }


def recorded(run: Run) -> dict[str, Any] | None:
    """The gate's own verdict, as ``sandbench compare --record`` wrote it into the run."""
    path = run.dir / VERDICT_FILE
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise compare.ComparisonError(f"{path} cannot be read: {exc}") from exc
    return document if isinstance(document, dict) else None


def _gated(run: Run, baseline: Run | None) -> dict[str, Any] | None:
    """The recorded gate's section when it judged this run against ``baseline`` (or any
    baseline, when none is named): the report then shows exactly what the gate decided, with
    its thresholds and alpha, instead of judging again with the defaults."""
    document = recorded(run)
    if document is None or document.get("mode") != "runs":
        return None
    # A damaged file raises pydantic's ValidationError, a ValueError: sections() says so.
    verdict = VerdictRecord.model_validate(document)
    base_id = verdict.base.run_id
    if baseline is not None and base_id != baseline.run_id:
        return None
    comparison = compare.Comparison.from_record(verdict)
    gate = verdict.gate or "compared"
    title = (f"Against the baseline run {base_id} (as the gate recorded it in {VERDICT_FILE}: "
             f"{gate})")
    return {**section(comparison, title), "gate": gate}


def sections(summary: RunSummary, baseline: Run | None) -> list[dict[str, Any]]:
    """The verdicts a report shows: the gate's recorded verdict, else one judged against
    ``baseline`` when given; and same-run A/B for every variant of the run's spec that ran
    beside its runtime."""
    run = summary.run
    found = []
    try:
        gated = _gated(run, baseline)
    except (compare.ComparisonError, KeyError, TypeError, ValueError) as exc:
        gated = {**EMPTY, "title": "The gate's recorded verdict",
                 "error": f"{VERDICT_FILE} cannot be read: {exc}"}
    if gated is not None:
        found.append(gated)
    elif baseline is not None:
        title = f"Against the baseline run {baseline.run_id}"
        try:
            # Only here is the baseline run summarised: a recorded verdict needs none.
            found.append(section(compare.compare_summaries(summarize_run(baseline), summary),
                                 title))
        except compare.ComparisonError as exc:
            found.append({**EMPTY, "title": title, "error": str(exc)})
    for pair in compare.compare_all_variants(run, measured=summary.rows):
        a, b = pair.pairs[0]
        found.append(section(pair, f"Same-run A/B: {b} against {a}"))
    return found
