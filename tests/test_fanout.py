"""The Kubernetes fan-out without a cluster: how --nodes is read and which nodes it keeps, the
spec's checks, a burst's pod names and labels, its marks from a recorded watch, and its totals
on hand-computed numbers. The fan-out itself runs on the test cluster
(tests/cluster/test_fanout_cluster.py)."""

from __future__ import annotations

import json
import queue
import threading
from typing import Any

import pandas as pd
import pytest

from conftest import GOLDEN, sandbench
from sandbench import runner
from sandbench.analysis import concurrency, stats
from sandbench.backends.base import BackendError
from sandbench.backends.burst import Schedule, arrival_order
from sandbench.backends.kubernetes import KubernetesBackend, fanout, manifests
from sandbench.backends.kubernetes.lifecycle import PLANNED, PodProgress, PodRun, observe_pod
from sandbench.backends.kubernetes.nodes import fan_out
from sandbench.backends.kubernetes.watcher import Seen
from sandbench.model import Burst, Case, Clock, Execution, Status, Value, comparable_labels
from sandbench.report.concurrency import concurrency_charts
from sandbench.report.labels import Runtimes
from sandbench.spec import KubernetesSettings, Resources, SpecError, parse_spec
from sandbench.spec.nodes import NodeChoice, parse_nodes
from sandbench.workloads import get
from sandbench.workloads.start import PHASES

MS = 1_000_000
KUBE = {"backend": "kubernetes", "runtimes": ["runc"], "workloads": {"start": {}},
        "rounds": 2, "warmup": 0}


# -- --nodes as written ----------------------------------------------------------------------

@pytest.mark.parametrize("text, choice", [
    ("all", NodeChoice("all")),
    (" all ", NodeChoice("all")),
    ("node-a", NodeChoice("names", names=("node-a",))),
    ("node-a, node-b", NodeChoice("names", names=("node-a", "node-b"))),
    ("role=bench", NodeChoice("selector", selector="role=bench")),
    ("role!=gpu,zone=a", NodeChoice("selector", selector="role!=gpu,zone=a")),
    ("zone in (a,b)", NodeChoice("selector", selector="zone in (a,b)")),
    ("!gpu", NodeChoice("selector", selector="!gpu")),
    ("selector:sandbench.io/bench", NodeChoice("selector", selector="sandbench.io/bench")),
])
def test_nodes_are_names_a_selector_or_all(text: str, choice: NodeChoice) -> None:
    assert parse_nodes(text) == choice


@pytest.mark.parametrize("text, message", [
    ("", "names no node"),
    ("a,,b", r"names no node \(or an empty one\)"),
    ("a,b,a", "node 'a' is listed twice"),
    ("selector:", "selector: names no label"),
])
def test_a_bad_nodes_value_says_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_nodes(text)
    assert "a comma list of node names" in str(raised.value) or "twice" in message


# -- which nodes a fan-out keeps -------------------------------------------------------------

