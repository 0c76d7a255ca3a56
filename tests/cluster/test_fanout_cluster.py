"""The Kubernetes fan-out against the real test cluster (tests/cluster/up.sh): runc at
concurrency 1 and 4 on its one node, selected with --nodes all, every phase from the run's
watch, every sample labelled with its concurrency, arrival, position and node; a burst's pods
labelled as such and deleted at its end; an interrupted burst leaving no pod behind."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
from kubernetes.client.exceptions import ApiException

from conftest import interrupt, run_spec, start_run
from sandbench.backends.kubernetes import KubernetesBackend, api, manifests
from sandbench.model import Clock
from sandbench.results import load_run
from sandbench.spec import KubernetesSettings, Resources
from sandbench.workloads import get

pytestmark = pytest.mark.cluster

IMAGE = os.environ.get("SANDBENCH_WORKLOAD_IMAGE", "")
KUBELET_URL = "https://127.0.0.1:10250/metrics"
NODE = "127.0.0.1"
LEVELS = (1, 4)
ROUNDS = 3
POD_PHASES = {"create_to_scheduled", "scheduled_to_running", "create_to_running",
              "create_to_workload", "create_to_ready"}


def make_spec(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "backend": "kubernetes", "runtimes": ["runc"], "concurrency": list(LEVELS),
        "kubernetes": {"image": IMAGE, "pull_policy": "Never", "kubelet_url": KUBELET_URL,
                       "nodes": "all"},
        "workloads": {"start": {"rounds": ROUNDS, "warmup": 1}},
    }
    spec.update(extra)
    return spec


@pytest.fixture(scope="module")
def apis() -> api.Apis:
    return api.connect()


@pytest.fixture(scope="module")
def fanout_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_spec(make_spec(), tmp_path_factory.mktemp("fanout"))


def measured_start(run_dir: Path) -> Any:
    samples = load_run(run_dir).samples
    return samples[(samples["workload"] == "start") & ~samples["warmup"]]


def test_runc_at_concurrency_1_and_4_every_sample_labelled(fanout_run: Path) -> None:
    run = load_run(fanout_run)
    assert run.meta["status"] == "completed" and run.meta["valid"] is True
    start = measured_start(fanout_run)
    assert (start["status"] == "ok").all(), start[start["status"] != "ok"][["metric", "reason"]]
    pods = start[start["metric"] == "create_to_workload"]
    levels = Counter(labels["concurrency"] for labels in pods["labels"])
    assert levels == {str(level): ROUNDS * level for level in LEVELS}
    for labels in pods["labels"]:
        assert labels["arrival"] == "burst" and labels["node"] == NODE
        assert 0 <= int(labels["position"]) < int(labels["concurrency"])
    assert POD_PHASES <= set(start["metric"])
    # At the default 1 CPU a pod, this 2-CPU node holds 2 of a burst of 4 at once: the others
    # waited for room, and say so (labelled, and noted in run.json), rather than passing for
    # pods started together.
    waited = pods[pods["labels"].map(lambda labels: "scheduler_wait" in labels)]
    assert set(waited["labels"].map(lambda labels: labels["concurrency"])) <= {"4"}
    notes = run.meta["environment"]["notes"]
    assert bool(len(waited)) == any("concurrency 4" in n and "waited for room" in n for n in notes)
    # Across the harness's clock and the pod's: the offset measured on the node.
    assert pods["clock"].str.contains("offset").all()


def test_each_burst_has_its_totals_and_the_harness_cpu(fanout_run: Path) -> None:
    start = measured_start(fanout_run)
    for metric in ("burst_to_last_workload", "burst_throughput", "harness_cpu"):
        mine = start[start["metric"] == metric]
        assert Counter(labels["concurrency"] for labels in mine["labels"]) == {
            str(level): ROUNDS for level in LEVELS}, metric
    # The whole burst takes at least as long as its slowest pod's create_to_workload.
    four = start[start["labels"].map(lambda labels: labels["concurrency"] == "4")]
    slowest = four[four["metric"] == "create_to_workload"]["value"].max()
    total = four[four["metric"] == "burst_to_last_workload"]["value"].max()
    assert total >= slowest * 0.999
    harness = load_run(fanout_run).meta["harness"]
    assert harness["bursts"] == len(LEVELS) * (ROUNDS + 1)


def test_run_metadata_says_how_the_client_was_set_and_which_nodes(fanout_run: Path) -> None:
    environment = load_run(fanout_run).meta["environment"]
    client = environment["cluster"]["client"]
    assert client["rate_limiter"].startswith("none") and client["connection_pool_maxsize"] >= 256
    assert environment["fanout"]["nodes_asked"] == "all"
    assert [n["name"] for n in environment["fanout"]["nodes"]] == [NODE]
    assert "offset_ns" in environment["clock_offsets"]["runc"]


def test_report_draws_the_pod_latency_curve_and_the_namespace_is_gone(
        fanout_run: Path, apis: api.Apis) -> None:
    report = (fanout_run / "report.html").read_text()
    assert "start-concurrency-pod-latency" in report
    with pytest.raises(ApiException) as gone:
        apis.core.read_namespace(manifests.namespace_name(fanout_run.name))
    assert gone.value.status == 404


# -- one burst through the backend itself ----------------------------------------------------

@pytest.fixture
def backend(tmp_path: Path) -> Iterator[KubernetesBackend]:
    settings = KubernetesSettings(image=IMAGE, pull_policy="Never", kubelet_metrics=False,
                                  nodes=NODE)
    # A tenth of a CPU a pod, so this 2-CPU node holds all four at once: none waits for room
    # (which would label it scheduler_wait), and the burst is one.
    created = KubernetesBackend(settings, Resources(cpus=0.1, memory_mib=64),
                                f"fanout-{int(time.time())}", tmp_path)
    created.prepare(["runc"])
    yield created
    created.cleanup()


def test_a_burst_of_four_is_timed_by_the_watch_and_leaves_no_pod(
        backend: KubernetesBackend, apis: api.Apis) -> None:
    start = get("start")
    case = start.cases(start.params({"linger_s": 1}))[0]
    ids = [f"sandbench-burst-00001-{i:03d}" for i in range(4)]
    burst = backend.execute_burst("runc", case, ids, 120.0, [0.0] * 4)
    assert burst.sandbox_ids == ids
    for execution in burst.executions:
        assert execution.error is None and execution.exit_code == 0, execution.error
        assert execution.labels == {"node": NODE}
        marks = {m.name for m in execution.marks if m.clock == Clock.HOST_MONOTONIC}
        assert {"create", "scheduled", "running", "ready"} <= marks
    # The pods are gone and forgotten: nothing left for cleanup, nothing in the namespace.
    assert not backend._live
    assert not apis.core.list_namespaced_pod(
        backend.namespace, label_selector=f"{manifests.BURST}=sandbench-burst-00001").items
    assert burst.wall_s > 0 and all(s is not None and s >= -0.001 for s in burst.lateness_s)


# -- an interrupted burst --------------------------------------------------------------------

def test_interrupted_burst_deletes_every_pod(tmp_path: Path, apis: api.Apis) -> None:
    child = start_run(make_spec(concurrency=[4], workloads={"start": {"rounds": 200, "warmup": 0}}),
                      tmp_path)
    labelled = None
    deadline = time.monotonic() + 180
    while labelled is None and time.monotonic() < deadline:
        found = apis.core.list_pod_for_all_namespaces(
            label_selector=f"{manifests.BURST},{manifests.PART_OF}=sandbench").items
        labelled = found[0] if found else None
        time.sleep(0.05)
    if labelled is None:
        child.kill()
        raise AssertionError("no burst pod appeared in 180 s")
    labels = labelled.metadata.labels
    assert labels[manifests.CONCURRENCY] == "4" and labels[manifests.ROLE] == "measured"
    stderr = interrupt(child)  # while that burst's pods exist
    assert child.returncode == 130, stderr[-2000:]
    (run_dir,) = list((tmp_path / "runs").iterdir())
    assert load_run(run_dir).meta["status"] == "interrupted"
    left = apis.core.list_pod_for_all_namespaces(
        label_selector=f"{manifests.RUN_ID}={labels[manifests.RUN_ID]}").items
    assert left == []
    assert manifests.namespace_name(run_dir.name) not in [
        n.metadata.name for n in apis.core.list_namespace(label_selector=manifests.RUN_ID).items]
