"""A running pod's footprint from the kubelet's summary API (/stats/summary), read through the
API server's node proxy.

The kubelet refreshes these stats on its own housekeeping period (about 10 s), so a pod is
read only once the stats it reports were taken after the pod had run for the settle time:
until then the answer is about an earlier moment of the pod, or absent. The pod's working set
covers its cgroup (the containers, the pause container, and whatever the runtime runs in the
pod's cgroup: gVisor's sentry and gofer); a runtime's shim outside that cgroup is not in it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
import warnings
from typing import Any

import urllib3

from sandbench.model import PodFootprint

SOURCE = "kubelet /stats/summary via the API server's node proxy"


class NoStats(Exception):
    """The kubelet had no fresh stats of the pod in time; the message says what it had."""


def summary_url(kubelet_url: str | None) -> str | None:
    """The summary's URL on the kubelet the settings' ``kubelet_url`` (its /metrics) names:
    an API server that will not proxy to the node's address (a node named 127.0.0.1)
    refuses with "address not allowed"."""
    if not kubelet_url:
        return None
    parts = urllib.parse.urlsplit(kubelet_url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/stats/summary", "", ""))


def read_summary(core: Any, node: str, url: str | None = None) -> dict[str, Any]:
    """The kubelet's summary, from ``url`` when given, else through the node proxy."""
    if url is not None:
        # The kubelet's serving certificate is self-signed, as for its /metrics; read once a
        # second, urllib3's warning about it would bury the run's own output.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            answer = urllib3.PoolManager(cert_reqs="CERT_NONE").request("GET", url, timeout=10)
        if answer.status != 200:
            raise OSError(f"{url} answered {answer.status}")
        data: bytes = answer.data
    else:
        data = core.connect_get_node_proxy_with_path(node, "stats/summary",
                                                     _preload_content=False).data
    result: dict[str, Any] = json.loads(data)
    return result


def _stamp(text: str | None) -> float | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pod_footprint(summary: dict[str, Any], namespace: str, name: str,
                  not_before: float, source: str = SOURCE) -> PodFootprint | None:
    """The pod's figures from one summary, if they were taken at or after ``not_before``
    (Unix seconds) and hold a working set; None otherwise."""
    for pod in summary.get("pods") or []:
        ref = pod.get("podRef") or {}
        if ref.get("namespace") != namespace or ref.get("name") != name:
            continue
        memory = pod.get("memory") or {}
        taken = _stamp(memory.get("time"))
        # A pod whose cgroup the kubelet has not read yet reports a working set of 0 beside
        # its container's (captured: tests/data/golden/kubelet_stats_summary.json).
        if taken is None or taken < not_before or not memory.get("workingSetBytes"):
            return None
        containers = {str(c.get("name")): int((c.get("memory") or {}).get("workingSetBytes", 0))
                      // 1024 for c in pod.get("containers") or []}
        cores = (pod.get("cpu") or {}).get("usageNanoCores")
        return PodFootprint(int(memory["workingSetBytes"]) // 1024, containers,
                            cores / 1e6 if isinstance(cores, (int, float)) else None, source)
    return None


def wait_for(core: Any, node: str, namespace: str, name: str, not_before: float,
             deadline: float, url: str | None = None) -> PodFootprint:
    """Read the summary every second until it has the pod's stats taken after
    ``not_before``; raises NoStats at the deadline (time.monotonic)."""
    while True:
        source = f"kubelet /stats/summary at {url}" if url else SOURCE
        found = pod_footprint(read_summary(core, node, url), namespace, name, not_before,
                              source)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise NoStats(f"the kubelet reported no stats of pod {namespace}/{name} taken after "
                          "it settled before the probe's hold ran out")
        time.sleep(1.0)


def node_available_kib(summary: dict[str, Any]) -> int:
    """The node's available memory as its kubelet reports it, KiB."""
    available = ((summary.get("node") or {}).get("memory") or {}).get("availableBytes")
    if not isinstance(available, int):
        raise NoStats("the kubelet's summary has no node memory.availableBytes")
    return available // 1024


def together(found: list[PodFootprint]) -> PodFootprint:
    """Pods held together, as one: working sets and CPU summed, containers by name."""
    containers: dict[str, int] = {}
    for pod in found:
        for name, kib in pod.containers_kib.items():
            containers[name] = containers.get(name, 0) + kib
    rates = [p.cpu_ms_per_s for p in found]
    return PodFootprint(sum(p.pod_working_set_kib for p in found), containers,
                        None if None in rates else sum(r for r in rates if r is not None),
                        SOURCE, pods=len(found))
