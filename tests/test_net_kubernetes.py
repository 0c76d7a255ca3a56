"""The net workload on a cluster, where it needs no cluster: the peer and measured pods as
rendered (golden files; SANDBENCH_UPDATE_GOLDEN=1 rewrites them), the node a cross-node peer
goes on and why there is none, the labels, the plan's paths and the report's words. What the
pods do is tested on the test cluster (tests/cluster/test_net_cluster.py)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pandas as pd
import pytest
import yaml

from conftest import GOLDEN
from sandbench.backends.kubernetes import manifests, netpeer
from sandbench.formats import RunMeta
from sandbench.model import PEER, SANDBOX, Case
from sandbench.report.network import network_notes
from sandbench.runner import plan
from sandbench.spec import Resources, Spec
from sandbench.workloads import get

UPDATE = os.environ.get("SANDBENCH_UPDATE_GOLDEN") == "1"
RESOURCES = Resources(cpus=1, memory_mib=256)


def net_cases() -> list[Case]:
    workload = get("net")
    return workload.cases(workload.params({"round_trips": 50}))


def measured_pod(case: Case, name: str = "sandbench-0-00001") -> dict[str, Any]:
    """The measured pod as the backend's _pod makes it (manifests.pod), before netpeer."""
    return manifests.pod(name=name, run_id="20260101T000000Z-abcd", runtime_class="gvisor",
                         case=case, image="sandbench/workload:test", pull_policy="Never",
                         node="node-a", resources=RESOURCES)


def peer_pod(case: Case, runtime_class: str | None, path: str = netpeer.SAME_NODE,
             hostname: str = "node-a") -> dict[str, Any]:
    assert case.peer is not None
    argv = netpeer.fill(case.peer.argv, peer=netpeer.OWN_IP, sandbox="10.88.0.7")
    manifest = measured_pod(Case("net", "peer", argv), "sandbench-peer-000")
    port = case.peer.ports[0] if case.peer.ports else None
    return netpeer.as_peer(manifest, runtime_class=runtime_class, hostname=hostname,
                           path=path, port=port, ready_s=120)


def check_golden(name: str, manifest: dict[str, Any]) -> None:
    text = yaml.safe_dump(manifest, sort_keys=False, width=1000)
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; SANDBENCH_UPDATE_GOLDEN=1 rewrites it"


def test_server_peer_pod_golden() -> None:
    send = net_cases()[0]
    pod = peer_pod(send, None)
    check_golden("k8s_net_peer_iperf3.yaml", pod)
    spec, (container,) = pod["spec"], pod["spec"]["containers"]
    # Under the node's default handler: no runtimeClassName at all.
    assert "runtimeClassName" not in spec
    assert pod["metadata"]["labels"][manifests.RUNTIME] == "node-default"
    assert pod["metadata"]["labels"][manifests.ROLE] == "peer"
    # It binds its own pod IP, which the kubelet expands from the downward API.
    assert container["command"] == ["iperf3", "-s", "-B", "$(SANDBENCH_POD_IP)", "-p", "5201"]
    assert {"name": "SANDBENCH_POD_IP",
            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in container["env"]
    # Ready once it listens, and probed only until then.
    assert container["startupProbe"]["tcpSocket"] == {"port": 5201}
    assert "readinessProbe" not in container and "livenessProbe" not in container
    # BestEffort: nothing of the node's allocatable, no quota on the far end of the path.
    assert "resources" not in container


def test_peer_under_the_measured_runtime_class_only_when_asked() -> None:
    rr = net_cases()[2]
    pod = peer_pod(rr, "gvisor")
    assert pod["spec"]["runtimeClassName"] == "gvisor"
    assert pod["metadata"]["labels"][manifests.RUNTIME] == "gvisor"
    assert pod["spec"]["containers"][0]["command"][1:4] == ["rr-serve", "$(SANDBENCH_POD_IP)",
                                                          "5202"]


def test_cross_node_peer_is_pinned_to_the_other_node() -> None:
    pod = peer_pod(net_cases()[0], None, netpeer.CROSS_NODE, "node-b")
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "node-b"}
    assert pod["metadata"]["labels"][netpeer.PATH_LABEL] == "cross-node"


