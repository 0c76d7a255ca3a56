"""KWOK fake nodes without a cluster: which nodes are fake, what a fan-out does with them, and
what a pod there is recorded as (its API-side phase measured, every runtime-side one skipped
with why, never a number or a failure). The 1,000-pod burst itself runs on the test cluster
with kwok up (tests/cluster/test_kwok_cluster.py)."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest

from sandbench import runner
from sandbench.backends.burst import Schedule
from sandbench.backends.kubernetes import fanout
from sandbench.backends.kubernetes.lifecycle import PLANNED, PodRun
from sandbench.backends.kubernetes.nodes import NOTHING_RUNS, fan_out, is_fake
from sandbench.backends.kubernetes.watcher import Seen
from sandbench.model import Burst, Clock, ClockOffset, Execution, Status
from sandbench.spec.nodes import parse_nodes
from sandbench.workloads import get

MS = 1_000_000
OFFSET = ClockOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, 0, 1000, "test")


def node(name: str, fake: bool = False, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Ready, untainted node as the API server lists it; ``fake`` as kwok-up.sh makes one."""
    metadata: dict[str, Any] = {"name": name,
                                "labels": {"kubernetes.io/hostname": name, **(labels or {})}}
    if fake:
        metadata["annotations"] = {"kwok.x-k8s.io/node": "fake"}
        metadata["labels"].update({"sandbench.io/kwok": "fake", "type": "kwok"})
    return {"metadata": metadata, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def names(nodes: list[dict[str, Any]]) -> list[str]:
    return [n["metadata"]["name"] for n in nodes]


# -- which nodes are fake --------------------------------------------------------------------

def test_a_fake_node_is_known_by_kwoks_annotation_alone() -> None:
    assert is_fake(node("kwok-node-0", fake=True))
    # A label is anyone's to put on a real node for scheduling; it proves nothing.
    assert not is_fake(node("real", labels={"type": "kwok"}))
    assert not is_fake(node("real"))
    other = node("x")
    other["metadata"]["annotations"] = {"kwok.x-k8s.io/node": "real"}
    assert not is_fake(other)


def test_a_selector_keeps_fake_nodes_but_all_leaves_them_out_in_one_note() -> None:
    cluster = [node("real"), *(node(f"kwok-node-{i}", fake=True) for i in range(3))]
    kept, notes = fan_out(cluster, parse_nodes("sandbench.io/kwok=fake"), {})
    assert names(kept) == ["kwok-node-0", "kwok-node-1", "kwok-node-2", "real"] and not notes
    kept, notes = fan_out(cluster, parse_nodes("all"), {})
    assert names(kept) == ["real"]
    assert notes == ["3 KWOK fake node(s) left out of the fan-out (kwok-node-0, ...): nothing "
                     "runs there; name them or select them by label to time their pods' "
                     "API-side phases"]
    kept, notes = fan_out(cluster, parse_nodes("kwok-node-1,real"), {})
    assert names(kept) == ["kwok-node-1", "real"] and not notes


# -- a pod on a fake node --------------------------------------------------------------------

def test_a_fake_nodes_pod_is_timed_for_its_api_side_only() -> None:
    fake = fanout.pod_execution(node("kwok-node-0", fake=True), OFFSET)
    assert fake.planned == ("create", "scheduled") and not fake.offsets
    assert fake.not_applicable == {"running": NOTHING_RUNS, "ready": NOTHING_RUNS,
                                   "workload": NOTHING_RUNS}
    assert fake.labels == {"node": "kwok-node-0"}
    real = fanout.pod_execution(node("real"), OFFSET)
    assert real.planned == PLANNED and real.offsets == [OFFSET] and not real.not_applicable


def pod_event(kind: str, node_name: str | None, phase: str = "Pending") -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"name": "p"},
                                     "spec": {"nodeName": node_name} if node_name else {},
                                     "status": {"phase": phase}}}


