"""Facts about the machine a run happened on, stored in run.json so runs can be compared
knowing what differed (pyperf and pytest-benchmark record the same kinds of facts)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from functools import cache
from pathlib import Path
from typing import Any


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_bytes() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def os_release() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def cgroup_layout() -> str:
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return "v2"
    return "hybrid" if Path("/sys/fs/cgroup/unified").is_dir() else "v1"


@cache
def tool_version(binary: str) -> str:
    """First line of ``binary --version``, or 'not installed'."""
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def git_commit() -> str | None:
    """The sandbench checkout's commit, when it runs from one."""
    top = Path(__file__).resolve().parents[3]
    try:
        result = subprocess.run(["git", "-C", str(top), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def git_dirty() -> bool | None:
    """Whether the sandbench checkout has uncommitted changes (None outside a checkout)."""
    top = Path(__file__).resolve().parents[2]
    try:
        result = subprocess.run(["git", "-C", str(top), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bool(result.stdout.strip()) if result.returncode == 0 else None


def runnable() -> int | None:
    """Tasks running or runnable on the host now, this one included."""
    for line in _read("/proc/stat").splitlines():
        if line.startswith("procs_running "):
            return int(line.split()[1])
    return None


def _frequencies_mhz() -> list[float]:
    """Each CPU's current frequency: cpufreq where the kernel has it, else /proc/cpuinfo."""
    found = []
    for cpu in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*")):
        text = _read(str(cpu / "cpufreq" / "scaling_cur_freq"))
        if text.isdigit():
            found.append(int(text) / 1000.0)
    if found:
        return found
    return [float(line.split(":", 1)[1]) for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("cpu MHz")]


def host_state() -> dict[str, Any]:
    """What the host was doing, read at a run's start and end (pyperf records the same): a
    busy host slows every runtime, and a comparison across runs must be able to say so."""
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "time": time.time(),
        "loadavg": load,
        "runnable": runnable(),
        "cpu_mhz": _frequencies_mhz(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "n/a",
        "affinity": sorted(os.sched_getaffinity(0)),
        "isolated": _read("/sys/devices/system/cpu/isolated"),
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "git_dirty": git_dirty(),
    }


def busy_warning(state: dict[str, Any], when: str) -> str | None:
    """A warning when the load average exceeds the cores: the numbers include others' work."""
    cores = os.cpu_count() or 1
    load = state.get("loadavg") or []
    if load and load[0] > cores:
        return (f"the host was busy at the run's {when}: load average {load[0]:.2f} over "
                f"{cores} cores; every runtime is slowed, and comparisons with other runs "
                "may see host drift")
    return None


def host_facts() -> dict[str, Any]:
    uname = platform.uname()
    return {
        "hostname": uname.node,
        "kernel": uname.release,
        "kernel_version": uname.version,
        "kernel_cmdline": _read("/proc/cmdline"),
        "arch": uname.machine,
        "os": os_release(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "cgroup_layout": cgroup_layout(),
        "python": platform.python_version(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "n/a",
        "thp": _read("/sys/kernel/mm/transparent_hugepage/enabled") or "n/a",
    }
