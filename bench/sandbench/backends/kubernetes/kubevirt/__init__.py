"""Runtimes of kind kubevirt in the kubernetes backend: each sandbox a VirtualMachineInstance
(backend.py). descriptors.py reads runtimeclasses/kubevirt; manifests.py writes the VMIs;
lifecycle.py follows one; console.py and guest_ssh.py read what the guest printed; install.py
says how KubeVirt is installed in the cluster."""

from __future__ import annotations

from sandbench.backends.kubernetes.kubevirt.backend import (KubevirtRuntime, VmSandboxes,
                                                            apply_console, describe, node_offset,
                                                            release_leftovers, runtimes)
from sandbench.backends.kubernetes.kubevirt.install import Installation

__all__ = ["Installation", "KubevirtRuntime", "VmSandboxes", "apply_console", "describe",
           "node_offset", "release_leftovers", "runtimes"]
