"""The VirtualMachineInstance of one sandbox: the local qemu runtime's guest, on a cluster.

Direct kernel boot from the kernel-boot image (its /boot/vmlinuz and /boot/initrd.img) with the
command line the guest protocol writes (guest_protocol.kernel_cmdline, exactly what QEMU gets
with -append), the workload disk as a containerDisk (vda, the writable root: KubeVirt puts an
ephemeral overlay over it, as the local runtime does with qcow2), the empty ext4 data disk as a
second containerDisk (vdb, /data; an emptyDisk would be blank and the guest init mounts ext4).

Resources match the pods': ``cpu.cores`` the spec's CPUs rounded up, ``resources.requests``
AND ``limits`` with the pods' exact cpu and memory quantities. Left out, KubeVirt would request
100m of CPU per vCPU (its default allocation ratio) and the VM would not be comparable with a
pod. No graphics, no memory balloon, no network (QEMU runs with -nic none) unless the guest is
to be reached over SSH; the serial console log on (the results come from it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sandbench.backends.kubernetes.kubevirt.descriptors import KubevirtRuntime
from sandbench.backends.kubernetes.manifests import ROLE, RUNTIME, WORKLOAD, run_labels
from sandbench.image.guest import DATA_IN_IMAGE, DISK_IN_IMAGE, INITRD_IN_IMAGE, KERNEL_IN_IMAGE
from sandbench.model import Case
from sandbench.spec import Resources

GROUP, VERSION, PLURAL = "kubevirt.io", "v1", "virtualmachineinstances"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "VirtualMachineInstance"
#: KubeVirt's label on the launcher pod, with the VMI's uid.
CREATED_BY = "kubevirt.io/created-by"
ROOT_DISK, DATA_DISK = "rootdisk", "datadisk"


@dataclass(frozen=True)
class VmImages:
    """The three images a VMI boots from (OCI references)."""

    containerdisk: str
    datadisk: str
    kernelboot: str


def _quantities(resources: Resources) -> dict[str, str]:
    # The same strings manifests.pod gives a pod's container.
    return {"cpu": f"{int(resources.cpus * 1000)}m", "memory": f"{resources.memory_mib}Mi"}


def _disk(name: str, image: str, path: str, bus: str, pull_policy: str) -> tuple[dict[str, Any],
                                                                                  dict[str, Any]]:
    disk = {"name": name, "disk": {"bus": bus}}
    volume = {"name": name, "containerDisk": {"image": image, "imagePullPolicy": pull_policy,
                                              "path": "/" + path}}
    return disk, volume


def _devices(runtime: KubevirtRuntime, disks: list[dict[str, Any]],
             network: bool) -> dict[str, Any]:
    devices: dict[str, Any] = {
        "disks": disks,
        "autoattachSerialConsole": True,
        "logSerialConsole": True,
        "autoattachGraphicsDevice": False,
        "autoattachMemBalloon": False,
        "autoattachPodInterface": network,
    }
    if network:
        devices["interfaces"] = [{"name": "default", "masquerade": {}}]
    return devices


def vmi(*, name: str, run_id: str, runtime: KubevirtRuntime, case: Case, images: VmImages,
        kernel_args: str, pull_policy: str, node: str, resources: Resources,
        role: str = "measured", network: bool = False) -> dict[str, Any]:
    """The VMI manifest; ``kernel_args`` is guest_protocol.kernel_cmdline's line, ``network``
    gives it the pod network (masquerade) so its sshd can be port-forwarded to."""
    root = _disk(ROOT_DISK, images.containerdisk, DISK_IN_IMAGE, runtime.disk_bus, pull_policy)
    data = _disk(DATA_DISK, images.datadisk, DATA_IN_IMAGE, runtime.disk_bus, pull_policy)
    cpu: dict[str, Any] = {"cores": max(1, math.ceil(resources.cpus)), "sockets": 1,
                           "threads": 1}
    if runtime.cpu_model:
        cpu["model"] = runtime.cpu_model
    domain: dict[str, Any] = {
        "machine": {"type": runtime.machine},
        "cpu": cpu,
        "resources": {"requests": _quantities(resources), "limits": _quantities(resources)},
        "firmware": {"kernelBoot": {
            "container": {"image": images.kernelboot, "imagePullPolicy": pull_policy,
                          "kernelPath": "/" + KERNEL_IN_IMAGE,
                          "initrdPath": "/" + INITRD_IN_IMAGE},
            "kernelArgs": kernel_args}},
        "devices": _devices(runtime, [root[0], data[0]], network),
    }
    spec: dict[str, Any] = {
        "domain": domain,
        "volumes": [root[1], data[1]],
        "nodeSelector": {"kubernetes.io/hostname": node},
        "terminationGracePeriodSeconds": 0,
    }
    if network:
        spec["networks"] = [{"name": "default", "pod": {}}]
    labels = {**run_labels(run_id), RUNTIME: runtime.name, WORKLOAD: case.workload, ROLE: role}
    return {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": name, "labels": labels}, "spec": spec}
