"""The net workload on the real test cluster (tests/cluster/up.sh): runc and crun pods against
a peer pod on the same node, over the pod network (a bridge with no default route: nothing
leaves the machine), both directions; the peer made once and under the node's default
handler unless asked; cross-node not applicable on this single-node cluster (no sample, said
in run.json and the report); every pod, peer included, deleted on success, on a failure and
on Ctrl-C."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import interrupt, run_spec, start_run
from sandbench.backends.kubernetes import KubernetesBackend, api, manifests, netpeer
from sandbench.results import load_run
from sandbench.spec import KubernetesSettings, Resources
from sandbench.workloads import get

pytestmark = pytest.mark.cluster

IMAGE = os.environ.get("SANDBENCH_WORKLOAD_IMAGE", "")
#: Small enough for CI: a second of iperf3 each way, 200 round trips.
PARAMS = {"duration_s": 1, "round_trips": 200}


def make_spec(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "backend": "kubernetes", "runtimes": ["runc", "crun"], "baseline": "runc",
        "rounds": 2, "warmup": 0, "timeout_s": 120,
        "kubernetes": {"image": IMAGE, "pull_policy": "Never", "kubelet_metrics": False},
        "workloads": {"net": {"params": PARAMS}},
    }
    spec.update(extra)
    return spec


@pytest.fixture(scope="module")
def apis() -> api.Apis:
    return api.connect()


def run_namespaces(apis: api.Apis) -> list[str]:
    items = apis.core.list_namespace(label_selector=manifests.RUN_ID).items
    return [n.metadata.name for n in items if n.metadata is not None]


@pytest.fixture(scope="module")
def net_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_spec(make_spec(), tmp_path_factory.mktemp("net"))


def test_runc_and_crun_same_node_both_directions(net_run: Path) -> None:
    run = load_run(net_run)
    assert run.meta["status"] == "completed" and run.meta["valid"] is True
    samples = run.samples
    assert (samples["status"] == "ok").all(), samples[samples["status"] != "ok"][["reason"]]
    for runtime in ("runc", "crun"):
        mine = samples[samples["runtime"] == runtime]
        for metric in ("throughput", "rr_latency_p50", "rr_latency_p99"):
            directions = {lab["direction"] for lab in mine[mine["metric"] == metric]["labels"]}
            assert directions == {"sandbox_to_peer", "peer_to_sandbox"}, (runtime, metric)
    for labels in samples["labels"]:
        assert labels["path"] == "same-node" and labels["net_path"] == "pod-network"
        assert labels["peer_runtime"] == "node-default"
    # Pod to pod on one node moves far more than a gigabit, and a round trip takes well
    # under a millisecond: a figure outside that is not this path.
    throughput = samples[samples["metric"] == "throughput"]["value"]
    assert (throughput > 1).all(), throughput
    assert (samples[samples["metric"] == "rr_latency_p50"]["value"] < 1000).all()


def test_single_node_cluster_has_no_cross_node_sample(net_run: Path) -> None:
    run = load_run(net_run)
    assert "cross-node" not in {lab.get("path") for lab in run.samples["labels"]}
    net = run.meta["environment"]["net"]
    assert net["nodes"]["same-node"] == "127.0.0.1"
    assert net["nodes"]["cross-node"].startswith("not applicable: no node but 127.0.0.1")
    # One server pod per command (iperf3, the echo), made once for both runtimes.
    assert len(net["peer_pods"]) == 2, net
    report = (net_run / "report.html").read_text()
    assert "no cross-node sample was taken" in report


def test_every_pod_and_the_namespace_are_gone(net_run: Path, apis: api.Apis) -> None:
    assert manifests.namespace_name(net_run.name) not in run_namespaces(apis)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[KubernetesBackend]:
    yield from _backend(tmp_path, "default")


@pytest.fixture
def measured_backend(tmp_path: Path) -> Iterator[KubernetesBackend]:
    yield from _backend(tmp_path, "measured")


def _backend(tmp_path: Path, peer_runtime: str) -> Iterator[KubernetesBackend]:
    settings = KubernetesSettings(image=IMAGE, pull_policy="Never", schedule_timeout_s=5,
                                  kubelet_metrics=False, peer_runtime=peer_runtime)
    created = KubernetesBackend(settings, Resources(), f"net-{int(time.time())}", tmp_path)
    created.prepare(["runc", "crun"])
    yield created
    created.cleanup()


def cases() -> dict[str, Any]:
    net = get("net")
    return {case.name: case for case in net.cases(net.params(PARAMS))}


def pods(backend: KubernetesBackend, selector: str = manifests.RUN_ID) -> list[Any]:
    return list(backend.apis.core.list_namespaced_pod(backend.namespace,
                                                      label_selector=selector).items)


def test_one_peer_under_the_default_handler_for_every_runtime(
        backend: KubernetesBackend) -> None:
    assert backend.peer_paths(["runc", "crun"]) == (netpeer.SAME_NODE,)
    send = cases()["send"]
    for number, runtime in enumerate(("runc", "crun", "runc")):
        execution = backend.execute(runtime, send, f"net-send-{number}", 120.0)
        assert execution.error is None and execution.exit_code == 0, execution.raw()[-2000:]
        assert '"probe":"iperf3"' in execution.stdout
    (peer,) = pods(backend, f"{manifests.ROLE}=peer")
    assert peer.spec.runtime_class_name is None
    resources = peer.spec.containers[0].resources
    assert not (resources and (resources.limits or resources.requests))
    # The measured pods are gone with their case; the peer stays until cleanup.
    assert [p.metadata.name for p in pods(backend)] == [peer.metadata.name]


def test_rr_peer_client_pod_reads_the_sandboxs_echo_and_is_deleted(
        backend: KubernetesBackend) -> None:
    backend.peer_paths(["runc", "crun"])
    execution = backend.execute("crun", cases()["rr_peer"], "net-rr-peer", 120.0)
    assert execution.error is None and execution.exit_code == 0, execution.raw()[-2000:]
    assert '"probe":"rr-serve"' in execution.stdout
    assert '"probe":"rr"' in execution.peer_stdout
    assert execution.labels["path"] == "same-node"
    assert pods(backend) == []


def test_peer_under_the_measured_runtime_class_when_asked(
        measured_backend: KubernetesBackend) -> None:
    measured_backend.peer_paths(["runc", "crun"])
    execution = measured_backend.execute("crun", cases()["rr"], "net-rr", 120.0)
    assert execution.error is None, execution.raw()[-2000:]
    assert execution.labels["peer_runtime"] == "same-as-sandbox"
    (peer,) = pods(measured_backend, f"{manifests.ROLE}=peer")
    assert peer.spec.runtime_class_name == "crun"


def test_a_peer_the_cluster_refuses_fails_the_case_and_leaves_no_pod(
        measured_backend: KubernetesBackend) -> None:
    # kata-clh: a registry runtime whose RuntimeClass up.sh does not apply.
    execution = measured_backend.execute("kata-clh", cases()["send"], "net-refused", 60.0)
    assert execution.error is not None and 'RuntimeClass "kata-clh" not found' in execution.error
    assert pods(measured_backend) == []


def test_interrupt_deletes_the_peer_with_the_namespace(tmp_path: Path, apis: api.Apis) -> None:
    child = start_run(make_spec(rounds=50), tmp_path)
    deadline = time.monotonic() + 300
    run_dir: Path | None = None
    while time.monotonic() < deadline and run_dir is None:
        found = list((tmp_path / "runs").glob("*/samples.jsonl"))
        if found and sum(1 for _ in open(found[0])) >= 5:
            run_dir = found[0].parent
        time.sleep(0.2)
    if run_dir is None:
        child.kill()
        raise AssertionError("the run produced no samples")
    namespace = manifests.namespace_name(run_dir.name)
    peers = apis.core.list_namespaced_pod(namespace, label_selector=f"{manifests.ROLE}=peer")
    assert peers.items, "no peer pod while the run measured net"
    stderr = interrupt(child)
    assert child.returncode == 130, stderr[-2000:]
    assert load_run(run_dir).meta["status"] == "interrupted"
    assert namespace not in run_namespaces(apis)
