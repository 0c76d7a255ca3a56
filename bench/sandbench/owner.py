"""Who owns a run, and whether that owner still lives.

A run's owner is the harness process that made it. Two things record it:

- an **owner file** (``owner.json``) in the run's scratch directory, held under an exclusive
  ``flock`` for as long as the owner runs. The kernel drops the lock when the process ends,
  however it ends (SIGKILL, OOM, a crash), so a lock that can be taken means a dead owner: this
  is what ``sandbench gc`` asks before it touches anything of a run.
- ``owner`` in run.json: pid, boot id and the process's start time, so readers (report,
  history, compare) can tell a run that is still running from one whose owner died and left
  ``status: running`` behind for good. A pid alone is not enough: pids are reused, and a reboot
  starts them again; the boot id and start time make the check exact.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

OWNER_FILE = "owner.json"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
#: A scratch directory without an owner file is a run just starting or one of a sandbench
#: before owner files; it is left alone until nothing in it has changed for this long.
UNOWNED_GRACE_S = 3600.0


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; the rest follows the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def me() -> dict[str, Any]:
    """This process as an owner: what ``alive`` checks later."""
    pid = os.getpid()
    return {"pid": pid, "boot_id": boot_id(), "start_time": start_time(pid),
            "hostname": socket.gethostname()}


def alive(owner: Any) -> bool | None:
    """Whether the recorded owner still runs: True, False, or None when this host cannot tell
    (no owner recorded, or it ran on another host)."""
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return None
    if owner.get("hostname") not in (None, socket.gethostname()):
        return None
    if owner.get("boot_id") and owner["boot_id"] != boot_id():
        return False
    started = start_time(owner["pid"])
    if started is None:
        return False
    return owner.get("start_time") in (None, started)


class OwnerLock:
    """The owner file of a directory, created and held by this process."""

    def __init__(self, directory: Path, facts: dict[str, Any] | None = None) -> None:
        self.path = directory / OWNER_FILE
        # Locked before it has its name, so nobody ever sees an owner file that is not held.
        staging = directory / f".{OWNER_FILE}.{os.getpid()}"
        self._fd: int | None = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                                       0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        text = json.dumps({**me(), **(facts or {})}, sort_keys=True) + "\n"
        os.write(self._fd, text.encode())
        os.rename(staging, self.path)
        self._identity = os.fstat(self._fd)

    def intact(self) -> bool:
        """Whether the owner file is still where it was (nobody deleted the directory)."""
        try:
            now = os.stat(self.path)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (self._identity.st_dev, self._identity.st_ino)

    def release(self) -> None:
        """Remove the owner file and drop the lock; safe to call twice."""
        if self._fd is None:
            return
        if self.intact():
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def owned_by_live_process(directory: Path) -> bool:
    """Whether a live process holds ``directory``'s owner file. A directory without one counts
    as live while it changed within UNOWNED_GRACE_S (a run starting, or an older sandbench)."""
    try:
        fd = os.open(directory / OWNER_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        try:
            return time.time() - directory.stat().st_mtime < UNOWNED_GRACE_S
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def sandbox_prefix(run_id: str) -> str:
    """What every sandbox id of run ``run_id`` starts with (then ``-`` and its number), so a
    container or cgroup found later names the run it belongs to."""
    short = run_id.replace("T", "").replace("Z", "")[-12:].lower()
    return f"sandbench-{short}"