def node(name: str, ready: bool = True, cordoned: bool = False,
         taints: list[dict[str, str]] | None = None,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A node as the API server lists it, with only the fields the choice reads."""
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                   **(labels or {})}},
            "spec": {"unschedulable": cordoned, "taints": taints or []},
            "status": {"conditions": [{"type": "Ready",
                                       "status": "True" if ready else "False"}]}}


CLUSTER = [node("b"), node("a"), node("down", ready=False), node("cordoned", cordoned=True),
           node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane",
                               "effect": "NoSchedule"}]),
           node("soft", taints=[{"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}])]


def names(nodes: list[dict[str, Any]]) -> list[str]:
    return [n["metadata"]["name"] for n in nodes]


def test_all_keeps_the_usable_nodes_and_says_why_each_other_is_left_out() -> None:
    kept, notes = fan_out(CLUSTER, parse_nodes("all"), {})
    # PreferNoSchedule only prefers: a pod without a toleration still runs there.
    assert names(kept) == ["a", "b", "soft"]
    assert notes == [
        "node cordoned left out of the fan-out: cordoned (unschedulable)",
        "node cp left out of the fan-out: tainted "
        "node-role.kubernetes.io/control-plane:NoSchedule",
        "node down left out of the fan-out: not Ready",
    ]


def test_a_runtimeclass_scheduling_label_narrows_all() -> None:
    cluster = [node("a"), node("kata", labels={"katacontainers.io/kata-runtime": "true"})]
    kept, notes = fan_out(cluster, parse_nodes("all"),
                          {"katacontainers.io/kata-runtime": "true"})
    assert names(kept) == ["kata"]
    assert notes == ["node a left out of the fan-out: lacks katacontainers.io/kata-runtime=true, "
                     "which a RuntimeClass's scheduling asks for"]


def test_named_nodes_keep_their_order_and_must_all_be_usable() -> None:
    kept, notes = fan_out(CLUSTER, parse_nodes("b,a"), {})
    assert names(kept) == ["b", "a"] and notes == []
    with pytest.raises(BackendError, match=r"nodes: 'x' is not in the cluster; nodes: a, b, "):
        fan_out(CLUSTER, parse_nodes("a,x"), {})
    with pytest.raises(BackendError, match="nodes: 'down' cannot run the pods: not Ready"):
        fan_out(CLUSTER, parse_nodes("a,down"), {})


def test_no_usable_node_is_an_error_naming_each() -> None:
    with pytest.raises(BackendError, match=r"nodes selector 'role=x': no usable node among 1 "
                                           r"\(node down left out .*not Ready\)"):
        fan_out([node("down", ready=False)], parse_nodes("role=x"), {})
    with pytest.raises(BackendError, match="no usable node among 0 .the cluster has none"):
        fan_out([], parse_nodes("all"), {})


# -- the spec --------------------------------------------------------------------------------

def test_nodes_make_concurrency_an_axis_even_at_one() -> None:
    spec = parse_spec({**KUBE, "kubernetes": {"nodes": "all"}}, "test")
    assert spec.concurrency == [1] and spec.concurrency_axis
    the_plan = runner.plan(spec, {"runc": ""}, concurrent=True)
    assert {step.concurrency for step in the_plan.steps} == {1}
    assert "burst_throughput" in {m.name for m in the_plan.metrics}
    # Without nodes, [1] is no axis: one pod at a time, labelled as before.
    assert not parse_spec(KUBE, "test").concurrency_axis


@pytest.mark.parametrize("data, message", [
    ({"backend": "local", "kubernetes": {"nodes": "all"}},
     "kubernetes.nodes 'all' fans pods out over a cluster's nodes; backend 'local' has none"),
    ({"kubernetes": {"nodes": "a", "node": "b"}},
     "node 'b' pins every pod to one node and nodes 'a' fans bursts out"),
    ({"kubernetes": {"nodes": "a,a"}}, "node 'a' is listed twice"),
    ({"concurrency": [1, 4], "kubernetes": {"pull": "cold", "pull_policy": "Always",
                                            "cri_endpoint": "unix:///x"}},
     "kubernetes.pull 'cold' puts the image in its state on one node before each pod"),
])
def test_a_fan_out_that_cannot_be_is_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_spec({**KUBE, **data}, "test")


def test_nodes_on_the_local_backend_exit_2_and_run_nothing(tmp_path: Any) -> None:
    result = sandbench("run", "--workloads", "start", "--runtimes", "runc", "--nodes", "all",
                       "--out", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    assert "kubernetes.nodes 'all' fans pods out" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# -- a burst's pods --------------------------------------------------------------------------

def test_pod_names_one_node_keeps_the_ids_more_number_them() -> None:
    ids = ["sandbench-x-00003-000", "sandbench-x-00003-001"]
    assert fanout.pod_names(ids, ["n1"]) == [(ids[0], "n1"), (ids[1], "n1")]
    assert fanout.pod_names(ids, ["node.a", "node.b"]) == [
        ("sandbench-x-00003-000-0", "node.a"), ("sandbench-x-00003-000-1", "node.b"),
        ("sandbench-x-00003-001-0", "node.a"), ("sandbench-x-00003-001-1", "node.b")]
    assert fanout.burst_id(ids) == "sandbench-x-00003"


def test_a_burst_pod_is_labelled_with_its_burst_and_cannot_lose_the_runs_labels() -> None:
    case = get("start").cases(get("start").params({}))[0]
    pod = manifests.pod(name="p", run_id="r1", runtime_class="runc", case=case, image="i",
                        pull_policy="Never", node="n1", resources=Resources(),
                        labels={manifests.BURST: "sandbench-x-00003",
                                manifests.CONCURRENCY: "4", manifests.RUN_ID: "other"})
    labels = pod["metadata"]["labels"]
    assert labels[manifests.BURST] == "sandbench-x-00003"
    assert labels[manifests.CONCURRENCY] == "4"
    assert labels[manifests.RUN_ID] == "r1" and labels[manifests.ROLE] == "measured"
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "n1"}


def recorded() -> list[dict[str, Any]]:
    lines = (GOLDEN / "pod_watch_runc.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_burst_pods_create_is_its_first_event_on_the_watch() -> None:
    """A recorded runc pod's watch, received 10 ms apart, followed as a burst's pod is: the
    create mark is the ADDED event's receive time, not when any thread got the answer."""
    events: queue.Queue[Seen] = queue.Queue()
    for index, event in enumerate(e for e in recorded() if e["type"] != "DELETED"):
        events.put(Seen("pod", event["type"], (index + 1) * 10 * MS, event["object"]))
    execution = Execution(planned=PLANNED)
    run = PodRun(None, None, "ns", {"metadata": {"name": "golden-runc"}}, 30.0)
    progress = PodProgress(execution)
    run.follow(events, progress, deadline=float("inf"), until_ready=False,
               observe=fanout._first_event)
    marks = {(m.name, m.clock): m.ns for m in execution.marks}
    assert marks[("create", Clock.HOST_MONOTONIC)] == 10 * MS
    assert marks[("scheduled", Clock.HOST_MONOTONIC)] == 20 * MS
    assert marks[("running", Clock.HOST_MONOTONIC)] == 40 * MS
    # On the wall clock too, to meet the probe's stamp (create_to_workload).
    assert ("create", Clock.HOST_REALTIME) in marks
    assert progress.finished


def test_an_unschedulable_pod_is_read_from_its_status_not_only_events() -> None:
    progress = PodProgress(Execution(planned=PLANNED))
    pod = {"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/2 nodes are available: 2 Insufficient cpu."}]}}
    observe_pod(progress, Seen("pod", "MODIFIED", 5 * MS, pod))
    assert progress.unschedulable == "Unschedulable: 0/2 nodes are available: 2 Insufficient cpu."
    assert progress.unschedulable_since is not None and "scheduled" not in progress.seen


