"""KVM or TCG: decided by booting the guest under KVM once, with a deadline.

/dev/kvm existing, or even opening, does not mean guests run: on a host whose KVM is itself
virtualised (this one's is PVM-based) a stock guest kernel hangs early in boot, silently. So the
guest is booted under KVM to its init and straight back off; if that does not finish within the
bound, QEMU is killed and VMs run under TCG, the emulator, with the reason recorded. The
decision holds for the process (one test boot per run at most) and is kept in the cache
directory keyed by what decides it: QEMU's version, the guest kernel, the host kernel and
whether /dev/kvm exists. Delete cache_dir/accel/ to test again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbench.backends import guest_protocol
from sandbench.backends.base import BackendError, Progress
from sandbench.backends.local import proc, qemu_vm
from sandbench.facts import host as hostfacts
from sandbench.image.guest import GuestImage
from sandbench.model import utc_now

SETTINGS = ("auto", "kvm", "tcg")
#: Seconds the KVM test boot may take. A working KVM reaches the init in well under a second
#: here; TCG takes 2-3 s for the same boot, so 20 s cannot be mistaken for a slow success.
TEST_BOOT_S = 20.0
KVM_DEVICE = Path("/dev/kvm")

_decided: dict[str, Accel] = {}


@dataclass(frozen=True)
class Accel:
    """The accelerator VMs run under, and why."""

    accel: str
    reason: str

    @property
    def emulated(self) -> bool:
        return self.accel == "tcg"

    def facts(self) -> dict[str, Any]:
        """For run metadata; the report marks a runtime with ``emulated: true`` wherever its
        numbers appear."""
        return {"accel": self.accel, "emulated": self.emulated, "accel_reason": self.reason}


def decide(config: qemu_vm.VmConfig, guest: GuestImage, cache_dir: Path, scratch: Path, *,
           setting: str = "auto", timeout_s: float = TEST_BOOT_S,
           progress: Progress | None = None) -> Accel:
    if setting not in SETTINGS:
        raise BackendError(f"accel {setting!r} in runtimeclasses/local.yaml is not one of "
                           f"{', '.join(SETTINGS)}")
    if setting != "auto":
        return Accel(setting, f"accel: {setting} in runtimeclasses/local.yaml")
    key = {"qemu": hostfacts.tool_version(config.binary), "machine": config.machine,
           "guest_kernel_sha256": guest.kernel_sha256, "host_kernel": platform.release(),
           "kvm_device": KVM_DEVICE.exists()}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    record = cache_dir / "accel" / f"{digest}.json"
    if digest not in _decided:
        _decided[digest] = _read(record) or _write(record, key, _test(config, guest, scratch,
                                                                      timeout_s, progress))
    return _decided[digest]


def _read(record: Path) -> Accel | None:
    try:
        data = json.loads(record.read_text())
        return Accel(str(data["accel"]), f"{data['reason']} (decided {data['decided_at']}; "
                                         f"delete {record} to test again)")
    except (OSError, ValueError, KeyError):
        return None


def _write(record: Path, key: dict[str, Any], accel: Accel) -> Accel:
    record.parent.mkdir(parents=True, exist_ok=True)
    partial = record.with_suffix(".tmp")
    partial.write_text(json.dumps({"key": key, "accel": accel.accel, "reason": accel.reason,
                                   "decided_at": utc_now()}, indent=2) + "\n")
    partial.rename(record)
    return accel


def _test(config: qemu_vm.VmConfig, guest: GuestImage, scratch: Path, timeout_s: float,
          progress: Progress | None) -> Accel:
    if not KVM_DEVICE.exists():
        return Accel("tcg", f"no {KVM_DEVICE} on this host")
    try:
        os.close(os.open(KVM_DEVICE, os.O_RDWR))
    except OSError as exc:
        return Accel("tcg", f"{KVM_DEVICE} cannot be opened: {exc.strerror}")
    if progress:
        progress(f"qemu: a test boot under KVM decides the accelerator (at most {timeout_s:g} s)")
    sandbox = scratch / f"accel-test-{secrets.token_hex(4)}"
    sandbox.mkdir(parents=True)
    try:
        nonce = secrets.token_hex(8)
        argv = qemu_vm.vm_argv(config, "kvm", guest, guest_protocol.kernel_cmdline([], {}, nonce),
                               [], sandbox / qemu_vm.PID_FILE)
        started = time.monotonic_ns()
        boot = qemu_vm.run_vm(argv, sandbox, started + int(timeout_s * 1e9))
    finally:
        # run_vm has killed and reaped QEMU whatever happened; only its files are left.
        shutil.rmtree(sandbox, ignore_errors=True)
    return _verdict(boot, guest_protocol.read_console(boot.lines, nonce), started, timeout_s)


def _verdict(boot: qemu_vm.Boot, console: guest_protocol.Console, started: int,
             timeout_s: float) -> Accel:
    seen = f"{len(boot.lines)} console lines" + (f", the last {console.last_line!r}"
                                                 if console.last_line else "")
    if boot.timed_out:
        return Accel("tcg", f"a test boot under KVM did not finish within {timeout_s:g} s and "
                            f"was killed ({seen}): /dev/kvm opens but guests do not run here")
    if boot.returncode != 0:
        return Accel("tcg", f"a test boot under KVM failed: qemu exited with {boot.returncode}: "
                            f"{proc.last_line(boot.stderr) or '(no message)'}")
    if console.init_ns is None:
        return Accel("tcg", f"a test boot under KVM stopped before the guest init ({seen})")
    return Accel("kvm", f"a test boot under KVM reached the guest init in "
                        f"{(console.init_ns - started) / 1e9:.2f} s")
