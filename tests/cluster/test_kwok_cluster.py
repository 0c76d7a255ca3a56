"""The harness at scale on KWOK fake nodes (tests/cluster/kwok-up.sh): one burst of 10 runc
pods on each fake node at once (100 nodes: 1,000 pods), through the CLI as a user runs it.

Every pod is accounted for: one created -> scheduled per pod, measured from the run's one
watch, and every runtime-side phase skipped with the reason (nothing runs on a fake node),
never a number or a failure; nothing of the run is left in the cluster afterwards. What the
harness spent on the burst (peak RSS, CPU seconds, wall time) and how long creating every pod
took, as an independent watch saw it, are measured and printed, not asserted: they are this
machine's figures, not a contract.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sandbench.backends.kubernetes import api, manifests
from sandbench.backends.kubernetes.nodes import NOTHING_RUNS
from sandbench.results import load_run

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]

SELECTOR = "sandbench.io/kwok=fake"
PER_NODE = 10
#: Nothing pulls or runs it: any name does when none was built.
IMAGE = os.environ.get("SANDBENCH_WORKLOAD_IMAGE") or "sandbench.invalid/kwok:not-pulled"
RUNTIME_SIDE = ("scheduled_to_running", "create_to_running", "create_to_workload",
                "create_to_ready")


@pytest.fixture(scope="module")
def apis() -> api.Apis:
    return api.connect()


@pytest.fixture(scope="module")
def fake_nodes(apis: api.Apis) -> list[str]:
    nodes = apis.core.list_node(label_selector=SELECTOR).items
    if not nodes:
        pytest.skip(f"no KWOK fake nodes ({SELECTOR}) in the cluster: run "
                    "tests/cluster/kwok-up.sh against it first")
    return sorted(str(n.metadata.name) for n in nodes)


class Creations:
    """Receive times (monotonic ns) of every burst pod's first event, from a watch of its own
    in this process: when the API server had created each pod, independently of the harness.

    Under a 1,000-pod burst on a loaded machine the API server may end a watch whose reader
    falls behind, or send an ERROR event; this one then watches again from the last resource
    version it saw (or afresh, with a list, when that is too old), and counts its restarts. A
    pod whose ADDED fell in such a gap is seen by a later event or by the list: counted, its
    time a little late."""

    def __init__(self, apis: api.Apis) -> None:
        self.added: dict[str, int] = {}
        self.restarts = 0
        self._core = apis.core
        self._stop = threading.Event()
        self._response: Any = None
        self._version = ""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._version:
                    listed = self._core.list_pod_for_all_namespaces(
                        label_selector=manifests.BURST)
                    received = time.monotonic_ns()
                    for pod in listed.items:
                        self.added.setdefault(pod.metadata.name, received)
                    self._version = listed.metadata.resource_version
                self._response = self._core.list_pod_for_all_namespaces(
                    watch=True, _preload_content=False, label_selector=manifests.BURST,
                    resource_version=self._version, allow_watch_bookmarks=True,
                    timeout_seconds=900)
                for line in self._response:
                    received = time.monotonic_ns()
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        self._version = ""  # e.g. 410 Gone: list again
                        break
                    meta = event["object"]["metadata"]
                    self._version = meta.get("resourceVersion") or self._version
                    if event["type"] != "BOOKMARK":
                        self.added.setdefault(meta["name"], received)
            except Exception:
                if self._stop.is_set():
                    return
            if not self._stop.is_set():
                self.restarts += 1

    def stop(self) -> None:
        self._stop.set()
        try:
            self._response.shutdown()
            self._response.close()
        except Exception:
            pass
        self._thread.join(timeout=5)


def run_measured(args: list[str], logs: Path) -> tuple[int, dict[str, float]]:
    """Run sandbench as a user would, and read its own rusage (wait4: this child only)."""
    with open(logs / "stdout", "w") as out, open(logs / "stderr", "w") as err:
        began = time.monotonic()
        child = subprocess.Popen([sys.executable, "-m", "sandbench", *args], stdout=out,
                                 stderr=err, env={**os.environ, "COLUMNS": "250"})
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - began
    return child.returncode, {"peak_rss_mib": usage.ru_maxrss / 1024,
                              "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall}


@pytest.fixture(scope="module")
def kwok_run(apis: api.Apis, fake_nodes: list[str],
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    out, logs = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("logs")
    creations = Creations(apis)
    try:
        code, used = run_measured(
            ["run", "--backend", "kubernetes", "--workloads", "start", "--runtimes", "runc",
             "--nodes", SELECTOR, "--concurrency", str(PER_NODE), "--rounds", "1",
             "--warmup", "0", "--image", IMAGE, "--pull-policy", "Never", "--out", str(out)],
            logs)
    finally:
        creations.stop()
    assert code == 0, (logs / "stderr").read_text()[-3000:]
    added = sorted(creations.added.values())
    if added:
        used["first_to_last_create_s"] = (added[-1] - added[0]) / 1e9
    used["pods_seen_created"] = len(added)
    used["independent_watch_restarts"] = creations.restarts
    print(f"\nKWOK burst, {len(fake_nodes)} nodes x {PER_NODE}: " + ", ".join(
        f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in used.items()))
    (run_dir,) = list(out.iterdir())
    (run_dir / "kwok-harness.json").write_text(json.dumps(used, indent=1))
    return run_dir, used


def test_every_pod_is_accounted_for(kwok_run: tuple[Path, dict[str, float]],
                                    fake_nodes: list[str]) -> None:
    run_dir, used = kwok_run
    run = load_run(run_dir)
    assert run.meta["status"] == "completed"
    start = run.samples[(run.samples["workload"] == "start") & ~run.samples["warmup"]]
    pods = len(fake_nodes) * PER_NODE
    assert not (start["status"] == "failed").any(), (
        start[start["status"] == "failed"][["metric", "reason"]].drop_duplicates().head())
    scheduled = start[start["metric"] == "create_to_scheduled"]
    assert len(scheduled) == pods and (scheduled["status"] == "ok").all()
    assert (scheduled["value"] > 0).all()
    per_node = Counter(labels["node"] for labels in scheduled["labels"])
    assert per_node == {name: PER_NODE for name in fake_nodes}
    assert used["pods_seen_created"] == pods  # the independent watch saw each one created


def test_runtime_phases_are_skipped_as_not_applicable(
        kwok_run: tuple[Path, dict[str, float]], fake_nodes: list[str]) -> None:
    run = load_run(kwok_run[0])
    start = run.samples[run.samples["workload"] == "start"]
    for metric in RUNTIME_SIDE:
        rows = start[start["metric"] == metric]
        assert len(rows) == len(fake_nodes) * PER_NODE, metric
        assert (rows["status"] == "skipped").all() and rows["value"].isna().all(), metric
        assert set(rows["reason"]) == {NOTHING_RUNS}, metric
    totals = start[start["metric"].isin(["burst_to_last_workload", "burst_throughput"])]
    assert len(totals) == 2 and (totals["status"] == "skipped").all()


def test_run_json_names_the_fake_nodes(kwok_run: tuple[Path, dict[str, float]],
                                       fake_nodes: list[str]) -> None:
    environment: dict[str, Any] = load_run(kwok_run[0]).meta["environment"]
    fake = environment["fanout"]["fake_nodes"]
    assert sorted(fake["names"]) == fake_nodes
    assert "kwok.x-k8s.io/node=fake" in fake["rule"]


def test_nothing_is_left_in_the_cluster(kwok_run: tuple[Path, dict[str, float]],
                                        apis: api.Apis) -> None:
    run_id = load_run(kwok_run[0]).meta["run_id"]
    assert not apis.core.list_pod_for_all_namespaces(label_selector=manifests.BURST).items
    left = apis.core.list_namespace(label_selector=f"{manifests.RUN_ID}={run_id}").items
    assert not left, [n.metadata.name for n in left if n.metadata is not None]
