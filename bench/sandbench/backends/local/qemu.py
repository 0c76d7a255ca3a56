"""The qemu runtime: one fresh virtual machine per sandbox, booting the guest of the workload image.

Each VM gets a qcow2 overlay over the workload disk (its writable root filesystem, as an overlay
is a container's) and its own copy of an empty ext4 data disk mounted at /data (the volume),
boots Debian's cloud kernel directly (-kernel/-initrd), has no network device (but for the net
workload: a virtio-net device on a tap bridged to the sandbox's veth, netpath.py) and writes
everything to its serial console, which is read line by line as it arrives.

Marks, all on the host's clock: ``request`` just before QEMU is spawned, ``kernel`` when the
first kernel line arrives, ``init`` when the guest init's start marker arrives, ``workload`` when
the workload's first line of output arrives, ``exit`` when QEMU exits.

The workload mark is the receive time of the probe's header line, not the probe's own
CLOCK_REALTIME stamp. The guest's realtime clock starts from the emulated RTC, which has
one-second resolution: its offset from the host's clock was measured here anywhere between
-0.1 s and +1.4 s from boot to boot. An offset could be calibrated per boot (the init printing
its clock, compared with the line's arrival) but that would carry the same console delay as
the header line itself, plus the guest clock's drift, for no gain. So no offset between the
guest's clock and the host's is claimed (``offsets`` stays empty): a phase that would need one
comes out failed, and the workload mark is late by the time the header line takes from the
probe's printf through the guest's tty, the emulated UART, QEMU and a pipe. That delay is the
same for every VM sample: about a millisecond under TCG here (the init's END marker, which
needs the probe to exit first, arrives within a few ms of the header).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sandbench.backends import guest_protocol
from sandbench.backends.base import NOT_STARTED, BackendError, Finding, Gate, Progress
from sandbench.backends.guest_protocol import CommandLineError, Console
from sandbench.backends.local import footprint, netpath, proc, qemu_accel, qemu_vm
from sandbench.backends.local.driver import Driver, Kind, Place, RuntimeEntry
from sandbench.facts import host as hostfacts
from sandbench.image import WorkloadImage
from sandbench.image.guest import GuestImage
from sandbench.facts.procmem import ProcFormatError
from sandbench.model import Case, Clock, Execution, Observe

PLANNED = ("request", "kernel", "init", "workload", "exit")
#: Seconds allowed for qemu-img and cp, which take milliseconds.
HOUSEKEEPING_S = 30.0
ROOT_OVERLAY, DATA_DISK = "root.qcow2", "data.raw"
WORKLOAD_MARK = ("host receive time of the workload's first console line (the probe's header); "
                 "the guest's own clock is not used")


@dataclass
class QemuRuntime:
    name: str
    config: qemu_vm.VmConfig
    guest: GuestImage
    accel: qemu_accel.Accel
    scratch: Path

    @classmethod
    def create(cls, name: str, config: qemu_vm.VmConfig, guest: GuestImage, cache_dir: Path,
               scratch: Path, setting: str, progress: Progress | None = None) -> QemuRuntime:
        """The runtime, with its accelerator decided (a bounded test boot the first time)."""
        accel = qemu_accel.decide(config, guest, cache_dir, scratch, setting=setting,
                                  progress=progress)
        if progress:
            progress(f"{name}: {accel.accel} ({accel.reason})")
        return cls(name, config, guest, accel, scratch)

    def facts(self) -> dict[str, Any]:
        return {
            **self.accel.facts(), "binary": self.config.binary,
            "version": hostfacts.tool_version(self.config.binary),
            "machine": self.config.machine, "vcpus": self.config.vcpus,
            "memory_mib": self.config.memory_mib, "disk_cache": self.config.disk_cache,
            "guest_kernel": self.guest.kernel_package, "workload_mark": WORKLOAD_MARK,
        }

    def execute(self, case: Case, sandbox_id: str, timeout_s: float,
                netns: str | None = None, gate: Gate | None = None) -> Execution:
        execution = Execution(planned=PLANNED, labels={"accel": self.accel.accel})
        sandbox = self.scratch / sandbox_id
        try:
            sandbox.mkdir(parents=True)
            nonce = secrets.token_hex(8)
            # A tap on the namespace's veth, not user networking: slirp would measure QEMU's
            # own TCP proxy. QEMU runs in the namespace to open the tap.
            tap = netpath.bridge_tap(netns) if netns else None
            extra = ([f"sandbench_net={netpath.SANDBOX_ADDRESS}/{netpath.PREFIX_LEN}"]
                     if netns else [])
            append = guest_protocol.kernel_cmdline(case.argv, case.env, nonce, extra)
            argv = qemu_vm.vm_argv(self.config, self.accel.accel, self.guest, append,
                                   self._disks(sandbox), sandbox / qemu_vm.PID_FILE, tap)
            if netns:
                argv = ["ip", "netns", "exec", netns, *argv]
                execution.labels["net_path"] = netpath.VM_PATH
            if gate is None or gate():
                self._run(argv, sandbox, nonce, execution, timeout_s, case.observe)
            else:
                execution.error = NOT_STARTED
        except (OSError, subprocess.SubprocessError, CommandLineError,
                netpath.NetPathError) as exc:
            execution.error = f"{self.name}: {exc}"
        finally:
            self.delete(sandbox_id)
        return execution

    def _disks(self, sandbox: Path) -> list[tuple[Path, str]]:
        """A fresh writable root (overlay over the shared workload disk) and data disk."""
        overlay, data = sandbox / ROOT_OVERLAY, sandbox / DATA_DISK
        for command in (
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
             str(self.guest.rootfs_disk), str(overlay)],
            ["cp", "--sparse=always", "--reflink=auto", str(self.guest.data_disk), str(data)],
        ):
            made = proc.run_tool(command, HOUSEKEEPING_S)
            if made.returncode != 0:
                raise OSError(f"{command[0]} failed: {proc.last_line(made.stderr)}")
        return [(overlay, "qcow2"), (data, "raw")]

    def _run(self, argv: list[str], sandbox: Path, nonce: str, execution: Execution,
             timeout_s: float, observe: Observe | None = None) -> None:
        request_ns = time.monotonic_ns()
        execution.mark("request", Clock.HOST_MONOTONIC, request_ns)
        execution.mark("request", Clock.HOST_REALTIME, time.time_ns())
        watch = _Watch(sandbox, nonce, execution, observe) if observe else None
        boot = qemu_vm.run_vm(argv, sandbox, request_ns + int(timeout_s * 1e9),
                              watch.on_line if watch else None)
        if watch is not None and not watch.done:
            execution.footprint_error = "the guest's probe never said it idled"
        console = guest_protocol.read_console(boot.lines, nonce)
        execution.stdout = console.stdout
        execution.stderr = guest_protocol.annotate(boot.lines, request_ns)
        if boot.stderr.strip():
            execution.stderr += "--- qemu stderr ---\n" + boot.stderr
        for name, ns in (("kernel", console.kernel_ns), ("init", console.init_ns),
                         ("workload", console.workload_ns), ("exit", boot.exit_ns)):
            if ns is not None:
                execution.mark(name, Clock.HOST_MONOTONIC, ns)
        execution.exit_code = console.exit_code
        execution.error = _error(boot, console, timeout_s)

    def close(self) -> list[str]:
        return []

    def delete(self, sandbox_id: str) -> None:
        """Kill the sandbox's VM if it still runs and remove its files; safe to call twice."""
        sandbox = self.scratch / sandbox_id
        qemu_vm.kill(sandbox / qemu_vm.PID_FILE)
        shutil.rmtree(sandbox, ignore_errors=True)


