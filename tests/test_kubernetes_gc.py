"""`sandbench gc` on a cluster keeps the namespace of a run that is still going: each run's
namespace records its owner (sandbench.owner), and only a dead owner's, or an unrecorded one's,
is deleted (an adversarial pass saw gc delete a live run's namespace under it)."""

from __future__ import annotations

import os
import subprocess
from types import SimpleNamespace
from typing import Any

import pytest

from sandbench import owner
from sandbench.backends.kubernetes import KubernetesBackend, kubevirt, manifests
from sandbench.spec import KubernetesSettings, Resources


class Core:
    def __init__(self, namespaces: list[dict[str, Any]]) -> None:
        self.items = [SimpleNamespace(metadata=SimpleNamespace(
            name=n["metadata"]["name"], annotations=n["metadata"].get("annotations")))
            for n in namespaces]
        self.deleted: list[str] = []

    def list_namespace(self, label_selector: str) -> Any:
        assert label_selector == f"{manifests.PART_OF}=sandbench,{manifests.RUN_ID}"
        return SimpleNamespace(items=self.items)


def test_gc_keeps_a_live_runs_namespace_and_deletes_a_dead_ones(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = {**owner.me(), "pid": dead.pid, "start_time": 1}
    elsewhere = {**owner.me(), "hostname": "another-host"}
    core = Core([manifests.namespace("live", owner.me()), manifests.namespace("dead", gone),
                 manifests.namespace("old"), manifests.namespace("away", elsewhere)])
    backend = KubernetesBackend(KubernetesSettings(), Resources(), "gc", tmp_path)
    deleted: list[str] = []
    monkeypatch.setattr(backend, "_apis", SimpleNamespace(core=core))
    monkeypatch.setattr(backend, "_delete_namespace", deleted.append)
    monkeypatch.setattr(kubevirt, "release_leftovers", lambda apis, name: None)
    assert backend.gc() == ["namespace sandbench-dead", "namespace sandbench-old"]
    assert deleted == ["sandbench-dead", "sandbench-old"]
    assert backend.gc_kept == [
        f"namespace sandbench-live: its run is still going (pid {os.getpid()} on this host)",
        "namespace sandbench-away: its run was started on host 'another-host', where it may "
        "still be going; run gc there, or `kubectl delete namespace sandbench-away`"]


def test_a_namespace_records_its_owner_and_reads_back() -> None:
    made = manifests.namespace("r1", owner.me())
    item = SimpleNamespace(metadata=SimpleNamespace(**made["metadata"]))
    assert manifests.namespace_owner(item) == owner.me()
    assert manifests.namespace_owner(SimpleNamespace(metadata=SimpleNamespace(
        annotations={manifests.OWNER: "not json"}))) is None
    assert "annotations" not in manifests.namespace("r2")["metadata"]
