"""Statistics on hand-computed numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sandbench.analysis import stats
from sandbench.model import Sample, Status
from sandbench.results import Run, RunWriter, load_run


def sample(runtime: str, value: float | None, *, metric: str = "request_to_workload",
           workload: str = "start", round: int = 0, warmup: bool = False,
           status: Status = Status.OK, labels: dict[str, str] | None = None) -> Sample:
    return Sample(
        run_id="r1", backend="local", runtime=runtime, workload=workload, metric=metric,
        unit="ms", value=value, round=round, warmup=warmup, status=status,
        time="2024-06-11T00:00:00+00:00", labels=labels or {},
        reason="boom" if status is Status.FAILED else None,
    )


def make_run(tmp_path: Path, samples: list[Sample], *, baseline: str = "runc",
             better: dict[str, str] | None = None) -> Run:
    metrics = {name: {"unit": "ms", "better": way, "description": ""}
               for name, way in (better or {}).items()}
    writer = RunWriter(tmp_path / "run", {"run_id": "r1", "baseline": baseline,
                                          "metrics": metrics})
    writer.append(samples)
    writer.finish("completed")
    return load_run(tmp_path / "run")


def row(summary: pd.DataFrame, runtime: str, metric: str = "request_to_workload") -> pd.Series:
    match = summary[(summary["runtime"] == runtime) & (summary["metric"] == metric)]
    assert len(match) == 1
    return match.iloc[0]


def test_labels_key_is_sorted_and_stable() -> None:
    assert stats.labels_key({"target": "rootfs", "job": "seqread"}) == "job=seqread,target=rootfs"
    assert stats.labels_key({}) == ""
    assert stats.labels_key(None) == ""


def test_median_of_odd_and_even_lengths() -> None:
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert stats.median([1, float("nan"), 3]) == 2
    assert math.isnan(stats.median([]))


def test_interval_of_a_constant_sample_is_the_constant() -> None:
    assert stats.bootstrap_median_ci([7.0] * 9) == (7.0, 7.0)
    assert stats.bootstrap_median_ci([7.0] * 10) == (7.0, 7.0)


def test_interval_is_reproducible_and_holds_the_median() -> None:
    values = np.random.default_rng(1).lognormal(3, 0.5, 50)
    low, high = stats.bootstrap_median_ci(values)
    assert low < np.median(values) < high
    assert stats.bootstrap_median_ci(values) == (low, high)


@pytest.mark.parametrize("n", [1, 2, 7, 40, 41])
def test_direct_draw_matches_resampling(n: int) -> None:
    """The O(resamples) draw has the distribution of the textbook resample-and-median."""
    values = np.random.default_rng(n).lognormal(3, 0.7, n)
    direct = stats.bootstrap_medians(values, 40_000, np.random.default_rng(2))
    picks = np.random.default_rng(3).integers(0, n, (40_000, n))
    textbook = np.median(values[picks], axis=1)
    # Kolmogorov-Smirnov distance between the two: at 40,000 draws each, noise stays under
    # 0.014 (p = 0.001) while an error such as mishandling even sizes moves it by 0.1 or more.
    points = np.union1d(direct, textbook)
    cdf_direct = np.searchsorted(np.sort(direct), points, side="right") / direct.size
    cdf_textbook = np.searchsorted(np.sort(textbook), points, side="right") / textbook.size
    assert np.abs(cdf_direct - cdf_textbook).max() < 0.02


def test_ratio_of_constants_is_exact() -> None:
    assert stats.median([2, 2, 2]) / stats.median([1, 1, 1]) == 2
    assert stats.ratio_ci([2, 2, 2], [1, 1, 1]) == (2.0, 2.0)


def test_mark_follows_the_metric_direction() -> None:
    assert stats.mark(0.5, 0.8, "lower") == "better"
    assert stats.mark(0.5, 0.8, "higher") == "worse"
    assert stats.mark(1.2, 1.5, "lower") == "worse"
    assert stats.mark(1.2, 1.5, "higher") == "better"
    assert stats.mark(0.9, 1.1, "lower") == "same"
    assert stats.mark(1.02, 1.04, "lower", threshold=0.05) == "same"
    assert stats.mark(float("nan"), 1.0, "lower") == "n/a"


def test_summary_numbers(tmp_path: Path) -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    run = make_run(tmp_path, [sample("runc", v, round=i) for i, v in enumerate(values)])
    got = row(stats.summarize(run), "runc")
    assert (got["n"], got["failed"], got["median"], got["mean"]) == (5, 0, 30.0, 30.0)
    # numpy's linear percentiles: 10 + 0.05 * 4 * 10, and so on.
    assert got["p5"] == pytest.approx(12.0)
    assert got["p95"] == pytest.approx(48.0)
    assert got["p99"] == pytest.approx(49.6)
    assert got["stdev"] == pytest.approx(math.sqrt(250.0))
    assert got["cov"] == pytest.approx(math.sqrt(250.0) / 30.0)
    assert got["ci_low"] <= 30.0 <= got["ci_high"]
    assert (got["mark"], got["labels"], got["better"]) == ("baseline", "", "lower")


def test_warmups_are_left_out_and_failures_counted_apart(tmp_path: Path) -> None:
    run = make_run(tmp_path, [
        sample("runc", 1000.0, warmup=True),
        sample("runc", 1.0, round=1),
        sample("runc", 3.0, round=2),
        sample("runc", None, round=3, status=Status.FAILED),
        sample("runc", None, round=4, status=Status.SKIPPED),
    ])
    got = row(stats.summarize(run), "runc")
    assert (got["n"], got["failed"], got["skipped"], got["median"]) == (2, 1, 1, 2.0)


def test_ratio_against_baseline(tmp_path: Path) -> None:
    run = make_run(tmp_path, [sample("runc", 1.0, round=i) for i in range(3)]
                   + [sample("kata", 2.0, round=i) for i in range(3)])
    got = row(stats.summarize(run), "kata")
    assert (got["ratio"], got["ratio_low"], got["ratio_high"]) == (2.0, 2.0, 2.0)
    assert (got["baseline"], got["mark"]) == ("runc", "worse")


def test_a_drop_where_higher_is_better_is_worse(tmp_path: Path) -> None:
    base = [100.0, 101.0, 99.0, 100.5, 99.5]
    run = make_run(
        tmp_path,
        [sample("runc", v, metric="bandwidth", workload="io", round=i) for i, v in enumerate(base)]
        + [sample("kata", v / 2, metric="bandwidth", workload="io", round=i)
           for i, v in enumerate(base)],
        better={"bandwidth": "higher"},
    )
    got = row(stats.summarize(run), "kata", "bandwidth")
    assert got["better"] == "higher"
    assert got["ratio_high"] < 1.0
    assert got["mark"] == "worse"


def test_labels_make_separate_rows(tmp_path: Path) -> None:
    run = make_run(tmp_path, [
        sample("runc", 5.0, workload="syscall", metric="ns_per_op", labels={"op": "getpid"}),
        sample("runc", 9.0, workload="syscall", metric="ns_per_op", labels={"op": "stat"}),
    ])
    summary = stats.summarize(run)
    assert list(summary["labels"]) == ["op=getpid", "op=stat"]
    assert list(summary["label_values"]) == [{"op": "getpid"}, {"op": "stat"}]


def test_warnings_fire_for_spread_small_samples_and_failures(tmp_path: Path) -> None:
    steady = [100.0, 101.0, 99.0, 100.0, 100.0]
    noisy = [50.0, 150.0, 100.0, 60.0, 140.0]
    run = make_run(tmp_path, [sample("runc", v, round=i) for i, v in enumerate(steady)]
                   + [sample("crun", v, round=i) for i, v in enumerate(noisy)]
                   + [sample("kata", v, round=i) for i, v in enumerate(steady[:3])]
                   + [sample("kata", None, round=9, status=Status.FAILED)])
    said = stats.warnings(stats.summarize(run))
    assert not [w for w in said if w.startswith("runc")]
    assert [w for w in said if w.startswith("crun") and "CoV" in w and "over 10%" in w]
    assert [w for w in said if w.startswith("kata") and "only 3 good samples" in w]
    assert [w for w in said if w.startswith("kata") and "1 failed" in w]


def test_empty_run_summarizes_to_an_empty_table(tmp_path: Path) -> None:
    summary = stats.summarize(make_run(tmp_path, []))
    assert summary.empty
    assert list(summary.columns) == stats.COLUMNS
