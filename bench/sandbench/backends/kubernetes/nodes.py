"""The node every pod of a run is pinned to, and the facts about it a reader needs."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from sandbench.backends.base import BackendError
from sandbench.backends.kubernetes.api import Apis, api_message

#: Node labels worth keeping in run metadata (Kata's own and the usual topology ones).
LABEL_PREFIXES = ("katacontainers.io/", "kubernetes.io/", "node.kubernetes.io/",
                  "topology.kubernetes.io/", "kubevirt.io/", "sandbench.io/")


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _selectors(apis: Apis, runtimes: list[str]) -> dict[str, str]:
    """The node labels the requested RuntimeClasses' scheduling asks for, together."""
    wanted: dict[str, str] = {}
    for runtime in runtimes:
        try:
            rc = apis.node.read_runtime_class(runtime)
        except ApiException:
            continue  # a missing class fails on its own, with the API's message
        if rc.scheduling and rc.scheduling.node_selector:
            wanted.update(rc.scheduling.node_selector)
    return wanted


def choose_node(apis: Apis, runtimes: list[str], given: str | None) -> dict[str, Any]:
    try:
        nodes = apis.api_client.sanitize_for_serialization(apis.core.list_node().items)
    except ApiException as exc:
        raise BackendError(f"cannot list nodes: {api_message(exc)}") from exc
    if given is not None:
        for node in nodes:
            if node["metadata"]["name"] == given:
                return dict(node)
        names = ", ".join(n["metadata"]["name"] for n in nodes)
        raise BackendError(f"node {given!r} is not in the cluster; nodes: {names}")
    wanted = _selectors(apis, runtimes)
    usable = [n for n in nodes if _ready(n) and not (n.get("spec") or {}).get("unschedulable")]
    matching = [n for n in usable
                if all(n["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())]
    if matching:
        return dict(matching[0])
    if usable:
        # No node suits every RuntimeClass: pin to a Ready one and let the scheduler say why.
        return dict(usable[0])
    raise BackendError("no Ready, schedulable node in the cluster")


def node_facts(node: dict[str, Any]) -> dict[str, Any]:
    info = (node.get("status") or {}).get("nodeInfo") or {}
    capacity = (node.get("status") or {}).get("capacity") or {}
    labels = node["metadata"].get("labels") or {}
    return {
        "name": node["metadata"]["name"],
        "kernel": info.get("kernelVersion"),
        "os": info.get("osImage"),
        "container_runtime": info.get("containerRuntimeVersion"),
        "kubelet": info.get("kubeletVersion"),
        "arch": info.get("architecture"),
        "cores": capacity.get("cpu"),
        "memory": capacity.get("memory"),
        "labels": {k: v for k, v in labels.items() if k.startswith(LABEL_PREFIXES)},
        "kata_runtime_label": labels.get("katacontainers.io/kata-runtime"),
    }
