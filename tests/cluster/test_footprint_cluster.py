"""Footprint per RuntimeClass on the real test cluster (tests/cluster/up.sh): the kubelet's
pod figures for runc, crun and gvisor pods, and the recommended RuntimeClass patches accepted
by the real API server (server-side dry run)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import run_spec, sandbench
from sandbench.results import load_run

pytestmark = pytest.mark.cluster

IMAGE = os.environ.get("SANDBENCH_WORKLOAD_IMAGE", "")
KUBECTL = os.environ.get("SANDBENCH_KUBECTL", "kubectl")
#: The API server will not proxy to a node named 127.0.0.1: the kubelet is read directly.
KUBELET_URL = "https://127.0.0.1:10250/metrics"


def test_pod_overhead_per_runtime_class_and_a_patch_the_api_server_accepts(
        tmp_path: Path) -> None:
    run_dir = run_spec({
        "backend": "kubernetes", "runtimes": ["runc", "crun", "gvisor"], "baseline": "runc",
        "rounds": 2, "warmup": 0, "timeout_s": 120,
        "kubernetes": {"image": IMAGE, "pull_policy": "Never", "kubelet_url": KUBELET_URL},
        "workloads": {"footprint": {"params": {"settle_s": 1.0, "window_s": 1.0,
                                               "hold_s": 90}}}}, tmp_path)
    samples = load_run(run_dir).samples
    overhead = samples[samples["metric"] == "pod_overhead_mib"]
    assert set(overhead["runtime"]) == {"runc", "crun", "gvisor"}
    assert (overhead["status"] == "ok").all(), overhead[["runtime", "reason"]]
    assert overhead["clock"].str.contains("kubelet /stats/summary").all()
    medians = overhead.groupby("runtime")["value"].median()
    # gVisor's sentry and gofer run in the pod's cgroup; runc's pod holds a pause process.
    assert medians["gvisor"] > medians["runc"] + 10
    patches = tmp_path / "patches"
    recommended = sandbench("runtimeclasses", "recommend", str(run_dir), "--write", str(patches))
    assert recommended.returncode == 0, recommended.stderr[-2000:]
    assert "gvisor (measured as gvisor" in recommended.stdout
    for patch in sorted(patches.glob("*.yaml")):
        applied = subprocess.run([KUBECTL, "apply", "--dry-run=server", "-f", str(patch)],
                                 capture_output=True, text=True, check=False)
        assert applied.returncode == 0, applied.stderr
        assert "(server dry run)" in applied.stdout


def test_density_of_pods_held_together(tmp_path: Path) -> None:
    run_dir = run_spec({
        "backend": "kubernetes", "runtimes": ["runc", "gvisor"], "baseline": "runc",
        "rounds": 1, "warmup": 0, "timeout_s": 180,
        # A pod requests the spec's CPUs: at 1 CPU each, this 2-core node holds 2 (the third
        # is unschedulable, and the case says so).
        "resources": {"cpus": 0.1, "memory_mib": 64},
        "kubernetes": {"image": IMAGE, "pull_policy": "Never", "kubelet_url": KUBELET_URL},
        "workloads": {"density": {"params": {"counts": [1, 2, 3], "settle_s": 1.0,
                                             "window_s": 1.0}}}}, tmp_path)
    from sandbench.analysis.summary import summarize_run

    curves = {c.runtime: c for c in summarize_run(load_run(run_dir)).density}
    assert [n for n, _ in curves["gvisor"].points] == [1, 2, 3]
    fit = curves["gvisor"].fit
    assert fit is not None and fit.slope > 5
