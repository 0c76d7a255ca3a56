"""A RuntimeClass's declared pod overhead against what a run measured, and the patch to fix it.

The scheduler adds ``overhead.podFixed`` to every pod of a RuntimeClass; too little and nodes
are overcommitted, too much and they hold fewer pods than they could. The measured overhead is
the footprint workload's ``overhead_pss_mib``: host PSS of every process the sandbox added
beyond the workload's own RSS. The recommendation is a high quantile of it plus a margin
(analysis.footprint.recommend). A local run's runtime is matched to the RuntimeClass whose
handler runs it (runsc to gvisor); a cluster run's runtimes are RuntimeClasses by name.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from sandbench.analysis.footprint import (OVERHEAD_METRIC, POD_OVERHEAD_METRIC, Recommendation,
                                          recommend)
from sandbench.analysis.summary import RunSummary
from sandbench.backends.kubernetes import classes
from sandbench.errors import BadInput

#: What the measured overhead is, for the command's header.
MEASURED_AS = ("measured: overhead_pss_mib, host PSS beyond the workload's own RSS, on a local "
               "run; pod_overhead_mib, the kubelet's pod working set beyond its containers', "
               "on a cluster")

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_BYTES = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
          "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def quantity_mib(text: str) -> float:
    """A Kubernetes memory quantity ("130Mi", "2Gi", "500M", "1048576") in MiB."""
    found = _QUANTITY.match(str(text).strip())
    if found is None:
        raise BadInput(f"memory quantity {text!r} is not a number with an optional suffix "
                       "Ki, Mi, Gi, Ti, k, M, G or T")
    return float(found.group(1)) * _BYTES[found.group(2)] / 2**20


@dataclass(frozen=True)
class Overhead:
    """One RuntimeClass: what it declares and what the run measured of its runtime."""

    runtime_class: str
    #: The run's runtime it was matched to ("" when the run did not measure it).
    runtime: str
    declared_mib: float | None
    #: The declared quantity as written ("130Mi"), or None when it declares none.
    declared: str | None
    recommendation: Recommendation | None
    #: The median measured overhead (MiB) and how many sandboxes it is over.
    median_mib: float | None


def _match(name: str, manifest: dict[str, Any], runtimes: set[str]) -> str:
    if name in runtimes:
        return name
    handler = str(manifest.get("handler", ""))
    return handler if handler in runtimes else ""


def compare(summary: RunSummary, quantile: float = 0.95, margin: float = 0.10) -> list[Overhead]:
    """Every known RuntimeClass against the run's overhead samples (read once, from the
    summary's good values)."""
    good = summary.good
    footprint = good[good["workload"] == "footprint"]
    # The host's PSS where the run could read it (local), else the kubelet's pod figure.
    metric = next((m for m in (OVERHEAD_METRIC, POD_OVERHEAD_METRIC)
                   if (footprint["metric"] == m).any()), OVERHEAD_METRIC)
    mine = footprint[footprint["metric"] == metric]
    runtimes = {str(r) for r in mine["runtime"]}
    rows = []
    for name, manifest in classes.manifests().items():
        declared = ((manifest.get("overhead") or {}).get("podFixed") or {}).get("memory")
        runtime = _match(name, manifest, runtimes)
        values = mine[mine["runtime"] == runtime]["value"].to_numpy(dtype=float) if runtime \
            else None
        rows.append(Overhead(
            name, runtime, quantity_mib(declared) if declared is not None else None,
            str(declared) if declared is not None else None,
            recommend(values, quantile, margin) if values is not None else None,
            float(np.median(values)) if values is not None and len(values) else None))
    return rows


def merge_patch(row: Overhead) -> dict[str, Any] | None:
    """The merge patch (``kubectl patch runtimeclass NAME --type merge -p``) that sets podFixed
    memory to the recommendation, leaving a declared cpu as it is; None without one."""
    if row.recommendation is None:
        return None
    return {"overhead": {"podFixed": {"memory": f"{row.recommendation.value_mib}Mi"}}}


def patched_manifest(row: Overhead) -> dict[str, Any] | None:
    """The RuntimeClass of runtimeclasses/kubernetes with the patch applied: a whole object
    for ``kubectl apply -f``; None without a recommendation."""
    change = merge_patch(row)
    if change is None:
        return None
    manifest = copy.deepcopy(classes.manifests()[row.runtime_class])
    overhead = manifest.setdefault("overhead", {}).setdefault("podFixed", {})
    overhead.update(change["overhead"]["podFixed"])
    return manifest