def test_client_peer_gets_the_sandbox_ip_and_no_probe() -> None:
    rr_peer = net_cases()[3]
    pod = peer_pod(rr_peer, None)
    check_golden("k8s_net_peer_rr_client.yaml", pod)
    (container,) = pod["spec"]["containers"]
    assert "10.88.0.7" in container["command"] and SANDBOX not in container["command"]
    assert "startupProbe" not in container
    # Its own IP is not named, so no downward API variable either.
    assert container["env"] == []


def test_measured_pod_names_the_peers_ip_or_its_own() -> None:
    send, _, _, rr_peer = net_cases()
    client = measured_pod(dataclasses.replace(send, argv=netpeer.fill(send.argv, peer="10.88.0.5",
                                                               sandbox=netpeer.OWN_IP)))
    netpeer.own_ip_env(client)
    (container,) = client["spec"]["containers"]
    assert "10.88.0.5" in container["command"] and PEER not in container["command"]
    assert container["env"] == [] and client["spec"]["runtimeClassName"] == "gvisor"
    assert container["resources"]["limits"] == {"cpu": "1000m", "memory": "256Mi"}
    server = measured_pod(dataclasses.replace(rr_peer, argv=netpeer.fill(rr_peer.argv, peer="",
                                                                  sandbox=netpeer.OWN_IP)))
    netpeer.own_ip_env(server)
    check_golden("k8s_net_sandbox_rr_serve.yaml", server)
    (container,) = server["spec"]["containers"]
    assert container["command"][-4:] == ["rr-serve", "$(SANDBENCH_POD_IP)", "5202", "once"]
    assert container["env"][-1]["name"] == "SANDBENCH_POD_IP"


def node(name: str, *, ready: bool = True, cordoned: bool = False,
         taint: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"unschedulable": cordoned}
    if taint:
        spec["taints"] = [{"key": taint, "effect": "NoSchedule"}]
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}},
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_single_node_has_no_cross_node_path() -> None:
    other, why = netpeer.other_node([node("node-a")], "node-a", {})
    assert other is None
    assert why == "not applicable: no node but node-a can take a peer (the cluster has one node)"


def test_cross_node_goes_to_the_first_usable_other_node() -> None:
    nodes = [node("node-d"), node("node-a"), node("node-c", ready=False),
             node("node-b", cordoned=True)]
    other, why = netpeer.other_node(nodes, "node-a", {})
    assert other is not None and other["metadata"]["name"] == "node-d" and why == ""
    # A KWOK fake node is Ready and untainted, but nothing would serve there.
    fake = node("node-0")
    fake["metadata"]["annotations"] = {"kwok.x-k8s.io/node": "fake"}
    other, why = netpeer.other_node([fake, *nodes], "node-a", {})
    assert other is not None and other["metadata"]["name"] == "node-d"
    assert netpeer.other_node([fake, node("node-a")], "node-a", {})[1].endswith(
        "(node-0: a KWOK fake node (nothing runs there))")


def test_no_usable_other_node_says_why_of_each() -> None:
    kata = {"katacontainers.io/kata-runtime": "true"}
    nodes = [node("node-a", labels=kata), node("node-b", ready=False),
             node("node-c", taint="dedicated"), node("node-d", cordoned=True), node("node-e")]
    other, why = netpeer.other_node(nodes, "node-a", kata)
    assert other is None
    assert why == ("not applicable: no node but node-a can take a peer (node-b: not Ready; "
                   "node-c: tainted dedicated:NoSchedule; node-d: cordoned; node-e: lacks "
                   "katacontainers.io/kata-runtime=true, which the RuntimeClass asks for)")
    # Under the node's default handler a peer needs no RuntimeClass's label.
    assert netpeer.other_node(nodes, "node-a", {})[0] == nodes[4]


