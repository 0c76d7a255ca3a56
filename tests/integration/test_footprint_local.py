"""Footprint and density with the real runtimes: per-sandbox host memory of native, runc,
crun and runsc, a density sweep fitted to a line, and a Ctrl-C while many sandboxes are held
that leaves none of them behind."""

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
from sandbench.analysis.summary import summarize_run
from sandbench.backends.local import find_binary, mounts, runtime_table
from sandbench.image import WorkloadImage
from sandbench.results import load_run

pytestmark = pytest.mark.integration


@pytest.fixture
def cache(tmp_path: Path, workload_image: WorkloadImage, sandbench_cache: Path) -> Iterator[Path]:
    if find_binary(runtime_table()["runsc"], sandbench_cache) is None:
        pytest.fail("runsc is neither on PATH nor built in the cache: `make gvisor` builds it")
    private = private_cache(sandbench_cache, tmp_path / "cache")
    # runsc is found under the cache (built by `make gvisor`): the shared one.
    (private / "gvisor").symlink_to(sandbench_cache / "gvisor")
    yield private
    mounts.unmount_all(private)


def _spec(tmp_path: Path, runtimes: list[str], workloads: dict[str, object]) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({"backend": "local", "runtimes": runtimes, "rounds": 2,
                                "warmup": 0, "baseline": runtimes[0], "workloads": workloads}))
    return spec


def test_runsc_costs_the_host_tens_of_mib_more_than_runc(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    spec = _spec(tmp_path, ["native", "runc", "crun", "runsc"], {
        "footprint": {"params": {"settle_s": 0.5, "window_s": 0.5, "hold_s": 20}},
        "density": {"rounds": 1, "params": {"counts": [1, 2, 3], "settle_s": 0.5,
                                            "window_s": 0.5}}})
    result = sandbench("run", str(spec), "--out", str(out), "--cache-dir", str(cache))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (run_dir,) = list(out.iterdir())
    run = load_run(run_dir)
    samples = run.samples
    bad = samples[samples["status"] == "failed"]
    assert bad.empty, bad[["runtime", "metric", "reason"]].to_string()
    overhead = samples[samples["metric"] == "overhead_pss_mib"].groupby("runtime")["value"].median()
    # runsc's sentry and gofer: tens of MiB; a runc container adds no resident process.
    assert overhead["runsc"] > overhead["runc"] + 10
    counted = samples[(samples["runtime"] == "runsc") & (samples["metric"] == "host_pss_mib")]
    assert all("runsc-sandbox" in labels["counted"] and "runsc-gofer" in labels["counted"]
               for labels in counted["labels"])
    cgroups = samples[samples["metric"] == "cgroup_memory_mib"]
    assert set(cgroups[cgroups["status"] == "skipped"]["runtime"]) == {"native"}
    summary = summarize_run(run)
    curves = {c.runtime: c for c in summary.density}
    assert curves["runsc"].fit is not None and curves["runsc"].fit.slope > 1
    assert [n for n, _ in curves["runc"].points] == [1, 2, 3]
    line = next(d for d in summary.decision if d.runtime == "runsc")
    assert "memory +" in line.text() and "MiB per sandbox" in line.text()
    assert (run_dir / "report.html").read_text().count("Footprint") >= 1
    assert leftovers(cache, out) == []


def test_ctrl_c_while_sandboxes_are_held_deletes_them_all(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    spec = _spec(tmp_path, ["runc"], {"density": {"rounds": 1, "params": {"counts": [40]}}})
    child = subprocess.Popen([sys.executable, "-m", "sandbench", "run", str(spec), "--out",
                              str(out), "--cache-dir", str(cache), "--no-report"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    held: list[Path] = []
    while time.monotonic() < deadline and len(held) < 5:
        held = list((cache / "scratch").glob("*/*-00000-*")) if (cache / "scratch").is_dir() else []
        time.sleep(0.05)
    assert len(held) >= 5, "the density case never held 5 sandboxes"
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert leftovers(cache, out) == []
