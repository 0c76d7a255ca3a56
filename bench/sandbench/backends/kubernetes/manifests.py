"""The objects sandbench creates: a namespace per run and one pod per sandbox.

A pod is the same for every runtime but for runtimeClassName: the workload image, the case's
command and environment, an emptyDir at /data (the volume IO target), requests equal to limits
(Guaranteed QoS, the same resources a local container gets), pinned to one node by its
hostname label so the scheduler still does (and is timed doing) the binding.
"""

from __future__ import annotations

import json
from typing import Any

from sandbench.model import VOLUME, Case
from sandbench.spec import Resources

PART_OF = "app.kubernetes.io/part-of"
RUN_ID = "sandbench.io/run-id"
RUNTIME = "sandbench.io/runtime"
WORKLOAD = "sandbench.io/workload"
ROLE = "sandbench.io/role"
#: A burst's pods (a concurrency run, a fan-out over nodes): which burst, and how many per
#: node, so `kubectl get pods -l sandbench.io/burst=ID` shows exactly one burst's pods.
BURST = "sandbench.io/burst"
CONCURRENCY = "sandbench.io/concurrency"
#: The harness process that made a run's namespace (sandbench.owner.me(), as JSON): `sandbench
#: gc` leaves the namespace of a run whose owner still runs.
OWNER = "sandbench.io/owner"


def run_labels(run_id: str) -> dict[str, str]:
    return {PART_OF: "sandbench", RUN_ID: run_id}


def namespace_name(run_id: str) -> str:
    return f"sandbench-{run_id.lower()}"[:63]


def namespace(run_id: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": namespace_name(run_id), "labels": run_labels(run_id)}
    if owner is not None:
        metadata["annotations"] = {OWNER: json.dumps(owner, sort_keys=True)}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def namespace_owner(namespace: Any) -> dict[str, Any] | None:
    """The owner a namespace's annotation records (namespace as the client returns it), or
    None: made by a sandbench before owners were recorded, or by hand."""
    annotations = getattr(getattr(namespace, "metadata", None), "annotations", None) or {}
    try:
        found = json.loads(annotations.get(OWNER) or "null")
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _quantities(resources: Resources) -> dict[str, str]:
    return {"cpu": f"{int(resources.cpus * 1000)}m", "memory": f"{resources.memory_mib}Mi"}


def pod(*, name: str, run_id: str, runtime_class: str, case: Case, image: str,
        pull_policy: str, node: str, resources: Resources, role: str = "measured",
        port: int | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The pod of one sandbox; ``labels`` are added to sandbench's own (a burst's)."""
    container: dict[str, Any] = {
        "name": "workload",
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": case.argv,
        "env": [{"name": k, "value": v} for k, v in sorted(case.env.items())],
        "resources": {"requests": _quantities(resources), "limits": _quantities(resources)},
        "volumeMounts": [{"name": "data", "mountPath": VOLUME}],
    }
    if port is not None:
        container["ports"] = [{"containerPort": port, "protocol": "TCP"}]
    labels = {**(labels or {}), **run_labels(run_id), RUNTIME: runtime_class,
              WORKLOAD: case.workload, ROLE: role}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "runtimeClassName": runtime_class,
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": node},
            "containers": [container],
            "volumes": [{"name": "data", "emptyDir": {}}],
            # No cluster DNS is needed and none may be assumed; nothing inside calls out.
            "dnsPolicy": "Default",
            "enableServiceLinks": False,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
        },
    }
