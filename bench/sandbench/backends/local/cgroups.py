"""cgroup facts the local OCI runtimes depend on.

On a hybrid (v1 + unified v2) host crun refuses to run while the unified hierarchy lists any
controller in cgroup.controllers; a fresh Debian 12 machine here lists hugetlb there because no
v1 hugetlb hierarchy is mounted. Mounting one moves the controller to v1 and crun then runs.
runc works either way.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sandbench.facts.host import cgroup_layout

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNIFIED = CGROUP_ROOT / "unified"
CRUN_FIX = ("mkdir -p /sys/fs/cgroup/hugetlb && "
            "mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb  (or: sandbench doctor --fix)")


def unified_controllers() -> list[str]:
    try:
        return (UNIFIED / "cgroup.controllers").read_text().split()
    except OSError:
        return []


def crun_blockers() -> str:
    """Why crun cannot run here, or an empty string when it can."""
    if cgroup_layout() != "hybrid":
        return ""
    controllers = unified_controllers()
    if not controllers:
        return ""
    return ("crun refuses a hybrid cgroup layout whose unified hierarchy has controllers "
            f"({', '.join(controllers)} in {UNIFIED}/cgroup.controllers)")


def fix_crun() -> str | None:
    """Mount the v1 hierarchies for the controllers stuck in the unified one; returns what it
    did, or None when nothing was needed."""
    import subprocess

    done = []
    for controller in unified_controllers():
        target = CGROUP_ROOT / controller
        target.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", controller, "cgroup", str(target)],
                       check=True, capture_output=True, text=True)
        done.append(f"mounted the v1 {controller} hierarchy at {target}")
    return "; ".join(done) or None


def hierarchies() -> list[Path]:
    """Every mounted hierarchy under /sys/fs/cgroup (the v1 ones and the unified one)."""
    return sorted(h for h in CGROUP_ROOT.iterdir() if h.is_dir()) if CGROUP_ROOT.is_dir() else []


def children(parent: str) -> set[str]:
    """Names of the cgroups directly under ``parent`` in any hierarchy (e.g. sandbench's)."""
    return {c.name for h in hierarchies() if (h / parent).is_dir()
            for c in (h / parent).iterdir() if c.is_dir()}


def age_s(relative: str) -> float:
    """Seconds since the cgroup at ``relative`` was made (the youngest of its hierarchies);
    infinite when there is none."""
    ages = []
    for hierarchy in hierarchies():
        try:
            ages.append(time.time() - (hierarchy / relative.strip("/")).stat().st_ctime)
        except OSError:
            continue
    return min(ages, default=float("inf"))


def remove(relative: str, wait_s: float = 2.0) -> list[Path]:
    """Remove the cgroup at ``relative`` (an OCI cgroupsPath, /sandbench/ID) from every
    hierarchy, killing what is left in it first: a container whose `create` was cut short has
    no runtime state for `delete` to act on, but its cgroups (one per v1 hierarchy) and maybe
    its init remain. Returns the cgroups removed."""
    paths = [h / relative.strip("/") for h in hierarchies()]
    paths = [p for p in paths if p.is_dir()]
    for path in paths:
        for pid in _pids(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    removed = []
    deadline = time.monotonic() + wait_s
    for path in paths:
        while True:
            try:
                path.rmdir()
                removed.append(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                # Killed tasks leave the cgroup a moment after the signal.
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
    return removed


def remove_parent(relative: str) -> list[Path]:
    """Remove the parent cgroup the runtimes made for sandbench's containers (``/sandbench``)
    from every hierarchy where it is empty: rmdir(2) refuses a cgroup with children, so another
    run's live containers keep it. Returns the cgroups removed."""
    removed = []
    for hierarchy in hierarchies():
        path = hierarchy / relative.strip("/")
        try:
            path.rmdir()
            removed.append(path)
        except OSError:  # gone already, or busy with another run's containers
            continue
    return removed


def _pids(path: Path) -> list[int]:
    try:
        return [int(line) for line in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def oom_kills(relative: str) -> int | None:
    """How many processes the OOM killer ended in the cgroup at ``relative`` (the OCI
    cgroupsPath, e.g. /sandbench/ID): v1's memory.oom_control, else v2's memory.events. None
    when neither can be read (no such cgroup, or a kernel without the counter)."""
    for path in (CGROUP_ROOT / "memory" / relative.lstrip("/") / "memory.oom_control",
                 CGROUP_ROOT / relative.lstrip("/") / "memory.events",
                 UNIFIED / relative.lstrip("/") / "memory.events"):
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
    return None
