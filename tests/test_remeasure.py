"""Which verdicts are borderline, what is run again for them, and how the second verdict
replaces the first: on hand-made comparisons."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import sandbench
from test_compare import lognormal, samples, write_run

from sandbench.analysis.thresholds import Thresholds
from sandbench.cli import cli, nightly
from sandbench.cli.remeasure import checked
from sandbench.errors import Interrupted, InvalidRun, RunFailed
from sandbench.formats import VerdictRecord
from sandbench.nightly import compare, remeasure
from sandbench.report import verdict_section
from sandbench.results import load_run
from sandbench.nightly.compare import (Comparison, Judgement, MetricComparison, Side, Verdict,
                                       ab_label)

ALPHA = 0.01
SIDE = Side(n=20, failed=0, median=10.0, ci_low=9.0, ci_high=11.0, cov=0.1)


def metric(verdict: Verdict, change: float, low: float, high: float, p: float, *,
           runtime: str = "runc", workload: str = "start", name: str = "request_to_exit",
           labels: str = "") -> MetricComparison:
    judged = Judgement(verdict, f"first: {verdict}", change, low, high, p, 0.5)
    return MetricComparison(runtime, workload, name, labels, "ms", "lower", 0.10, SIDE, SIDE,
                            judged)


def comparison(*metrics: MetricComparison, mode: str = "runs",
               pairs: list[tuple[str, str]] | None = None) -> Comparison:
    return Comparison("base", "new", Path("/runs/base"), Path("/runs/new"), mode,
                      pairs or [("runc", "runc")], ALPHA, Thresholds(), list(metrics))


def test_near_significance_is_borderline() -> None:
    why = remeasure.why_borderline(metric(Verdict.INCONCLUSIVE, 0.15, -0.02, 0.30, 0.03), ALPHA)
    assert why is not None and why.startswith("near significance: moved +15.0%")
    assert "p = 0.03" in why


def test_a_change_whose_interval_reaches_inside_the_threshold_is_borderline() -> None:
    why = remeasure.why_borderline(metric(Verdict.REGRESSED, 0.14, 0.08, 0.20, 0.001), ALPHA)
    assert why is not None and why.startswith("near the threshold: regressed by +14.0%")
    improved = metric(Verdict.IMPROVED, -0.14, -0.20, -0.05, 0.001)
    assert remeasure.why_borderline(improved, ALPHA) is not None


def test_clear_verdicts_are_not_borderline() -> None:
    clear = [
        metric(Verdict.REGRESSED, 0.30, 0.20, 0.40, 0.0001),      # past the threshold throughout
        metric(Verdict.INCONCLUSIVE, 0.15, -0.02, 0.30, 0.2),     # p 20 x alpha: just noisy
        metric(Verdict.INCONCLUSIVE, 0.05, -0.20, 0.30, 0.03),    # did not move past 10%
        metric(Verdict.UNCHANGED, 0.01, -0.03, 0.05, 0.5),
        metric(Verdict.HOST_DRIFT, 0.14, 0.08, 0.20, 0.001),      # the host's, not the runtime's
        metric(Verdict.INCONCLUSIVE, math.nan, math.nan, math.nan, math.nan),  # no samples
    ]
    assert [remeasure.why_borderline(m, ALPHA) for m in clear] == [None] * len(clear)


def test_two_runs_measure_the_borderline_runtimes_again_with_the_baseline() -> None:
    first = comparison(metric(Verdict.INCONCLUSIVE, 0.15, -0.02, 0.30, 0.03, runtime="crun",
                              workload="syscall", name="ns_per_op", labels="op=getpid"),
                       metric(Verdict.UNCHANGED, 0.0, -0.01, 0.01, 0.9, runtime="runc"))
    keys = remeasure.borderline(first)
    assert list(keys) == [("crun", "syscall", "ns_per_op", "op=getpid")]
    chosen = remeasure.selection(first, keys, "native", ["native", "runc", "crun"])
    assert chosen == remeasure.Selection(["native", "crun"], ["syscall"], [])


def test_same_run_ab_measures_both_runtimes_of_the_pair_again() -> None:
    label = ab_label("runc-a", "runc-b")
    first = comparison(metric(Verdict.REGRESSED, 0.12, 0.05, 0.2, 0.001, runtime=label),
                       mode="variants", pairs=[("runc-a", "runc-b")])
    chosen = remeasure.selection(first, remeasure.borderline(first), "native",
                                 ["native", "runc-a", "runc-b", "crun"])
    # A/B needs no baseline: both sides are run again side by side.
    assert chosen == remeasure.Selection(["runc-a", "runc-b"], ["start"], [])
    gone = remeasure.selection(first, remeasure.borderline(first), None, ["runc-a"])
    assert gone.missing == ["runc-b"]


def test_the_second_verdict_replaces_the_first_and_says_so() -> None:
    borderline = metric(Verdict.REGRESSED, 0.12, 0.05, 0.20, 0.001)
    steady = metric(Verdict.UNCHANGED, 0.0, -0.01, 0.01, 0.9, name="request_to_created")
    first = comparison(borderline, steady)
    keys = remeasure.borderline(first)
    again = Comparison("base", "again", Path("/runs/base"), Path("/runs/new/remeasured/again"),
                       "runs", [("runc", "runc")], ALPHA, Thresholds(),
                       [metric(Verdict.UNCHANGED, 0.02, -0.03, 0.06, 0.4)])
    result = remeasure.merged(first, again, keys, "again")
    replaced, kept = result.metrics
    assert replaced.verdict == Verdict.UNCHANGED
    assert replaced.judgement.reason.startswith("re-measured in run again (near the threshold")
    assert "first: regressed, p = 0.001" in replaced.judgement.reason
    assert replaced.judgement.reason.endswith(": first: unchanged")  # the second's own reason
    assert kept is steady
    assert result.remeasured is not None and result.remeasured.metrics == [
        "runc start request_to_exit"]
    # verdict.json carries it, and reads back.
    document = VerdictRecord.model_validate({**result.to_json(), "gate": "passed"})
    assert Comparison.from_record(document).remeasured == result.remeasured


def test_a_metric_the_second_run_lacks_is_inconclusive_not_kept() -> None:
    first = comparison(metric(Verdict.REGRESSED, 0.12, 0.05, 0.20, 0.001))
    again = Comparison("base", "again", Path("/b"), Path("/a"), "runs", [("runc", "runc")],
                       ALPHA, Thresholds(), [])
    (result,) = remeasure.merged(first, again, remeasure.borderline(first), "again").metrics
    assert result.verdict == Verdict.INCONCLUSIVE
    assert result.judgement.reason.endswith("the re-measurement has no value for it")


def test_the_report_says_which_metrics_were_measured_again() -> None:
    first = comparison(metric(Verdict.REGRESSED, 0.12, 0.05, 0.20, 0.001))
    again = comparison(metric(Verdict.UNCHANGED, 0.02, -0.03, 0.06, 0.4))
    result = remeasure.merged(first, again, remeasure.borderline(first), "again")
    notes = verdict_section.section(result, "against last night")["notes"]
    assert notes == ["1 borderline metrics were measured again in run again (compare "
                     "--remeasure): their verdicts are that run's: runc start request_to_exit"]


@pytest.mark.parametrize("status, valid, error, says", [
    ("interrupted", True, Interrupted, "interrupted while re-measuring"),
    ("failed", None, RunFailed, "is failed: boom"),
    ("crashed", None, RunFailed, "is crashed"),
    ("completed", False, InvalidRun, "is not valid"),
])
def test_a_re_measurement_that_did_not_complete_gives_no_verdict(
        tmp_path: Path, status: str, valid: bool | None, error: type[Exception],
        says: str) -> None:
    rows = samples("runc", [10.0, 11.0])
    again = write_run(tmp_path / "again", rows, valid=valid, status_reason="boom")
    (again.dir / "run.json").write_text(json.dumps(
        {**json.loads((again.dir / "run.json").read_text()), "status": status,
         "status_reason": "boom", "valid": valid}))
    with pytest.raises(error, match=says) as raised:
        checked(load_run(again.dir))
    assert "no verdict was given or recorded" in str(raised.value)
    assert error is not Interrupted or raised.value.exit_code == 130


def test_a_completed_valid_re_measurement_is_judged(tmp_path: Path) -> None:
    again = write_run(tmp_path / "again", samples("runc", [10.0, 11.0]))
    assert checked(again) is again


def test_a_bad_record_target_is_refused_before_anything_is_measured_again(
        tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", samples("runc", lognormal(50, 0.1, 6, 0)))
    new = write_run(tmp_path / "new", samples("runc", lognormal(58, 0.1, 6, 100)))
    assert remeasure.borderline(compare.compare_runs(base, new, thresholds=Thresholds(),
                                                     alpha=ALPHA))
    (new.dir / "verdict.json").mkdir()
    done = sandbench("compare", str(base.dir), str(new.dir), "--remeasure", "--record",
                     "--fail-on", "regression")
    assert done.returncode == 2, done.stderr
    assert "--record" in done.stderr and "is a directory" in done.stderr
    assert "re-measuring" not in done.stdout + done.stderr
    assert not (new.dir / "remeasured").exists()


def test_ctrl_c_during_a_comparison_is_an_interrupt_not_an_abort(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = write_run(tmp_path / "base", samples("runc", lognormal(50, 0.1, 6, 0)))
    new = write_run(tmp_path / "new", samples("runc", lognormal(50, 0.1, 6, 1)))

    def interrupted(comparison: Comparison) -> None:
        raise KeyboardInterrupt

    # The comparison's table is printed before the gate is given and recorded.
    monkeypatch.setattr(nightly, "print_comparison", interrupted)
    with pytest.raises(Interrupted, match="interrupted before the comparison ended") as raised:
        cli.main(["compare", str(base.dir), str(new.dir), "--fail-on", "regression",
                  "--record"], standalone_mode=False)
    assert raised.value.exit_code == 130
    assert not (new.dir / "verdict.json").exists()
