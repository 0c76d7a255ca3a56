"""The local backend: sandboxes on this host, no cluster (backend.py), and its drivers.

native.py runs the probe as a plain process; oci.py (with oci_config, mounts, cgroups) drives
runc, crun and runsc; qemu.py (with qemu_vm, qemu_accel) boots a fresh VM per sandbox; proc.py
is the process plumbing they share. runtimeclasses/local.yaml says which kind of driver each
runtime is; kinds.py maps kinds to drivers (driver.py says what a kind is) and reads that file.
"""

from __future__ import annotations

from sandbench.backends.local.backend import LocalBackend
from sandbench.backends.local.kinds import KINDS, runtime_table
from sandbench.backends.local.oci import find_binary

__all__ = ["KINDS", "LocalBackend", "find_binary", "runtime_table"]
