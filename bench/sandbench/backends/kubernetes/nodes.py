"""The nodes a run's pods are pinned to, and the facts about them a reader needs.

One node (``node``, or the first Ready one every RuntimeClass can use) for pods measured one
at a time; for a fan-out (``nodes``) every selected node, each getting a burst's pods at once:
a comma list of names, a label selector, or ``all`` schedulable nodes.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from sandbench.backends.base import BackendError
from sandbench.backends.kubernetes.api import Apis, api_message
from sandbench.spec.nodes import ALL, NodeChoice, parse_nodes

#: Node labels worth keeping in run metadata (Kata's own and the usual topology ones).
LABEL_PREFIXES = ("katacontainers.io/", "kubernetes.io/", "node.kubernetes.io/",
                  "topology.kubernetes.io/", "kubevirt.io/", "sandbench.io/")


#: Taint effects that keep a pod without a toleration off a node (the fan-out's pods have none).
REPELLING = ("NoSchedule", "NoExecute")

#: How a KWOK fake node is known: KWOK's own annotation, the one its controller is told to
#: manage (tests/cluster/kwok-up.sh). A label (kwok's docs use type=kwok) is anyone's to set
#: on a real node for scheduling; this annotation is what makes kwok, not a kubelet, write
#: the node's and its pods' status.
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_FAKE = "fake"
#: Why a fake node's pods have no runtime-side phases: there is no kubelet or runtime behind
#: it, only kwok writing status.
NOTHING_RUNS = "not applicable: KWOK fake node (nothing runs there)"


def is_fake(node: dict[str, Any]) -> bool:
    """Whether ``node`` is a KWOK fake node (annotation kwok.x-k8s.io/node=fake)."""
    annotations = node.get("metadata", {}).get("annotations") or {}
    return annotations.get(KWOK_ANNOTATION) == KWOK_FAKE


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
    # A fake node runs nothing: never the run's node unless named.
    usable = [n for n in nodes if _ready(n) and not (n.get("spec") or {}).get("unschedulable")
              and not is_fake(n)]
    matching = [n for n in usable
                if all(n["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())]
    if matching:
        return dict(matching[0])
    if usable:
        # No node suits every RuntimeClass: pin to a Ready one and let the scheduler say why.
        return dict(usable[0])
    raise BackendError("no Ready, schedulable node in the cluster")


def _repelled(node: dict[str, Any]) -> str | None:
    """The taint that keeps a toleration-less pod off ``node``, as key=value:effect."""
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in REPELLING:
            value = f"={taint['value']}" if taint.get("value") else ""
            return f"{taint.get('key')}{value}:{taint['effect']}"
    return None


def _unusable(node: dict[str, Any], wanted: dict[str, str]) -> str | None:
    """Why the fan-out's pods cannot run on ``node``, or None when they can."""
    if not _ready(node):
        return "not Ready"
    if (node.get("spec") or {}).get("unschedulable"):
        return "cordoned (unschedulable)"
    taint = _repelled(node)
    if taint:
        return f"tainted {taint}"
    labels = node["metadata"].get("labels") or {}
    missing = {k: v for k, v in wanted.items() if labels.get(k) != v}
    if missing:
        key, value = next(iter(missing.items()))
        return f"lacks {key}={value}, which a RuntimeClass's scheduling asks for"
    return None


def fan_out(nodes: list[dict[str, Any]], choice: NodeChoice, wanted: dict[str, str]
            ) -> tuple[list[dict[str, Any]], list[str]]:
    """The nodes a burst fans out to, by name, of ``nodes`` (the cluster's, or those a
    selector listed), and one note per node left out saying why. Named nodes must exist and
    be usable (naming one is asking for it); ``all`` and a selector keep the usable ones.
    Raises BackendError when none is left."""
    by_name = {str(n["metadata"]["name"]): n for n in nodes}
    if choice.kind == "names":
        absent = [name for name in choice.names if name not in by_name]
        if absent:
            raise BackendError(f"nodes: {absent[0]!r} is not in the cluster; nodes: "
                               f"{', '.join(sorted(by_name)) or 'none'}")
        for name in choice.names:
            why = _unusable(by_name[name], wanted)
            if why:
                raise BackendError(f"nodes: {name!r} cannot run the pods: {why}")
        return [by_name[name] for name in choice.names], []
    kept, notes, fake = [], [], []
    for name in sorted(by_name):
        why = _unusable(by_name[name], wanted)
        if why:
            notes.append(f"node {name} left out of the fan-out: {why}")
        elif choice.kind == ALL and is_fake(by_name[name]):
            fake.append(name)  # "all" means every node that can run a pod
        else:
            kept.append(by_name[name])
    if fake:
        notes.append(f"{len(fake)} KWOK fake node(s) left out of the fan-out ({fake[0]}"
                     f"{', ...' if len(fake) > 1 else ''}): nothing runs there; name them or "
                     "select them by label to time their pods' API-side phases")
    if not kept:
        asked = "all" if choice.kind == ALL else f"selector {choice.selector!r}"
        raise BackendError(f"nodes {asked}: no usable node among {len(by_name)} ("
                           + ("; ".join(notes) or "the cluster has none") + ")")
    return kept, notes


def select_nodes(apis: Apis, runtimes: list[str], given: str
                 ) -> tuple[list[dict[str, Any]], list[str]]:
    """The nodes ``given`` (kubernetes.nodes) selects in the cluster, and notes on those
    left out; raises BackendError (a bad selector quoted with the API server's words)."""
    try:
        choice = parse_nodes(given)
    except ValueError as exc:
        raise BackendError(str(exc)) from None
    try:
        listed = apis.core.list_node(label_selector=choice.selector or None).items
    except ApiException as exc:
        by = f" by selector {choice.selector!r}" if choice.selector else ""
        raise BackendError(f"cannot list nodes{by}: {api_message(exc)}") from exc
    nodes = apis.api_client.sanitize_for_serialization(listed)
    return fan_out(nodes, choice, _selectors(apis, runtimes))


def hostname(node: dict[str, Any]) -> str:
    """The node's kubernetes.io/hostname label (what a pod's nodeSelector names), else its
    name."""
    return str((node["metadata"].get("labels") or {}).get("kubernetes.io/hostname",
                                                          node["metadata"]["name"]))


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
