"""What KubeVirt adds around the same VM: a KubeVirt run's VMIs against a local run's ``qemu``.

Both boot the same guest (kernel, initrd, disks and workload binaries come from the same
workload image build) under the same QEMU accelerator, so the difference of their medians,
event by event, is what KubeVirt's path costs around it: the API, virt-controller's launcher
pod, its scheduling and containers, virt-handler and libvirt, up to the same guest kernel
output. The local run counts from the moment the harness invokes QEMU ("request"), the
KubeVirt run from the VMI's create answer ("create"); both are the harness's own marks on its
monotonic clock, and the guest's marks come off its serial console (the VMI's through the
guest-console-log sidecar, on the node's clock brought onto the harness's by the offset).

The guest's own time, first kernel output to the workload's first instruction, is shown for
both: it should agree when the guest and the accelerator are the same, and when it does not the
comparison says so instead of blaming KubeVirt for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sandbench.analysis import stats
from sandbench.report.labels import EMULATED, number
from sandbench.results import Run

#: The local runtime compared with.
QEMU = "qemu"
#: (what happened, the local qemu metric, the KubeVirt metric).
EVENTS = (
    ("guest kernel's first output", "request_to_kernel", "create_to_kernel"),
    ("guest init running", "request_to_init", "create_to_init"),
    ("workload's first instruction", "request_to_workload", "create_to_workload"),
)
#: KubeVirt's own steps before QEMU runs, which the local runtime has no counterpart for.
KUBEVIRT_ONLY = (
    ("launcher pod bound to a node", "create_to_scheduled"),
    ("launcher pod running", "create_to_running"),
)
#: How far apart the two guests' own boot times may be before the comparison warns: more than
#: this fraction of the local one means something other than KubeVirt differs.
GUEST_TOLERANCE = 0.25


class NotComparable(ValueError):
    """The two runs cannot be compared (no qemu in the reference, no VMI in the run)."""


@dataclass(frozen=True)
class Row:
    event: str
    local_ms: str
    kubevirt_ms: str
    added_ms: str
    added_ci: str


def _values(run: Run, runtime: str, metric: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    rows = stats.good(stats.measured(run.samples))
    picked = rows[(rows["runtime"] == runtime) & (rows["workload"] == "start")
                  & (rows["metric"] == metric)]
    return stats.finite(picked["value"])


def _per_sandbox(run: Run, runtime: str, start: str, end: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """``end - start`` for each sandbox that has both (a sample's output names its sandbox)."""
    rows = stats.good(stats.measured(run.samples))
    rows = rows[(rows["runtime"] == runtime) & (rows["workload"] == "start")]
    wide = rows.pivot_table(index="output", columns="metric", values="value", aggfunc="first")
    if start not in wide or end not in wide:
        return np.array([], dtype=np.float64)
    return stats.finite((wide[end] - wide[start]).dropna())


def kubevirt_runtimes(run: Run) -> list[str]:
    return [name for name in run.samples["runtime"].unique()
            if run.info.runtime_facts(str(name)).get("kind") == "kubevirt"]


def section(run: Run, reference: Run) -> dict[str, Any]:
    """The comparison for each KubeVirt runtime of ``run`` against ``reference``'s qemu."""
    if QEMU not in set(reference.samples["runtime"]):
        raise NotComparable(f"run {reference.run_id} has no {QEMU!r} samples to compare with "
                            "(a local run with --runtimes qemu and the start workload)")
    vm_runtimes = kubevirt_runtimes(run)
    if not vm_runtimes:
        raise NotComparable(f"run {run.run_id} has no KubeVirt runtime to compare "
                            f"({QEMU} against a VMI of the same guest)")
    local_facts = reference.info.runtime_facts(QEMU)
    tables = []
    for runtime in vm_runtimes:
        facts = run.info.runtime_facts(runtime)
        rows = []
        for event, local_metric, vm_metric in EVENTS:
            local, vm = _values(reference, QEMU, local_metric), _values(run, runtime, vm_metric)
            rows.append(_row(event, local, vm))
        for event, vm_metric in KUBEVIRT_ONLY:
            rows.append(_row(event, np.array([]), _values(run, runtime, vm_metric)))
        local_guest = _per_sandbox(reference, QEMU, "request_to_kernel", "request_to_workload")
        vm_guest = _per_sandbox(run, runtime, "create_to_kernel", "create_to_workload")
        guest = _row("inside the guest: kernel output → workload", local_guest, vm_guest)
        tables.append({
            "runtime": runtime,
            "rows": [r.__dict__ for r in rows],
            "guest": guest.__dict__,
            "accel": f"{QEMU}: {local_facts.get('accel', 'unknown')}, {runtime}: "
                     f"{facts.get('accel', 'unknown')}",
            "emulated": bool(local_facts.get("emulated") or facts.get("emulated")),
            "warnings": _warnings(reference, run, runtime, local_guest, vm_guest),
        })
    return {"reference": reference.run_id, "tables": tables, "emulated_note": EMULATED}


def _row(event: str, local: Any, vm: Any) -> Row:
    local_median = stats.median(local) if len(local) else float("nan")
    vm_median = stats.median(vm) if len(vm) else float("nan")
    added, interval = "—", "—"
    if len(local) and len(vm):
        added = number(vm_median - local_median)
        if min(len(local), len(vm)) >= stats.MIN_SAMPLES_TO_JUDGE:
            low, high = stats.difference_ci(vm, local)
            interval = f"{number(low)} to {number(high)}"
    return Row(event, _median(local, local_median), _median(vm, vm_median), added, interval)


def _median(values: Any, median: float) -> str:
    return f"{number(median)} (n={len(values)})" if len(values) else "—"


def _warnings(reference: Run, run: Run, runtime: str, local_guest: Any,
              vm_guest: Any) -> list[str]:
    said = []
    local_tag = _tag(reference.info.environment.get("image") or {})
    vm_images = run.info.runtime_facts(runtime).get("images") or {}
    vm_tag = str(vm_images.get("kernelboot") or "").rpartition(":")[2]
    if local_tag and vm_tag and local_tag != vm_tag:
        said.append(f"The VMI booted guest images tagged {vm_tag}, the local run the image "
                    f"build {local_tag}: not the same guest.")
    local_accel = reference.info.runtime_facts(QEMU).get("accel")
    vm_accel = run.info.runtime_facts(runtime).get("accel")
    if local_accel and vm_accel and local_accel != vm_accel:
        said.append(f"The accelerators differ ({QEMU}: {local_accel}, {runtime}: {vm_accel}): "
                    "the difference is not KubeVirt's alone.")
    if len(local_guest) and len(vm_guest):
        local_median, vm_median = stats.median(local_guest), stats.median(vm_guest)
        if abs(vm_median - local_median) > GUEST_TOLERANCE * local_median:
            said.append(f"The guest's own boot (kernel output to workload) took "
                        f"{number(vm_median)} ms in the VMI against {number(local_median)} ms "
                        f"locally: more than {GUEST_TOLERANCE:.0%} apart, so part of the "
                        "difference is the guest's, not KubeVirt's path around it.")
    return said


def _tag(image: dict[str, Any]) -> str:
    """The image build's tag (its input hash's first 12 digits), as the guest images carry it."""
    if image.get("input_hash"):
        return str(image["input_hash"])[:12]
    name = str(image.get("name") or "")
    return name.rpartition(":")[2] if ":" in name else ""


def frame(section_: dict[str, Any]) -> pd.DataFrame:
    """The section's rows as one table (for tests and export)."""
    return pd.DataFrame([{"runtime": t["runtime"], **row} for t in section_["tables"]
                         for row in t["rows"]])
