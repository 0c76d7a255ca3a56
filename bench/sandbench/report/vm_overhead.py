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

import re
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
#: KubeVirt's own steps, which the local runtime has no counterpart for: the VMI's phases
#: Scheduled (its launcher pod runs, the VM's images pulled, virt-handler has it) and Running
#: (QEMU started the domain).
KUBEVIRT_ONLY = (
    ("launcher pod running (VMI Scheduled)", "create_to_scheduled"),
    ("QEMU started the domain (VMI Running)", "create_to_running"),
)
#: Accelerators a run's facts can name; anything else ("unknown", "undecided (...)") says nothing.
ACCELERATORS = {"tcg", "kvm", "hvf", "whpx"}
#: How far apart the two guests' own boot times may be before the comparison warns: more than
#: this fraction of the local one means something other than KubeVirt differs.
GUEST_TOLERANCE = 0.25


class NotComparable(ValueError):
    """The two runs cannot be compared; ``argument`` names which one is at fault (RUN_DIR or
    --qemu-run)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


@dataclass(frozen=True)
class Row:
    event: str
    local_ms: str
    kubevirt_ms: str
    added_ms: str
    added_ci: str


def _start(run: Run, runtime: str) -> pd.DataFrame:
    """The runtime's good start samples of sandboxes started alone (no concurrency or variant
    labels: a burst's starts are not one VM's), in ms."""
    rows = stats.good(stats.measured(run.samples))
    return rows[(rows["runtime"] == runtime) & (rows["workload"] == "start")
                & (rows["labels"] == "") & (rows["unit"] == "ms")]


def _values(run: Run, runtime: str, metric: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    rows = _start(run, runtime)
    return stats.finite(rows[rows["metric"] == metric]["value"])


def _per_sandbox(run: Run, runtime: str, start: str, end: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """``end - start`` for each sandbox that has both (a sample's output names its sandbox)."""
    rows = _start(run, runtime).dropna(subset=["output"])
    if rows.empty:
        return np.array([], dtype=np.float64)
    wide = rows.pivot_table(index="output", columns="metric", values="value", aggfunc="first")
    if start not in wide or end not in wide:
        return np.array([], dtype=np.float64)
    return stats.finite((wide[end] - wide[start]).dropna())


def kubevirt_runtimes(run: Run) -> list[str]:
    return [str(name) for name in run.samples["runtime"].unique()
            if _facts(run, str(name)).get("kind") == "kubevirt"]


def _facts(run: Run, runtime: str) -> dict[str, Any]:
    facts = run.info.runtime_facts(runtime)
    return facts if isinstance(facts, dict) else {}


def _comparable(run: Run, runtime: str, metrics: tuple[str, ...]) -> bool:
    return any(len(_values(run, runtime, metric)) for metric in metrics)


def section(run: Run, reference: Run) -> dict[str, Any]:
    """The comparison for each KubeVirt runtime of ``run`` against ``reference``'s qemu;
    raises NotComparable when either has nothing to compare."""
    local_metrics = tuple(local for _, local, _ in EVENTS)
    if not _comparable(reference, QEMU, local_metrics):
        raise NotComparable("--qemu-run", f"run {reference.run_id} has no good {QEMU!r} start "
                            f"samples ({', '.join(local_metrics)}, in ms, of sandboxes started "
                            f"alone): give a local run of --runtimes {QEMU} --workloads start")
    vm_runtimes = [name for name in kubevirt_runtimes(run)
                   if _comparable(run, name, tuple(vm for _, _, vm in EVENTS))]
    if not vm_runtimes:
        raise NotComparable("RUN_DIR", f"run {run.run_id} has no KubeVirt runtime with good "
                            "start samples (create_to_kernel, create_to_init, "
                            "create_to_workload) to compare with the local "
                            f"{QEMU} run")
    local_facts = _facts(reference, QEMU)
    local_qemu, launcher = _local_qemu(reference), _launcher_versions(run)
    tables = []
    for runtime in vm_runtimes:
        facts = _facts(run, runtime)
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
            "qemu": _qemu_text(local_qemu, launcher),
            "warnings": _warnings(reference, run, runtime, local_guest, vm_guest,
                                  local_qemu, str(launcher.get("qemu") or "")),
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


def _local_qemu(reference: Run) -> str:
    """The local qemu runtime's QEMU version ("7.2.22"), from its facts' version line."""
    found = re.search(r"version (\d+(?:\.\d+)+)", str(_facts(reference, QEMU).get("version")))
    return found.group(1) if found else ""


def _launcher_versions(run: Run) -> dict[str, Any]:
    """libvirt and QEMU as the run's virt-launcher said (environment.kubevirt)."""
    seen = run.info.environment.get("kubevirt")
    versions = seen.get("launcher_versions") if isinstance(seen, dict) else None
    return versions if isinstance(versions, dict) else {}


def _qemu_text(local_qemu: str, launcher: dict[str, Any]) -> str:
    local = local_qemu or "unknown"
    inside = (f"{launcher['qemu']} (libvirt {launcher.get('libvirt', '?')})"
              if launcher.get("qemu") else "not recorded")
    return f"QEMU {local} locally, {inside} in virt-launcher"


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _warnings(reference: Run, run: Run, runtime: str, local_guest: Any, vm_guest: Any,
              local_qemu: str, vm_qemu: str) -> list[str]:
    said = []
    local_tag = _tag(reference.info.environment.get("image"))
    vm_images = _facts(run, runtime).get("images")
    vm_tag = (_reference_tag(str(vm_images.get("kernelboot") or ""))
              if isinstance(vm_images, dict) else "")
    if local_tag and vm_tag and local_tag != vm_tag:
        said.append(f"The VMI booted guest images tagged {vm_tag}, the local run the image "
                    f"build {local_tag}: not the same guest build, or not one sandbench tagged.")
    local_accel = str(_facts(reference, QEMU).get("accel") or "")
    vm_accel = str(_facts(run, runtime).get("accel") or "")
    if local_accel in ACCELERATORS and vm_accel in ACCELERATORS and local_accel != vm_accel:
        said.append(f"The accelerators differ ({QEMU}: {local_accel}, {runtime}: {vm_accel}): "
                    "the difference is not KubeVirt's alone.")
    if local_qemu and vm_qemu and _minor(local_qemu) != _minor(vm_qemu):
        said.append(f"The QEMU versions differ ({local_qemu} locally, {vm_qemu} in "
                    "virt-launcher): part of the difference may be QEMU's, not KubeVirt's.")
    if len(local_guest) and len(vm_guest):
        local_median, vm_median = stats.median(local_guest), stats.median(vm_guest)
        if abs(vm_median - local_median) > GUEST_TOLERANCE * local_median:
            said.append(f"The guest's own boot (kernel output to workload) took "
                        f"{number(vm_median)} ms in the VMI against {number(local_median)} ms "
                        f"locally: more than {GUEST_TOLERANCE:.0%} apart, so part of the "
                        "difference is the guest's, not KubeVirt's path around it.")
    return said


def _tag(image: Any) -> str:
    """The image build's tag (its input hash's first 12 digits), as the guest images carry it."""
    if not isinstance(image, dict):
        return ""
    if image.get("input_hash"):
        return str(image["input_hash"])[:12]
    return _reference_tag(str(image.get("name") or ""))


def _reference_tag(reference: str) -> str:
    """The tag of an image reference (``registry:5000/repo:tag@sha256:...`` -> ``tag``); ""
    when it has none (a digest alone, or no tag), and then nothing can be told from it."""
    name = reference.partition("@")[0]
    last = name.rpartition("/")[2]
    return last.rpartition(":")[2] if ":" in last else ""


def frame(section_: dict[str, Any]) -> pd.DataFrame:
    """The section's rows as one table (for tests and export)."""
    return pd.DataFrame([{"runtime": t["runtime"], **row} for t in section_["tables"]
                         for row in t["rows"]])
