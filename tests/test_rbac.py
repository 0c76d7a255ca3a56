"""`sandbench rbac`: the least-privilege manifest, checked for what it must and must not grant
(tests/cluster/test_kubernetes_backend.py applies it to a real API server)."""

from __future__ import annotations

from typing import Any

import yaml

from conftest import sandbench
from sandbench.backends.kubernetes.access import KUBELET_METRICS, Permission, required


def documents(*args: str) -> list[dict[str, Any]]:
    result = sandbench("rbac", *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_the_account_is_bound_cluster_wide_only_beside_its_admission_policy() -> None:
    kinds = [d["kind"] for d in documents()]
    assert kinds == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                     "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    policy = next(d for d in documents() if d["kind"] == "ValidatingAdmissionPolicy")
    assert policy["spec"]["failurePolicy"] == "Fail"
    condition = policy["spec"]["matchConditions"][0]["expression"]
    assert "system:serviceaccount:sandbench-system:sandbench" in condition


def test_nothing_beyond_what_the_harness_reads_and_writes() -> None:
    granted = set(required())
    assert Permission("", "nodes", "list") in granted
    assert Permission("", "nodes", "get") not in granted
    assert not {p for p in granted if p.resource in ("nodes/proxy", "secrets", "pods/exec")}
    kubevirts = {p.verb for p in granted if p.resource == "kubevirts"}
    assert kubevirts == {"list"}


def test_kubelet_metrics_are_opt_in() -> None:
    assert "nodes/proxy" not in yaml.safe_dump(documents())
    added = [d for d in documents("--kubelet-metrics") if d["kind"] == "ClusterRole"]
    assert [d["metadata"]["name"] for d in added] == ["sandbench", "sandbench-kubelet-metrics"]
    assert required(KUBELET_METRICS) == [Permission("", "nodes/proxy", "get")]
