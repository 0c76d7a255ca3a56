"""Mounts the local OCI driver makes: one overlay root filesystem per container.

containerd's overlayfs snapshotter gives every container a fresh writable layer over the image;
doing the same here makes the local rootfs IO target the same kind of filesystem a pod has.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from sandbench.errors import RunFailed


class MountError(RunFailed):
    pass


def mount_overlay(lower: Path, upper: Path, work: Path, merged: Path) -> None:
    for path in (upper, work, merged):
        path.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    result = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MountError(f"cannot mount an overlay at {str(merged)!r}: {result.stderr.strip()}")


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root``, deepest first (the order to unmount them in)."""
    prefix = str(root.resolve())
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_all(root: Path) -> list[Path]:
    """Unmount everything at or below ``root``; lazily, so a busy mount still goes."""
    gone = []
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
        gone.append(point)
    return gone