# -- a burst's totals on a cluster -----------------------------------------------------------

def pod_execution(create_ms: float) -> Execution:
    execution = Execution(planned=PLANNED, labels={"node": "n1"})
    execution.mark("create", Clock.HOST_MONOTONIC, int(create_ms * MS))
    return execution


def test_position_is_the_order_the_watch_saw_the_pods_created() -> None:
    executions = [pod_execution(7), pod_execution(2), Execution(error="not started")]
    assert arrival_order(executions) == [1, 0, 2]


def test_burst_totals_from_pod_creates_and_create_to_workload() -> None:
    """Two pods created 0 and 5 ms into the burst, at their workload 100 and 120 ms later:
    the burst took max(0 + 100, 5 + 120) = 125 ms, 2 / 0.125 s = 16 pods a second."""
    to_workload = next(p.metric for p in PHASES if p.metric.name == "create_to_workload")
    executions = [pod_execution(1000), pod_execution(1005)]
    values = [[Value(to_workload, 100.0)], [Value(to_workload, 120.0)]]
    burst = Burst(executions, harness_cpu_s=0.5, wall_s=2.0, lateness_s=[0.001, 0.003])
    got = {v.metric.name: v for v in get("start").burst(burst, values)}
    assert got["burst_to_last_workload"].value == pytest.approx(125.0)
    assert got["burst_throughput"].value == pytest.approx(16.0)
    assert got["harness_cpu"].value == pytest.approx(25.0)
    assert got["harness_lateness"].value == pytest.approx(3.0)


def test_a_pod_that_never_ran_fails_the_burst_totals_saying_why() -> None:
    to_workload = next(p.metric for p in PHASES if p.metric.name == "create_to_workload")
    executions = [pod_execution(0), Execution(error="the API refused the pod: 403 Forbidden")]
    values = [[Value(to_workload, 100.0)],
              [Value(to_workload, None, status=Status.FAILED, reason="the API refused the pod")]]
    got = get("start").burst(Burst(executions, 0.1, 1.0, [0.0, None]), values)
    totals = [v for v in got if v.metric.name in ("burst_to_last_workload", "burst_throughput")]
    assert {v.status for v in totals} == {Status.FAILED}
    # The pod has no create mark, so no phase: the execution's own error is the reason.
    assert totals[0].reason == ("sandbox 2 of 2 never ran its workload: the API refused the "
                                "pod: 403 Forbidden")