def test_labels_of_a_cluster_net_sample() -> None:
    assert netpeer.labels("cross-node", "default") == {
        "path": "cross-node", "net_path": "pod-network", "peer_runtime": "node-default"}
    # The same value under every measured runtime, so their rows compare.
    assert netpeer.labels("same-node", "measured")["peer_runtime"] == "same-as-sandbox"


def net_spec(**extra: Any) -> Spec:
    return Spec.model_validate({"backend": "kubernetes", "runtimes": ["runc", "crun"],
                                "rounds": 2, "warmup": 0,
                                "workloads": {"net": {}, "syscall": {}}, **extra})


def test_plan_runs_each_net_case_once_per_path_and_asks_once() -> None:
    asked = []

    def paths() -> tuple[str, ...]:
        asked.append(1)
        return (netpeer.SAME_NODE, netpeer.CROSS_NODE)

    the_plan = plan(net_spec(), {"runc": "", "crun": ""}, False, paths)
    assert asked == [1]
    net = [s for s in the_plan.steps if s.workload.name == "net"]
    # 4 cases x 2 paths x 2 runtimes x 2 rounds.
    assert len(net) == 32
    for step in net:
        assert step.case.peer_path == step.case.labels["path"]
    first_round = [(s.case.name, s.case.peer_path) for s in net if s.round == 1][::2]
    assert first_round == [(c, p) for c in ("send", "receive", "rr", "rr_peer")
                           for p in ("same-node", "cross-node")]
    syscall = [s for s in the_plan.steps if s.workload.name == "syscall"]
    assert all(s.case.peer_path is None and "path" not in s.case.labels or
               s.case.labels["path"] == "probe" for s in syscall)


def test_plan_without_paths_is_as_before() -> None:
    the_plan = plan(net_spec(), {"runc": "", "crun": ""}, False)
    net = [s for s in the_plan.steps if s.workload.name == "net"]
    assert len(net) == 16 and all(s.case.peer_path is None for s in net)
    assert all("path" not in s.case.labels for s in net)


def test_plan_asks_no_paths_without_a_peer() -> None:
    def paths() -> tuple[str, ...]:
        raise AssertionError("asked for paths with no net case")

    spec = net_spec(workloads={"syscall": {}})
    assert len(plan(spec, {"runc": "", "crun": ""}, False, paths).steps) == 4


def meta(net: dict[str, Any] | None) -> RunMeta:
    environment = {"net": net} if net is not None else {}
    return RunMeta.model_validate({"format_version": 1, "run_id": "20260101T000000Z-abcd",
                                   "backend": "kubernetes", "status": "completed",
                                   "started_at": "2026-01-01T00:00:00+00:00",
                                   "environment": environment})


def net_samples(paths: list[str]) -> pd.DataFrame:
    labels = [{"direction": "sandbox_to_peer", **netpeer.labels(p, "default")} for p in paths]
    return pd.DataFrame({"workload": ["net"] * len(paths), "runtime": ["runc"] * len(paths),
                         "labels": labels})


class Names:
    order = ["runc"]

    def name(self, runtime: str) -> str:
        return runtime


@pytest.mark.parametrize("single", [True, False])
def test_report_says_where_the_peer_ran_and_why_cross_node_is_missing(single: bool) -> None:
    why = "not applicable: no node but node-a can take a peer (the cluster has one node)"
    facts = {"peer_runtime": "node-default", "net_path": "pod-network",
             "nodes": {"same-node": "node-a", "cross-node": why if single else "node-b"}}
    paths = ["same-node"] if single else ["same-node", "cross-node"]
    notes = " ".join(network_notes(net_samples(paths), meta(facts), Names()))
    assert "the cluster's pod network" in notes
    assert "the node's default handler (no runtimeClassName" in notes
    assert "same-node: the peer pod on the measured pod's node" in notes
    if single:
        assert f"cross-node: {why}; no cross-node sample was taken." in notes
    else:
        assert "cross-node: the peer pod on another node" in notes
        assert "no cross-node sample" not in notes
