"""cgroup facts the local OCI runtimes depend on.

On a hybrid (v1 + unified v2) host crun refuses to run while the unified hierarchy lists any
controller in cgroup.controllers; a fresh Debian 12 machine here lists hugetlb there because no
v1 hugetlb hierarchy is mounted. Mounting one moves the controller to v1 and crun then runs.
runc works either way.
"""

from __future__ import annotations

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


def remove_empty(parent: str) -> list[Path]:
    """Remove cgroups left under ``parent`` in every v1 hierarchy (only empty ones can go)."""
    removed = []
    for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else []:
        top = hierarchy / parent
        if not top.is_dir():
            continue
        for child in sorted(top.iterdir(), reverse=True):
            if child.is_dir():
                try:
                    child.rmdir()
                    removed.append(child)
                except OSError:
                    pass
    return removed


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
