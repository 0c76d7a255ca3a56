"""Concurrency on the local backend, really run: runc and runsc started four at a time, every
start sample labelled with its burst, the burst's totals recorded, the curve in the report;
and a burst stopped by Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import sandbench
from leaks import leftovers, private_cache
from sandbench.backends.local import mounts
from sandbench.image import WorkloadImage
from sandbench.results import load_run

pytestmark = pytest.mark.integration


@pytest.fixture
def cache(tmp_path: Path, workload_image: WorkloadImage,
          sandbench_cache: Path) -> Iterator[Path]:
    private = private_cache(sandbench_cache, tmp_path / "cache")
    # runsc is built into the shared cache (make test); the private one finds it there too.
    if (sandbench_cache / "gvisor").exists() and not (private / "gvisor").exists():
        (private / "gvisor").symlink_to(sandbench_cache / "gvisor")
    yield private
    mounts.unmount_all(private)



def test_runc_and_runsc_in_bursts_of_four(cache: Path, runsc: str, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    result = sandbench("run", "--workloads", "start", "--runtimes", "runc,runsc",
                       "--concurrency", "1,4", "--rounds", "2", "--warmup", "0",
                       "--out", str(out), "--cache-dir", str(cache))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (run_dir,) = list(out.iterdir())
    samples = load_run(run_dir).samples
    failed = samples[samples["status"] != "ok"]
    assert failed.empty, failed[["runtime", "metric", "reason"]].to_string()

    phase = samples[samples["metric"] == "request_to_workload"]
    for runtime in ("runc", "runsc"):
        mine = phase[phase["runtime"] == runtime]
        by_level: dict[str, list[str]] = {}
        for labels in mine["labels"]:
            assert labels["arrival"] == "burst"
            by_level.setdefault(labels["concurrency"], []).append(labels["position"])
        # Two rounds: two lone sandboxes and two bursts of four, positions 0-3 in each.
        assert sorted(by_level["1"]) == ["0", "0"]
        assert sorted(by_level["4"]) == sorted(["0", "1", "2", "3"] * 2)

    totals = samples[samples["metric"] == "burst_to_last_workload"]
    assert len(totals) == 2 * 2 * 2
    for (_, labels), total in zip(totals[["runtime", "labels"]].itertuples(index=False),
                                  totals["value"]):
        assert "position" not in labels and total > 0
    # A burst's total is at least its slowest sandbox's own start.
    four = phase[phase["labels"].map(lambda labels: labels["concurrency"] == "4")]
    four_totals = totals[totals["labels"].map(lambda labels: labels["concurrency"] == "4")]
    assert four_totals["value"].max() >= four["value"].max() - 1e-6
    assert set(samples[samples["metric"] == "harness_cpu"]["runtime"]) == {"runc", "runsc"}

    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["harness"]["bursts"] == 8
    assert meta["spec"]["concurrency"] == [1, 4]
    html = (run_dir / "report.html").read_text()
    for chart in ("start-concurrency-latency", "start-concurrency-burst_throughput",
                  "start-concurrency-harness_cpu"):
        assert f'data-chart="{chart}"' in html
    assert leftovers(cache, out) == []


def test_ctrl_c_during_bursts_leaves_nothing(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "sandbench", "run", "--workloads", "start", "--runtimes", "runc",
         "--concurrency", "8", "--rounds", "50", "--warmup", "0", "--no-report",
         "--out", str(out), "--cache-dir", str(cache)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    # After the first burst's samples, so the next burst is in flight when the signal comes.
    while time.monotonic() < deadline and child.poll() is None:
        if any(sum(1 for _ in open(s)) >= 8 for s in out.glob("*/samples.jsonl")):
            break
        time.sleep(0.02)
    time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    (run_dir,) = list(out.iterdir())
    assert load_run(run_dir).info.status == "interrupted"
    assert leftovers(cache, out) == []