class _Watch:
    """Measures the VM from the host once the guest's init says the workload began, after
    the settle time. The guest cannot be signalled: its workload idles for its whole hold,
    and the settling and measuring must fit in it."""

    def __init__(self, sandbox: Path, nonce: str, execution: Execution,
                 observe: Observe) -> None:
        self.sandbox, self.nonce, self.execution, self.observe = sandbox, nonce, execution, observe
        self.done = False

    def on_line(self, text: str) -> None:
        if self.done or f"{guest_protocol.BEGIN} {self.nonce}" not in text:
            return
        self.done = True
        pid = qemu_vm.verified_pid(self.sandbox / qemu_vm.PID_FILE)
        if pid is None:
            self.execution.footprint_error = "QEMU's pid file names no live QEMU"
            return
        time.sleep(self.observe.settle_s)
        try:
            self.execution.footprint = footprint.measure(
                footprint.Where(frozenset({pid})), self.observe)
        except (footprint.NotMeasured, OSError, ProcFormatError) as exc:
            self.execution.footprint_error = str(exc)


def _error(boot: qemu_vm.Boot, console: Console, timeout_s: float) -> str | None:
    last = f"last console line: {console.last_line!r}" if console.last_line else "no console output"
    if boot.timed_out:
        return f"timed out: the VM did not exit within {timeout_s:g} s; killed ({last})"
    if console.error is not None:
        return f"guest init: {console.error}"
    if boot.returncode != 0:
        return f"qemu exited with {boot.returncode}: {proc.last_line(boot.stderr)}"
    if console.exit_code is None:
        return f"the guest stopped before the workload finished ({last})"
    return None


class VmEntry(RuntimeEntry):
    """A runtime of kind ``vm``: a fresh QEMU virtual machine per sandbox."""

    kind: Literal["vm"]

    binary: str
    """QEMU's system emulator, looked up on PATH."""

    machine: str = "q35"
    """QEMU's machine type; q35 is KubeVirt's, so local and cluster VMs are the same machine."""

    accel: Literal["auto", "kvm", "tcg"] = "auto"
    """auto: KVM when a bounded test boot under it works, else TCG (emulated); or either one."""


class Vm(Kind[VmEntry]):
    entry_model = VmEntry
    made_in_prepare = True

    def check(self, name: str, entry: VmEntry, place: Place) -> Finding:
        binary = shutil.which(entry.binary)
        if binary is None:
            return Finding(name, False, f"{entry.binary!r} is not on PATH",
                           fix="apt-get install qemu-system-x86 qemu-utils")
        if shutil.which("qemu-img") is None:
            return Finding(name, False, "'qemu-img' is not on PATH",
                           fix="apt-get install qemu-utils")
        return Finding(name, True, binary, facts={"binary": binary})

    def driver(self, name: str, entry: VmEntry, place: Place, image: WorkloadImage,
               progress: Progress | None) -> QemuRuntime:
        if image.guest is None:
            raise BackendError("the workload image has no VM guest; run `sandbench image build`")
        binary = shutil.which(entry.binary) or entry.binary
        config = qemu_vm.vm_config(entry.model_dump(), binary, place.resources, place.scratch,
                                   entry.wrapper)
        return QemuRuntime.create(name, config, image.guest, place.cache_dir, place.scratch,
                                  entry.accel, progress)

    def facts(self, entry: VmEntry, place: Place, driver: Driver | None) -> dict[str, Any]:
        if isinstance(driver, QemuRuntime):
            return driver.facts()
        return {"accel": "undecided (a test boot decides it when a run uses it)"}

    def sweep_scratch(self, scratch: Path) -> list[str]:
        return qemu_vm.kill_leftovers(scratch)
