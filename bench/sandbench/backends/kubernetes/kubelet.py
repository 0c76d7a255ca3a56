"""The kubelet's own view of a pod's start, an independent reference for the harness's phases.

Histograms are read before and after a round and their _sum and _count differenced (their
buckets are too coarse to read directly). With one measured pod at a time on the node, the
difference is that pod's:

- ``kubelet_runtime_operations_duration_seconds{operation_type="run_podsandbox"}``: the CRI
  RunPodSandbox call, i.e. the sandbox creation time the RuntimeClass's handler costs.

- ``kubelet_image_pull_duration_seconds`` (every image-size bucket summed): the kubelet's own
  time for the pod's image pull, from just before its CRI PullImage request to the answer
  (Go's time.Since, a monotonic clock, truncated to the millisecond), including any wait in
  its puller's queue (none with one pod at a time). Observed only when the kubelet pulled: a
  warm pod under IfNotPresent adds nothing. This is the pull's own duration; the pod watch
  cannot isolate it (the kubelet writes no status while it pulls), and Events, which can,
  get dropped under load (kube-burner #1189).

Not ``kubelet_pod_start_sli_duration_seconds``: it counts from the pod's creationTimestamp,
which has one-second precision, so one pod's value is off by up to a second.

Not ``kubelet_run_podsandbox_duration_seconds{runtime_handler}``, though it is the one with a
per-handler label: in Kubernetes 1.34 it is observed in a `defer` whose argument is evaluated
when the call starts, so it records microseconds whatever the sandbox took (seen on the test
cluster: 8 runc sandboxes summing to 24 µs while run_podsandbox summed to 1.1 s).

Read through the API server's node proxy (needs nodes/proxy get), or from a URL given in the
spec for a harness on the node itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import urllib3
from prometheus_client.parser import text_string_to_metric_families

from sandbench.model import Better, Metric

OPERATIONS = "kubelet_runtime_operations_duration_seconds"

RUN_PODSANDBOX = Metric("kubelet_run_podsandbox", "ms", Better.LOWER,
                        "the kubelet's CRI RunPodSandbox time for this pod (runtime operations "
                        "histogram, _sum/_count difference around the round)")

IMAGE_PULL = Metric("kubelet_image_pull", "ms", Better.LOWER,
                    "the kubelet's own time for this pod's image pull, CRI PullImage request to "
                    "answer (image pull duration histogram, _sum/_count difference around the "
                    "pod; only where the kubelet pulled)")

#: (metric, histogram family, the labels a sample must carry); every series that carries them
#: is summed (the pull histogram has one per image-size bucket).
SERIES: tuple[tuple[Metric, str, dict[str, str]], ...] = (
    (RUN_PODSANDBOX, OPERATIONS, {"operation_type": "run_podsandbox"}),
    (IMAGE_PULL, "kubelet_image_pull_duration_seconds", {}),
)


@dataclass(frozen=True)
class Totals:
    sum_s: float
    count: float


def totals(metrics_text: str) -> dict[str, Totals]:
    """_sum and _count of each series in SERIES, by sandbench metric name."""
    found: dict[str, dict[str, float]] = {}
    families = {f.name: f for f in text_string_to_metric_families(metrics_text)}
    for metric, family_name, labels in SERIES:
        family = families.get(family_name)
        for sample in family.samples if family else []:
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                part = "sum" if sample.name.endswith("_sum") else "count" if sample.name.endswith(
                    "_count") else None
                if part:
                    parts = found.setdefault(metric.name, {})
                    parts[part] = parts.get(part, 0.0) + sample.value
    return {name: Totals(v.get("sum", 0.0), v["count"]) for name, v in found.items()
            if "count" in v}


def scrape_proxy(core: Any, node: str) -> dict[str, Totals]:
    return totals(str(core.connect_get_node_proxy_with_path(node, "metrics")))


def scrape_url(url: str) -> dict[str, Totals]:
    # The kubelet's serving certificate is self-signed; a URL is only given for a kubelet the
    # harness reaches on its own node.
    answer = urllib3.PoolManager(cert_reqs="CERT_NONE").request("GET", url, timeout=10)
    if answer.status != 200:
        raise OSError(f"{url} answered {answer.status}")
    return totals(answer.data.decode())


def observations(before: dict[str, Totals], after: dict[str, Totals], metric: str) -> int:
    """How many observations of ``metric`` the kubelet made between two scrapes."""
    end, start = after.get(metric), before.get(metric, Totals(0.0, 0.0))
    return 0 if end is None else round(end.count - start.count)


def round_ms(before: dict[str, Totals], after: dict[str, Totals], metric: str) -> float | None:
    """Mean of the observations between two scrapes, in ms; None unless exactly one pod's
    worth (one observation) happened in between: anything else is not this pod's alone."""
    end, start = after.get(metric), before.get(metric, Totals(0.0, 0.0))
    if end is None or end.count - start.count != 1:
        return None
    return (end.sum_s - start.sum_s) * 1000
