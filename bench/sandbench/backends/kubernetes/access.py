"""What the harness may do in a cluster, asked of the API server (SelfSubjectAccessReview).

The permissions needed are read from rbac.yaml, the least-privilege manifest that ships with
sandbench, so the check and the manifest cannot drift apart; the kubelet's metrics need the
optional rbac-kubelet-metrics.yaml. An access review asks RBAC only: the manifest's admission
policy, which keeps the account's writes inside sandbench's namespaces, is not seen by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from sandbench.backends.kubernetes.api import Apis

#: Cluster-scoped resources; the rest are checked in a namespace like the run's.
CLUSTER_SCOPED = {"namespaces", "nodes", "nodes/proxy", "runtimeclasses", "kubevirts"}
#: What only VM runs need: its absence is reported, not fatal for pods.
OPTIONAL_GROUPS = {"kubevirt.io"}


@dataclass(frozen=True)
class Permission:
    group: str
    resource: str
    verb: str

    def __str__(self) -> str:
        where = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {where}"


LEAST_PRIVILEGE = "rbac.yaml"
#: nodes/proxy for the kubelet's metrics: optional, because it opens the whole kubelet API.
KUBELET_METRICS = "rbac-kubelet-metrics.yaml"


def _text(name: str) -> str:
    return resources.files("sandbench.backends.kubernetes").joinpath(name).read_text()


def manifest_text(kubelet_metrics: bool = False) -> str:
    """The least-privilege manifest, with the kubelet metrics' ClusterRole if asked for."""
    text = _text(LEAST_PRIVILEGE)
    return text + "---\n" + _text(KUBELET_METRICS) if kubelet_metrics else text


def required(manifest: str = LEAST_PRIVILEGE) -> list[Permission]:
    """The permissions the ClusterRoles of one shipped manifest grant."""
    needed = []
    for document in yaml.safe_load_all(_text(manifest)):
        if document and document.get("kind") == "ClusterRole":
            for rule in document["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        needed += [Permission(group, resource, v) for v in rule["verbs"]]
    return needed


def _review(permission: Permission, namespace: str) -> dict[str, Any]:
    resource, _, sub = permission.resource.partition("/")
    attributes: dict[str, Any] = {"group": permission.group, "resource": resource,
                                  "verb": permission.verb}
    if sub:
        attributes["subresource"] = sub
    if permission.resource not in CLUSTER_SCOPED:
        attributes["namespace"] = namespace
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}


def missing(apis: Apis, namespace: str = "default",
            manifest: str = LEAST_PRIVILEGE) -> list[Permission]:
    """The permissions of ``manifest`` the current identity lacks."""
    lacking = []
    for permission in required(manifest):
        review: Any = _review(permission, namespace)  # the client takes plain dicts too
        answer = apis.authz.create_self_subject_access_review(review)
        if not (answer.status and answer.status.allowed):
            lacking.append(permission)
    return lacking