class Core:
    """The few API calls a burst's pod makes, answered as a cluster with kwok would; reading
    a log or the pod's status (which would need a kubelet) fails the test."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create_namespaced_pod(self, namespace: str, body: dict[str, Any],
                              **_: Any) -> Any:
        self.created.append(body["metadata"]["name"])
        return type("Answer", (), {"release_conn": lambda self: None})()

    def read_namespaced_pod_log(self, *_: Any, **__: Any) -> str:
        raise AssertionError("a fake node's pod has no log to read")

    def read_namespaced_pod(self, *_: Any, **__: Any) -> Any:
        raise AssertionError("a fake node's pod's status is not read after it is scheduled")


def test_a_fake_pods_thread_stops_once_scheduled_and_reads_nothing() -> None:
    """The watch says ADDED, then bound, then kwok's Running: the thread is done at the bind,
    without waiting for an end (there is none) or reading a log (there is no kubelet)."""
    core = Core()
    events: queue.Queue[Seen] = queue.Queue()
    for ms, event in ((10, pod_event("ADDED", None)),
                      (25, pod_event("MODIFIED", "kwok-node-0")),
                      (30, pod_event("MODIFIED", "kwok-node-0", "Running"))):
        events.put(Seen("pod", event["type"], ms * MS, event["object"]))
    run = PodRun(core, None, "ns", {"metadata": {"name": "p"}}, 30.0)
    pod = fanout._Pod(run, fanout.pod_execution(node("kwok-node-0", fake=True), OFFSET), 0.0,
                      fake=True)
    schedule = Schedule([0.0])
    fanout._one(pod, events, 0, schedule, threading.Event(), 1024, 10.0)
    assert core.created == ["p"] and pod.execution.error is None
    marks = {(m.name, m.clock): m.ns for m in pod.execution.marks}
    assert marks[("create", Clock.HOST_MONOTONIC)] == 10 * MS
    assert marks[("scheduled", Clock.HOST_MONOTONIC)] == 25 * MS
    assert ("running", Clock.HOST_MONOTONIC) not in marks
    assert events.qsize() == 1  # kwok's Running was never waited for


def test_a_fake_pod_that_never_binds_times_out_without_reading_a_log() -> None:
    core = Core()
    events: queue.Queue[Seen] = queue.Queue()
    events.put(Seen("pod", "ADDED", 10 * MS, pod_event("ADDED", None)["object"]))
    run = PodRun(core, None, "ns", {"metadata": {"name": "p"}}, 30.0)
    pod = fanout._Pod(run, fanout.pod_execution(node("kwok-node-0", fake=True), OFFSET), 0.0,
                      fake=True)
    fanout._one(pod, events, 0, Schedule([0.0]), threading.Event(), 1024, 0.2)
    assert pod.execution.error is not None and "timed out in phase Pending" in pod.execution.error
    assert pod.execution.stdout == ""


# -- what is recorded ------------------------------------------------------------------------

def step() -> runner.Step:
    start = get("start")
    return runner.Step(start, start.cases(start.params({"linger_s": 2}))[0], "runc", 1, False, 10)


def scheduled_fake_pod(create_ms: float, scheduled_ms: float) -> Execution:
    execution = fanout.pod_execution(node("kwok-node-7", fake=True), OFFSET)
    execution.mark_monotonic("create", int(create_ms * MS))
    execution.mark("scheduled", Clock.HOST_MONOTONIC, int(scheduled_ms * MS))
    return execution


def test_a_scheduled_fake_pod_records_its_bind_and_skips_the_rest() -> None:
    values, reason = runner._values(step(), scheduled_fake_pod(1000.0, 1012.5))
    assert reason is None
    got = {v.metric.name: v for v in values}
    assert set(got) == {"create_to_scheduled", "scheduled_to_running", "create_to_running",
                        "create_to_workload", "create_to_ready"}
    assert got["create_to_scheduled"].status == Status.OK
    assert got["create_to_scheduled"].value == pytest.approx(12.5)
    skipped = [v for name, v in got.items() if name != "create_to_scheduled"]
    assert all(v.status == Status.SKIPPED and v.value is None and v.reason == NOTHING_RUNS
               for v in skipped)


def test_a_fake_pod_that_failed_fails_its_api_side_only() -> None:
    execution = fanout.pod_execution(node("kwok-node-7", fake=True), OFFSET)
    execution.error = "timed out in phase Pending"
    values, reason = runner._values(step(), execution)
    assert reason == "timed out in phase Pending"
    assert [(v.metric.name, v.status) for v in values] == [("create_to_scheduled",
                                                           Status.FAILED)]


def test_a_burst_with_fake_pods_skips_its_workload_totals() -> None:
    executions = [scheduled_fake_pod(1000.0, 1010.0), scheduled_fake_pod(1001.0, 1020.0)]
    values = [runner._values(step(), e)[0] for e in executions]
    burst = Burst(executions, harness_cpu_s=0.5, wall_s=2.0, lateness_s=[0.001, 0.002])
    got = {v.metric.name: v for v in get("start").burst(burst, values)}
    for name in ("burst_to_last_workload", "burst_throughput"):
        assert got[name].status == Status.SKIPPED and got[name].value is None
        assert got[name].reason == f"2 of 2 sandboxes ran no workload: {NOTHING_RUNS}"
    # What the harness spent is real whatever the nodes are.
    assert got["harness_cpu"].value == pytest.approx(25.0)
    assert got["harness_lateness"].value == pytest.approx(2.0)


def test_a_real_pod_is_recorded_as_before() -> None:
    """No not_applicable marks: the probe's output is parsed and a missing one fails."""
    execution = fanout.pod_execution(node("real"), OFFSET)
    execution.mark_monotonic("create", 1000 * MS)
    values, reason = runner._values(step(), execution)
    assert reason is not None and reason.startswith("unparseable output")
    assert {v.status for v in values} == {Status.FAILED}
    assert {v.metric.name for v in values} >= {"create_to_workload", "create_to_scheduled"}

