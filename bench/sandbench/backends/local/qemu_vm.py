"""One QEMU process: its command line, its serial console read line by line as it arrives, its
exit, and finding it again after a crash.

Every line of the console is stamped with CLOCK_MONOTONIC the moment the read that completed it
returns; the process's exit is read from a pidfd, as for containers (proc.py). Nothing sleeps
and polls. QEMU writes its own pid file (``-pidfile``) into the sandbox's scratch directory, and
that path is on its command line, so a pid file found later identifies the process exactly:
leftovers are never looked for by name.
"""

from __future__ import annotations

import math
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sandbench.backends.guest_protocol import ConsoleLine
from sandbench.backends.local import proc
from sandbench.image.guest import GuestImage
from sandbench.spec import Resources

PID_FILE = "qemu.pid"
STDERR_FILE = "qemu.stderr"
#: Seconds a killed QEMU gets to disappear before cleanup goes on without it.
KILL_WAIT_S = 10.0


@dataclass(frozen=True)
class VmConfig:
    """The shape of every VM of one runtime."""

    binary: str
    machine: str = "q35"
    """KubeVirt's machine type, so local and cluster VMs boot the same firmware path."""
    vcpus: int = 1
    """vCPUs: the spec's ``resources.cpus`` rounded up (a VM cannot have a fraction of one)."""
    memory_mib: int = 512
    """Guest RAM: the spec's ``resources.memory_mib``. The guest kernel lives in it too, so
    the workload has somewhat less than a container with the same limit."""
    disk_cache: str = "none"
    """QEMU's cache mode: ``none`` (O_DIRECT on the host, KubeVirt's default) where the scratch
    filesystem takes O_DIRECT, else ``writeback``."""
    wrapper: tuple[str, ...] = ()
    """A command prefix QEMU runs under (a spec variant's wrapper)."""


def direct_io_works(directory: Path) -> bool:
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory) as probe:
        try:
            os.close(os.open(probe.name, os.O_RDWR | os.O_DIRECT))
        except OSError:
            return False
    return True


def vm_config(entry: Mapping[str, Any], binary: str, resources: Resources, scratch: Path,
              wrapper: Sequence[str] = ()) -> VmConfig:
    """A runtime's VmConfig from its runtimeclasses/local.yaml entry and the spec's resources."""
    return VmConfig(binary=binary, machine=str(entry.get("machine", "q35")),
                    vcpus=max(1, math.ceil(resources.cpus)), memory_mib=resources.memory_mib,
                    disk_cache="none" if direct_io_works(scratch) else "writeback",
                    wrapper=tuple(wrapper))


def vm_argv(config: VmConfig, accel: str, guest: GuestImage, append: str,
            disks: Sequence[tuple[Path, str]], pid_file: Path,
            tap: str | None = None) -> list[str]:
    """QEMU's command line: direct kernel boot, serial console on stdout, disks (path, format)
    as virtio-blk in order (the guest sees vda, vdb, ...); no network at all, or with ``tap``
    one virtio-net device on that tap (vhost off: it needs KVM)."""
    nic = (["-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no,vhost=off",
            "-device", "virtio-net-pci,netdev=net0"] if tap else ["-nic", "none"])
    aio = "native" if config.disk_cache == "none" else "threads"
    argv = [
        *config.wrapper, config.binary, "-nodefaults", "-no-user-config",
        "-machine", f"{config.machine},accel={accel}",
        # KVM gets the host's CPU as KubeVirt's host-model would; TCG its default model.
        *(["-cpu", "host"] if accel == "kvm" else []),
        "-smp", str(config.vcpus), "-m", str(config.memory_mib),
        "-display", "none", "-serial", "stdio", *nic, "-no-reboot",
        "-pidfile", str(pid_file),
        "-kernel", str(guest.kernel), "-initrd", str(guest.initrd), "-append", append,
    ]
    for path, fmt in disks:
        argv += ["-drive", f"file={path},format={fmt},if=virtio,"
                           f"cache={config.disk_cache},aio={aio}"]
    return argv


@dataclass
class Boot:
    """What one QEMU process did."""

    lines: list[ConsoleLine] = field(default_factory=list)
    exit_ns: int | None = None
    """When it exited by itself (CLOCK_MONOTONIC); None when it was killed."""
    returncode: int | None = None
    timed_out: bool = False
    stderr: str = ""


