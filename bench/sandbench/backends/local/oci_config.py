"""The OCI runtime config (config.json) of one local container.

Modelled on the defaults `runc spec` writes and on what containerd gives a Kubernetes pod, so a
local runc or crun container is isolated the way a cluster's would be: its own PID, mount, IPC,
UTS and network namespaces (the network one empty: nothing inside can reach anything), a cgroup
with the spec's CPU and memory limits, masked /proc paths, the default capability set.
"""

from __future__ import annotations

from typing import Any

from sandbench.model import VOLUME

#: Docker's and containerd's default capabilities: what an unprivileged pod gets.
CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
    "/proc/scsi",
]
READONLY_PATHS = [
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
]

#: CFS period the quota is expressed in; the kernel's default.
CFS_PERIOD_US = 100_000


def _mount(destination: str, kind: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": destination, "type": kind, "source": source, "options": options}


def mounts(volume: str) -> list[dict[str, Any]]:
    return [
        _mount("/proc", "proc", "proc", []),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts",
               ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
        _mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        _mount("/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=1777"]),
        # The host-backed volume, like a hostPath or emptyDir on a node's disk.
        _mount(VOLUME, "bind", volume, ["rbind", "rw"]),
    ]


def config(*, sandbox_id: str, argv: list[str], env: dict[str, str], rootfs: str, volume: str,
           cpus: float, memory_mib: int, netns: str | None = None) -> dict[str, Any]:
    """``netns``: the path of a network namespace the container joins (its path to a peer);
    None: a new, empty one."""
    process_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", **env}
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": argv,
            "env": [f"{k}={v}" for k, v in process_env.items()],
            "cwd": "/",
            "capabilities": {k: CAPABILITIES for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": sandbox_id[:63],
        "mounts": mounts(volume),
        "linux": {
            "cgroupsPath": cgroups_path(sandbox_id),
            "resources": {
                "devices": [{"allow": False, "access": "rwm"}],
                "memory": {"limit": memory_mib * 2**20},
                "cpu": {"quota": int(cpus * CFS_PERIOD_US), "period": CFS_PERIOD_US},
            },
            "namespaces": namespaces(netns),
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    }


def namespaces(netns: str | None) -> list[dict[str, str]]:
    return [{"type": t, **({"path": netns} if t == "network" and netns else {})}
            for t in ("pid", "network", "ipc", "uts", "mount")]


#: The cgroup every container's is made under (by the runtime); removed when empty.
CGROUP_PARENT = "sandbench"


def cgroups_path(sandbox_id: str) -> str:
    """The container's cgroup, relative to each hierarchy's root."""
    return f"/{CGROUP_PARENT}/{sandbox_id}"
