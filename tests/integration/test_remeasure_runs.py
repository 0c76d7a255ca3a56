"""`compare --remeasure` on real runs: the borderline metrics' runtimes and workloads are run
again with the new run's recorded spec, into NEW_RUN/remeasured/, and judged on that run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cache_dir, sandbench
from sandbench.cli import remeasure as remeasuring
from sandbench.nightly import compare, remeasure
from sandbench.results import load_run

pytestmark = pytest.mark.integration


def one_run(out: Path) -> Path:
    result = sandbench("run", "--runtimes", "native,runc", "--workloads", "start,syscall",
                       "--rounds", "6", "--warmup", "1", "--no-report", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = [p for p in out.iterdir() if (p / "run.json").is_file()]
    return run_dir


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, workload_image: object) -> list[Path]:
    return [one_run(tmp_path_factory.mktemp(name)) for name in ("base", "new")]


def test_a_borderline_metric_is_measured_again_and_judged_on_the_new_run(
        two_runs: list[Path]) -> None:
    base, new = two_runs
    first = compare.compare_runs(load_run(base), load_run(new))
    # Whether a real metric is borderline is up to the host; the test names one itself.
    keys = {("runc", "start", "request_to_exit", ""): "named by the test"}
    again = remeasuring.measure_again(first, keys, cache_dir())
    assert again.dir.parent == new / remeasuring.SUBDIR
    assert again.info.status == "completed"
    ok = again.samples[again.samples["status"] == "ok"]
    # The runtime and its run's baseline (cross-run verdicts judge against it), one workload,
    # the rounds the new run had.
    assert sorted(set(ok["runtime"])) == ["native", "runc"]
    assert set(ok["workload"]) == {"start"}
    assert ok[~ok["warmup"]]["round"].nunique() == 6
    second = compare.compare_runs(load_run(base), again)
    result = remeasure.merged(first, second, keys, again.run_id)
    replaced = next(m for m in result.metrics if remeasure.key(m) in keys)
    assert replaced.judgement.reason.startswith(f"re-measured in run {again.run_id} (named by")
    assert replaced.new == next(m.new for m in second.metrics if remeasure.key(m) in keys)
    # A history directory of nights never lists it: it lives inside the run it re-measured.
    assert sorted(p.name for p in new.parent.iterdir()) == [new.name]


def test_the_command_says_whether_it_measured_anything_again(two_runs: list[Path],
                                                             tmp_path: Path) -> None:
    base, new = two_runs
    verdict = tmp_path / "verdict.json"
    result = sandbench("compare", str(base), str(new), "--remeasure", "--json", str(verdict))
    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stdout + result.stderr
    document = json.loads(verdict.read_text())
    if document["remeasured"] is None:
        assert "no borderline metric: nothing re-measured" in said
    else:
        assert f"borderline metrics in run {document['remeasured']['run_id']}" in said