class _Lines:
    """Bytes from the console pipe into lines, each stamped when its newline arrived."""

    def __init__(self) -> None:
        self.lines: list[ConsoleLine] = []
        self._partial = b""

    def feed(self, data: bytes, ns: int) -> None:
        *complete, self._partial = (self._partial + data).split(b"\n")
        self.lines += [ConsoleLine(ns, _text(raw)) for raw in complete]

    def close(self, ns: int) -> None:
        if self._partial:
            self.lines.append(ConsoleLine(ns, _text(self._partial)))
            self._partial = b""


def _text(raw: bytes) -> str:
    # The guest's tty and the kernel console both end lines with \r\n.
    return raw.decode("utf-8", errors="replace").rstrip("\r")


def run_vm(argv: list[str], sandbox: Path, deadline_ns: int,
           on_line: Callable[[str], None] | None = None) -> Boot:
    """Run QEMU until it exits or the deadline passes (then kill it); never raises for
    what the guest does. ``sandbox`` holds its stderr and pid file; ``on_line`` is called
    with each console line as it arrives (a footprint is measured while the guest idles)."""
    boot = Boot()
    child: subprocess.Popen[bytes] | None = None
    try:
        # Spawned and named in one step: a Ctrl-C cannot fall between and orphan the VM.
        with open(sandbox / STDERR_FILE, "wb") as err, proc.signals_held():
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=err, start_new_session=True)
        boot.exit_ns, boot.timed_out = _follow(child, deadline_ns, boot, on_line)
    finally:
        if child is not None:
            # The whole group: a wrapper's QEMU too, not only the process spawned.
            proc.end_group(child)
            boot.returncode = child.returncode
            assert child.stdout is not None
            child.stdout.close()
        boot.stderr = proc.read_text(sandbox / STDERR_FILE)
    return boot


def _follow(child: subprocess.Popen[bytes], deadline_ns: int, boot: Boot,
            on_line: Callable[[str], None] | None = None) -> tuple[int | None, bool]:
    """Read the console until QEMU has exited and closed it; (exit time, timed out)."""
    assert child.stdout is not None
    console = child.stdout.fileno()
    pidfd = os.pidfd_open(child.pid)
    poller = select.poll()
    poller.register(console, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    reader = _Lines()
    exit_ns: int | None = None
    console_open = True
    try:
        while console_open or exit_ns is None:
            remaining_ms = (deadline_ns - time.monotonic_ns()) / 1e6
            events = poller.poll(max(0.0, remaining_ms)) if remaining_ms > 0 else []
            if not events:
                # An exited QEMU whose console never closed still exited in time.
                return exit_ns, exit_ns is None
            now = time.monotonic_ns()
            for fd, _ in sorted(events, key=lambda event: event[0] == pidfd):
                if fd == pidfd:
                    exit_ns = now
                    poller.unregister(pidfd)
                    continue
                data = os.read(console, 65536)
                if data:
                    seen = len(reader.lines)
                    reader.feed(data, time.monotonic_ns())
                    if on_line is not None:
                        for line in reader.lines[seen:]:
                            on_line(line.text)
                else:
                    reader.close(now)
                    poller.unregister(console)
                    console_open = False
        return exit_ns, False
    finally:
        reader.close(time.monotonic_ns())
        boot.lines = reader.lines
        os.close(pidfd)


def verified_pid(pid_file: Path) -> int | None:
    """The pid in a pid file, if that process is still the QEMU that wrote it."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if str(pid_file).encode() in cmdline else None


def kill(pid_file: Path) -> int | None:
    """Kill the QEMU of a pid file if it still runs, and wait for it to go; its pid, or None."""
    pid = verified_pid(pid_file)
    if pid is None:
        return None
    proc.kill(pid)
    proc.wait_exit(pid, KILL_WAIT_S)
    proc.reap(pid)
    return pid


def kill_leftovers(root: Path) -> list[str]:
    """Kill every QEMU whose pid file lies one or two levels under ``root`` (a run's scratch
    directory, or the scratch directory of all runs); returns what it killed."""
    killed = []
    for pid_file in sorted({*root.glob(f"*/{PID_FILE}"), *root.glob(f"*/*/{PID_FILE}")}):
        pid = kill(pid_file)
        if pid is not None:
            killed.append(f"qemu process {pid} ({pid_file.parent})")
    return killed