def test_a_kubevirt_runtime_in_a_burst_fails_its_samples_saying_why() -> None:
    backend = KubernetesBackend(KubernetesSettings(), Resources(), "r", GOLDEN)
    backend._fanout = [node("a"), node("b")]
    vm = next(iter(backend.vm_runtimes), None)
    if vm is None:
        pytest.skip("no kubevirt runtime declared")
    case = Case("start", "start", ["probe", "start"])
    burst = backend.execute_burst(vm, case, ["s-1-000", "s-1-001"], 10.0, [0.0, 0.0])
    assert burst.sandbox_ids == ["s-1-000-0", "s-1-000-1", "s-1-001-0", "s-1-001-1"]
    assert [e.labels["node"] for e in burst.executions] == ["a", "b", "a", "b"]
    assert all(e.error == "not run: a kubevirt runtime starts one VM at a time"
               for e in burst.executions)


def test_pods_on_two_nodes_pool_into_one_curve_of_create_to_workload() -> None:
    """Per-pod samples of two nodes at each level: one curve point per level, over both
    nodes' pods (the node label splits the tables' rows, not the curve)."""
    rows = [{"runtime": "runc", "workload": "start", "metric": "create_to_workload",
             "unit": "ms", "status": "ok", "value": base + i, "warmup": False,
             "labels": {"concurrency": str(level), "arrival": "burst", "node": node_name,
                        "position": str(i)}}
            for level, base in ((1, 100.0), (4, 200.0)) for node_name in ("a", "b")
            for i in range(level * 3)]
    curves = concurrency.curves(stats.measured(pd.DataFrame(rows)))
    p50 = curves[curves["statistic"] == "p50"].set_index("concurrency")
    assert p50.loc[1, "n"] == 6 and p50.loc[4, "n"] == 24
    assert p50.loc[4, "value"] == pytest.approx(205.5)
    names = Runtimes(["runc"], {"runc": "runc"}, {"runc": "#000000"}, frozenset())
    assert [c.name for c in concurrency_charts(curves, names)] == [
        "start-concurrency-pod-latency"]


def test_a_pod_that_waited_for_room_is_labelled_and_the_burst_noted() -> None:
    """A burst's pod the scheduler first found no room for (each pod requests a CPU; a 2-CPU
    node holds 2) did not start with the others: labelled with the scheduler's words, kept in
    its row, and the burst noted in run.json, instead of passing for concurrency it was not."""
    class Core:
        def create_namespaced_pod(self, namespace: str, body: dict[str, Any], **_: Any) -> Any:
            return type("Answer", (), {"release_conn": lambda self: None})()

        def read_namespaced_pod_log(self, *_: Any, **__: Any) -> str:
            return ""

    core = Core()
    events: queue.Queue[Seen] = queue.Queue()
    pending = {"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending",
               "conditions": [{"type": "PodScheduled", "status": "False",
                               "reason": "Unschedulable",
                               "message": "0/2 nodes are available: 2 Insufficient cpu."}]}}
    events.put(Seen("pod", "ADDED", 1 * MS, {"metadata": {"name": "p"}, "spec": {},
                                              "status": {"phase": "Pending"}}))
    events.put(Seen("pod", "MODIFIED", 2 * MS, pending))
    run = PodRun(core, None, "ns", {"metadata": {"name": "p"}}, 30.0)
    pod = fanout._Pod(run, Execution(planned=PLANNED, labels={"node": "n1"}), 0.0)
    fanout._one(pod, events, 0, Schedule([0.0]), threading.Event(), 1024, 0.2)
    wait = "Unschedulable: 0/2 nodes are available: 2 Insufficient cpu."
    assert pod.execution.labels[fanout.SCHEDULER_WAIT] == wait
    assert comparable_labels(pod.execution.labels) == {"node": "n1"}
    alone = Execution(labels={"node": "n1"})
    note = fanout.waited(Burst([pod.execution, alone], 0.0, 0.0, [None, None], ["p", "q"]))
    assert note is not None and note.startswith(f"1 of 2 pods of a burst of 2 waited for room "
                                                f"on their node ({wait})")
    assert fanout.waited(Burst([alone], 0.0, 0.0, [None], ["q"])) is None
