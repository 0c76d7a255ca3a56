"""What the report's Start section says about the image: the state each pod or VMI started
with (``pull`` label: cold or warm), how that state was made and verified (run.json's
environment.image_state and environment.kubevirt.image_state, written by the kubernetes
backend), and cold against warm.

Cold against warm is read off the summary table's medians (computed once, in
analysis.stats): for a pod ``scheduled_to_running``, the watch phase that holds the kubelet's
pull (with the sandbox's creation and the container's start), and ``kubelet_image_pull``, the
kubelet's own time for the pull; for a KubeVirt VMI ``create_to_scheduled``, since KubeVirt
calls a VMI Scheduled only once its launcher pod, which pulls the VM's images, runs (its
``scheduled_to_running`` is QEMU's start, after every pull).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from sandbench.formats import RunMeta
from sandbench.report.labels import Runtimes

WORKLOAD = "start"
PHASE = "scheduled_to_running"
#: A VMI's phase that holds its launcher pod's pulls.
VMI_PHASE = "create_to_scheduled"
KUBELET_PULL = "kubelet_image_pull"


def pull_notes(summary: pd.DataFrame, meta: RunMeta, runtimes: Runtimes) -> list[str]:
    """Sentences for the Start section; none when no sample says what state its image was in."""
    start = summary[summary["workload"] == WORKLOAD]
    state: Mapping[str, Any] = meta.environment.get("image_state") or {}
    if not state:
        return []
    # A warm start's row carries no pull label (model.comparable_labels: it measures what
    # every start measured before the state was a label), a cold one's says cold.
    states = sorted({_state(v) for v in start["label_values"]})
    if not states:
        return []
    how = state.get("how") or "how it was made and checked was not recorded"
    kubevirt = meta.environment.get("kubevirt")
    vm_state = kubevirt.get("image_state") if isinstance(kubevirt, Mapping) else None
    vm_how = vm_state.get("how") if isinstance(vm_state, Mapping) else None
    vmis = {name for name in runtimes.order
            if meta.runtime_facts(name).get("kind") == "kubevirt"}
    notes = []
    if vmis != set(runtimes.order) or not vm_how:  # pods were started (or nothing says VMIs)
        notes.append(f"Image state before each pod: {' and '.join(states)} (label pull). "
                     + ("Verified: " if state.get("verified") else "NOT verified: ")
                     + f"{how}.")
    if vm_how:
        notes.append(f"Image state before each KubeVirt VMI: {' and '.join(states)} (label "
                     f"pull). Verified: {vm_how}.")
    for name in runtimes.order:
        vmi = name in vmis
        line = _cold_against_warm(start[start["runtime"] == name], VMI_PHASE if vmi else PHASE)
        if line:
            notes.append(f"{runtimes.name(name)}: {line}")
    return notes


def _state(labels: Mapping[str, str] | None) -> str:
    return str((labels or {}).get("pull", "warm"))


def _median(rows: pd.DataFrame, metric: str, pull: str) -> tuple[float, float] | None:
    """The median and the spread from the 5th to the 95th percentile of one metric in one
    state."""
    found = rows[(rows["metric"] == metric)
                 & rows["label_values"].map(lambda v: _state(v) == pull)
                 & (rows["n"] > 0)]
    if found.empty:
        return None
    row = found.iloc[0]
    return float(row["median"]), float(row["p95"] - row["p5"])


def _cold_against_warm(rows: pd.DataFrame, phase: str) -> str:
    cold, warm = _median(rows, phase, "cold"), _median(rows, phase, "warm")
    if cold is None or warm is None:
        return ""
    line = (f"{phase} median {cold[0]:.0f} ms cold against {warm[0]:.0f} ms warm "
            f"({cold[0] - warm[0]:+.0f} ms; p5-p95 spread {cold[1]:.0f} and {warm[1]:.0f} ms)")
    pulled = _median(rows, KUBELET_PULL, "cold")
    if pulled is not None:
        line += f"; the kubelet's own pull, cold: median {pulled[0]:.0f} ms"
    return line + "."
