"""Two real nodes (tests/cluster/up.sh with SANDBENCH_NODES=2; run-tests.sh runs these in a
phase of their own): each a kubelet with its own containerd, name, root, cgroup root and pod
subnet in network, PID and mount namespaces of its own. On them: a runc pod lands in its own
node's containerd and no other; the fan-out runs runc at concurrency 1 and 8 on both nodes at
once, every sample labelled with its node and each node's clock offset measured on it; the net
workload measures the cross-node path between pods on the two nodes; nothing is left after."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from conftest import run_spec
from sandbench.backends.kubernetes import api, manifests
from sandbench.results import load_run

pytestmark = [pytest.mark.cluster, pytest.mark.multinode]

IMAGE = os.environ.get("SANDBENCH_WORKLOAD_IMAGE", "")
CLUSTER_DIR = Path(os.environ.get("SANDBENCH_CLUSTER_DIR", "/var/tmp/sandbench-cluster"))
#: up.sh's pause image: busybox, with a `sleep`.
PAUSE = "localhost/sandbench/pause:1"
FIRST, SECOND = "127.0.0.1", "10.235.2.2"
SOCKETS = {FIRST: CLUSTER_DIR / "containerd/containerd.sock",
           SECOND: CLUSTER_DIR / "nodes/node2/containerd/containerd.sock"}
LEVELS = (1, 8)
ROUNDS = 3


@pytest.fixture(scope="module")
def apis() -> api.Apis:
    found = api.connect()
    names = [n.metadata.name for n in found.core.list_node().items]
    if SECOND not in names:
        pytest.skip(f"one node only ({names}): bring the cluster up with SANDBENCH_NODES=2")
    return found


def containers(node: str) -> set[str]:
    listed = subprocess.run(["ctr", "--address", str(SOCKETS[node]), "-n", "k8s.io",
                             "containers", "ls", "-q"],
                            capture_output=True, text=True, check=True, timeout=30)
    return set(listed.stdout.split())


def test_two_ready_nodes_each_with_its_own_containerd(apis: api.Apis) -> None:
    nodes = {n.metadata.name: n for n in apis.core.list_node().items}
    for name in (FIRST, SECOND):
        ready = [c.status for c in nodes[name].status.conditions if c.type == "Ready"]
        assert ready == ["True"], name
    assert nodes[SECOND].metadata.labels["sandbench.io/node"] == "node2"
    assert {a.address for a in nodes[SECOND].status.addresses} == {SECOND}
    # One pod pinned to the second node: its container is in that node's containerd only.
    name = f"multinode-{int(time.time())}"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {"app": "sandbench-multinode-test"}},
           "spec": {"nodeName": SECOND, "restartPolicy": "Never",
                    "runtimeClassName": "runc", "dnsPolicy": "Default",
                    "containers": [{"name": "c", "image": PAUSE, "imagePullPolicy": "Never",
                                    "command": ["sleep", "300"]}]}}
    apis.core.create_namespaced_pod("default", pod)
    try:
        container_id = ""
        deadline = time.monotonic() + 120
        while not container_id and time.monotonic() < deadline:
            status = apis.core.read_namespaced_pod(name, "default").status
            for c in status.container_statuses or []:
                if c.state and c.state.running and c.container_id:
                    container_id = c.container_id.split("://", 1)[1]
            time.sleep(0.2)
        assert container_id, "the pod on the second node never ran"
        assert status.pod_ip and status.pod_ip.startswith("10.234.1."), status.pod_ip
        assert container_id in containers(SECOND)
        assert container_id not in containers(FIRST)
    finally:
        apis.core.delete_namespaced_pod(name, "default", grace_period_seconds=0)
        api.wait_gone(lambda: not apis.core.list_namespaced_pod(
            "default", label_selector="app=sandbench-multinode-test").items, 60.0, 0.2)


@pytest.fixture(scope="module")
def fanout_run(apis: api.Apis, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_spec({
        "backend": "kubernetes", "runtimes": ["runc"], "concurrency": list(LEVELS),
        # A tenth of a CPU each, so that 8 fit on a 2-CPU node at once: at the default (1 CPU)
        # 6 of 8 would wait for room, and the burst would not be one (scheduler_wait).
        "resources": {"cpus": 0.1, "memory_mib": 64},
        "kubernetes": {"image": IMAGE, "pull_policy": "Never", "kubelet_metrics": False,
                       "nodes": "all"},
        "workloads": {"start": {"rounds": ROUNDS, "warmup": 1}},
    }, tmp_path_factory.mktemp("fanout"))


def test_fanout_runs_every_level_on_both_nodes(fanout_run: Path) -> None:
    run = load_run(fanout_run)
    assert run.meta["status"] == "completed" and run.meta["valid"] is True
    samples = run.samples
    start = samples[(samples["workload"] == "start") & ~samples["warmup"]]
    assert (start["status"] == "ok").all(), start[start["status"] != "ok"][["metric", "reason"]]
    pods = start[start["metric"] == "create_to_workload"]
    # Every pod of a burst found room at once: the concurrency was real.
    assert not any("scheduler_wait" in labels for labels in start["labels"])
    assert not [n for n in run.meta["environment"]["notes"] if "waited for room" in n]
    per_node = Counter((labels["node"], labels["concurrency"]) for labels in pods["labels"])
    assert per_node == {(node, str(level)): ROUNDS * level
                        for node in (FIRST, SECOND) for level in LEVELS}
    environment = run.meta["environment"]
    assert sorted(n["name"] for n in environment["fanout"]["nodes"]) == sorted([FIRST, SECOND])
    # Each pod's phases across clocks use its own node's offset, measured on that node, and
    # measured there again at the end of the run, as the first node's is.
    # The run's own node is the first by name that suits (here the second node, 10.235...);
    # the other one's offset is kept by node. Both straight to the clock pod's IP: the host
    # reaches every node's pods.
    assert pods["clock"].str.contains("offset").all()
    own = environment["node"]["name"]
    (other,) = {FIRST, SECOND} - {own}
    for offset in (environment["clock_offsets"]["runc"],
                   environment["clock_offsets_by_node"][other]["runc"]):
        assert "direct connection to the pod IP" in offset["method"], offset
    assert environment["clock_drift_by_node"][other]["runc"]["end_offset_ns"] is not None
    assert environment["clock_drift"]["runc"]["end_offset_ns"] is not None


def test_report_breaks_the_fanout_down_by_node(fanout_run: Path) -> None:
    report = (fanout_run / "report.html").read_text()
    assert SECOND in report and FIRST in report


@pytest.fixture(scope="module")
def net_run(apis: api.Apis, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_spec({
        "backend": "kubernetes", "runtimes": ["runc"], "rounds": 1, "warmup": 0,
        "timeout_s": 120,
        "kubernetes": {"image": IMAGE, "pull_policy": "Never", "kubelet_metrics": False,
                       "node": FIRST},
        "workloads": {"net": {"params": {"duration_s": 1, "round_trips": 200}}},
    }, tmp_path_factory.mktemp("net"))


def test_net_measures_the_cross_node_path(net_run: Path) -> None:
    run = load_run(net_run)
    assert run.meta["status"] == "completed", run.meta.get("status")
    samples = run.samples
    assert (samples["status"] == "ok").all(), samples[samples["status"] != "ok"][["reason"]]
    assert run.meta["environment"]["net"]["nodes"] == {"same-node": FIRST, "cross-node": SECOND}
    cross = samples[samples["labels"].map(lambda labels: labels["path"] == "cross-node")]
    for metric in ("throughput", "rr_latency_p50"):
        mine = cross[cross["metric"] == metric]
        assert {lab["direction"] for lab in mine["labels"]} == {
            "sandbox_to_peer", "peer_to_sandbox"}, metric
    assert (cross[cross["metric"] == "throughput"]["value"] > 0.1).all()


def test_nothing_is_left_on_either_node(fanout_run: Path, net_run: Path,
                                        apis: api.Apis) -> None:
    for run_dir in (fanout_run, net_run):
        with pytest.raises(ApiException) as gone:
            apis.core.read_namespace(manifests.namespace_name(run_dir.name))
        assert gone.value.status == 404
    left = apis.core.list_pod_for_all_namespaces(label_selector=manifests.RUN_ID).items
    assert left == []
