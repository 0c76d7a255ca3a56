"""Image pull, cold against warm, verified, on the real test cluster (tests/cluster/up.sh): the
workload image pushed with skopeo into up.sh's registry (Debian's docker-registry on
127.0.0.1, plain HTTP), then runc pods of the start workload with the image removed from the
node first (cold) and present (warm), its state checked through the node's CRI (crictl
ImageStatus) before and after every pod, and the kubelet's own pull time beside the phases.

A cold pull removes the image under every name it has on the node, the imported
localhost/... name the other cluster tests use included (the same image ID); the fixture
imports it again afterwards, as up.sh did."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from conftest import run_spec
from sandbench.backends.kubernetes.cri import NodeCri
from sandbench.results import load_run

pytestmark = pytest.mark.cluster

CLUSTER_DIR = Path(os.environ.get("SANDBENCH_CLUSTER_DIR", "/var/tmp/sandbench-cluster"))
IMAGE = os.environ.get("SANDBENCH_WORKLOAD_IMAGE", "")
ARCHIVE = os.environ.get("SANDBENCH_WORKLOAD_ARCHIVE", "")
CRICTL = os.environ.get("SANDBENCH_CRICTL", "")
SOCKET = CLUSTER_DIR / "containerd" / "containerd.sock"
ENDPOINT = f"unix://{SOCKET}"
KUBELET_URL = "https://127.0.0.1:10250/metrics"
ROUNDS = 3


def node_cri() -> NodeCri:
    return NodeCri(CRICTL, ENDPOINT, 120)


def restore_imported_image() -> None:
    """Import the workload archive again, as up.sh did, unless its name is still there."""
    if node_cri().status(IMAGE).present:
        return
    subprocess.run(["ctr", "--address", str(SOCKET), "-n", "k8s.io", "images", "import",
                    ARCHIVE], check=True, capture_output=True, timeout=300)
    assert node_cri().status(IMAGE).present


@pytest.fixture(scope="module")
def pushed() -> Iterator[str]:
    """The workload image in the cluster's registry; its reference."""
    address = CLUSTER_DIR / "registry" / "address"
    if not address.exists():
        pytest.skip("up.sh ran no registry (Debian's docker-registry is not installed)")
    if not (CRICTL and Path(CRICTL).exists() and IMAGE and ARCHIVE):
        pytest.skip("needs SANDBENCH_CRICTL, SANDBENCH_WORKLOAD_IMAGE and "
                    "SANDBENCH_WORKLOAD_ARCHIVE (run-tests.sh sets them)")
    ref = f"{address.read_text().strip()}/sandbench/workload:{IMAGE.rsplit(':', 1)[1]}"
    # Plain HTTP: the registry listens on loopback only, with no TLS to verify.
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                    f"oci-archive:{ARCHIVE}", f"docker://{ref}"],
                   check=True, capture_output=True, timeout=300)
    try:
        yield ref
    finally:
        restore_imported_image()


@pytest.fixture(scope="module")
def pull_run(pushed: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_spec({
        "backend": "kubernetes", "runtimes": ["runc"], "rounds": ROUNDS, "warmup": 0,
        "timeout_s": 120,
        "kubernetes": {"image": pushed, "pull_policy": "IfNotPresent",
                       "kubelet_url": KUBELET_URL},
        "workloads": {"start": {}}}, tmp_path_factory.mktemp("pull"), "--pull", "both",
        "--cri-endpoint", ENDPOINT, "--crictl", CRICTL, "--no-report")


def measured(run_dir: Path, metric: str) -> pd.DataFrame:
    samples = load_run(run_dir).samples
    rows = samples[(samples["metric"] == metric) & ~samples["warmup"]].copy()
    rows["pull"] = rows["labels"].map(lambda labels: (labels or {}).get("pull"))
    return rows


def test_cold_and_warm_are_labelled_and_verified(pull_run: Path, pushed: str) -> None:
    rows = measured(pull_run, "scheduled_to_running")
    assert (rows["status"] == "ok").all(), rows[["pull", "reason"]]
    assert sorted(rows["pull"]) == ["cold"] * ROUNDS + ["warm"] * ROUNDS
    for labels in rows["labels"]:
        assert labels["pull_check"] == "cri-imagestatus"
        assert int(labels["image_size"]) > 10_000_000 and labels["image_layers"] == "1"
    state = load_run(pull_run).info.environment["image_state"]
    assert state["verified"] is True and state["image"] == pushed
    # Every pod's state was confirmed after it too (absent before, or it would have failed).
    assert state["pods_verified"] == {"cold": ROUNDS, "warm": ROUNDS}
    # The last pod left it on the node: ImageStatus, asked independently of the harness.
    assert node_cri().status(pushed).present


def test_the_kubelet_pulled_for_cold_pods_only(pull_run: Path) -> None:
    pulls = measured(pull_run, "kubelet_image_pull")
    assert (pulls["status"] == "ok").all(), pulls[["pull", "reason"]]
    assert list(pulls["pull"]) == ["cold"] * ROUNDS
    assert (pulls["value"] > 0).all()
    assert pulls["clock"].eq("kubelet histogram").all()


def test_cold_starts_slower_than_warm(pull_run: Path) -> None:
    rows = measured(pull_run, "scheduled_to_running")
    medians = rows.groupby("pull")["value"].median()
    pulls = measured(pull_run, "kubelet_image_pull")["value"]
    # The figures for the record (pytest -s shows them).
    for pull, group in rows.groupby("pull"):
        print(f"scheduled_to_running {pull}: median {group['value'].median():.0f} ms, "
              f"min {group['value'].min():.0f}, max {group['value'].max():.0f} (n={len(group)})")
    print(f"kubelet_image_pull cold: median {pulls.median():.0f} ms, min {pulls.min():.0f}, "
          f"max {pulls.max():.0f}")
    assert medians["cold"] > medians["warm"]
    # The kubelet's pull lies inside the cold pods' scheduled -> running.
    assert pulls.median() < medians["cold"]
