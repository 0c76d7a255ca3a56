"""Mounts the local OCI driver makes: one overlay root filesystem per container.

containerd's overlayfs snapshotter gives every container a fresh writable layer over the image;
doing the same here makes the local rootfs IO target the same kind of filesystem a pod has.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sandbench.errors import RunFailed


class MountError(RunFailed):
    pass


#: Characters an overlay's directories cannot hold: mount(8) splits its options at commas and
#: reads double quotes and backslashes, overlayfs splits lowerdir at colons. Found by mounting
#: with each. Newlines and tabs do mount; control characters are refused all the same, as
#: they break the one-line logs and messages a path appears in.
OPTION_BREAKERS = {",": "a comma", ":": "a colon", '"': "a double quote", "\\": "a backslash"}


def option_breaker(path: Path) -> str | None:
    """What in ``path`` would break the overlay mount options made of it; None if nothing."""
    text = str(path.absolute())
    for char, name in OPTION_BREAKERS.items():
        if char in text:
            return name
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        return "a control character"
    return None


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
            point = mountinfo_path(line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def mountinfo_path(field: str) -> str:
    """A path as /proc/self/mountinfo writes it: octal escapes for space, tab, newline and
    backslash, everything else (UTF-8 included) as is. (unicode_escape would read the UTF-8
    bytes of a name such as café as Latin-1 and never match the mount.)"""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def unmount_all(root: Path) -> list[Path]:
    """Unmount everything at or below ``root``; lazily, so a busy mount still goes."""
    gone = []
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
        gone.append(point)
    return gone
