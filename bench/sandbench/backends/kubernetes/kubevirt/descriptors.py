"""Runtimes of kind kubevirt: sandbench's descriptors in runtimeclasses/kubevirt.

KubeVirt has no RuntimeClass; what differs between two VM runtimes (machine type, disk bus, CPU
model) is written in a small descriptor of sandbench's own, and its metadata.name is the
runtime's name. Nothing else in sandbench spells it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbench.errors import BadInput
from sandbench.resources import runtimeclasses_dir

API_VERSION = "sandbench.io/v1"
KIND = "KubevirtRuntime"
DISK_BUSES = ("virtio", "sata", "scsi")


class DescriptorError(BadInput, ValueError):
    """A descriptor that cannot be used; the message names the file and the bad value."""


@dataclass(frozen=True)
class KubevirtRuntime:
    name: str
    description: str
    machine: str = "q35"
    """QEMU machine type (spec.domain.machine.type)."""
    disk_bus: str = "virtio"
    """Bus of both disks; the guest looks for /dev/vda and /dev/vdb, so virtio."""
    cpu_model: str | None = None
    """spec.domain.cpu.model; None: the cluster's default."""
    source: str = ""


def descriptors_dir() -> Path:
    return runtimeclasses_dir() / "kubevirt"


def _parse(document: dict[str, Any], source: str) -> KubevirtRuntime:
    name = (document.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise DescriptorError(f"{source}: metadata.name is missing")
    known = {"apiVersion", "kind", "metadata", "description", "machine", "diskBus", "cpuModel"}
    unknown = sorted(set(document) - known)
    if unknown:
        raise DescriptorError(f"{source}: unknown key {unknown[0]!r}; known keys: "
                              f"{', '.join(sorted(known))}")
    bus = document.get("diskBus", "virtio")
    if bus not in DISK_BUSES:
        raise DescriptorError(f"{source}: diskBus {bus!r} is not one of {', '.join(DISK_BUSES)}")
    return KubevirtRuntime(name=name, description=str(document.get("description", "")),
                           machine=str(document.get("machine", "q35")), disk_bus=bus,
                           cpu_model=document.get("cpuModel"), source=source)


def runtimes(directory: Path | None = None) -> dict[str, KubevirtRuntime]:
    """Every descriptor by name; a name given twice is an error naming both files."""
    found: dict[str, KubevirtRuntime] = {}
    for path in sorted((directory or descriptors_dir()).glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if not (isinstance(document, dict) and document.get("kind") == KIND):
                continue
            if document.get("apiVersion") != API_VERSION:
                raise DescriptorError(f"{path}: apiVersion {document.get('apiVersion')!r}; "
                                      f"expected {API_VERSION!r}")
            runtime = _parse(document, str(path))
            if runtime.name in found:
                raise DescriptorError(f"runtime {runtime.name!r} is declared twice: in "
                                      f"{found[runtime.name].source} and {path}")
            found[runtime.name] = runtime
    return found


def describe(runtime: KubevirtRuntime) -> str:
    return f"KubeVirt VirtualMachineInstance, machine {runtime.machine}: {runtime.description}"
