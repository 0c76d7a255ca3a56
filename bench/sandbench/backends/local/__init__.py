"""The local backend: sandboxes on this host, no cluster (backend.py), and its drivers.

native.py runs the probe as a plain process; oci.py (with oci_config, mounts, cgroups) drives
runc and crun; qemu.py (with qemu_vm, qemu_accel) boots a fresh VM per sandbox; proc.py is
the process plumbing they share. runtimeclasses/local.yaml says which driver each runtime is.
"""

from __future__ import annotations

from sandbench.backends.local.backend import LocalBackend, runtime_table

__all__ = ["LocalBackend", "runtime_table"]
