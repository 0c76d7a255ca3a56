"""Process plumbing shared by the local drivers: exact exit times and reaping.

Exit times come from a pidfd becoming readable, read the moment it does: Popen.wait(timeout)
polls with sleeps of up to 50 ms, far coarser than what is measured. A container's init is not
our child (`runc create` forks it and exits); as a child subreaper we inherit it, so its exit
status can still be collected.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt orphaned descendants (a container's init) so their exit status reaches us."""
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def wait_exit(pid: int, timeout_s: float) -> int | None:
    """Block until ``pid`` exits; its exit time on the monotonic clock (ns), or None on
    timeout or when the process is already gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(max(0.0, timeout_s) * 1000):
            return None
        return time.monotonic_ns()
    finally:
        os.close(pidfd)


def reap(pid: int) -> int | None:
    """The exit code of an exited child (or adopted orphan); None if it is not ours."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status)


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def terminate(pid: int) -> None:
    """SIGTERM: ask the process to end (an idle probe exits cleanly on it)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (a sandbox spawned with start_new_session):
    the probe and whatever it forked (fio), or a VM and its wrapper."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def end_group(child: subprocess.Popen[bytes]) -> None:
    """Kill what is left of ``child``'s process group, and reap ``child``. Until it is reaped,
    even exited, its pid names its group and no other: so the group is killed then, and never
    once it is reaped (the pid could be another's by then). What it forked dies with it
    also when it exited first."""
    if child.returncode is None:
        kill_group(child.pid)
    child.wait()


#: The signals a run turns into a clean stop (runner.py); held while a sandbox is spawned.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then act on the first that came. Spawning
    a sandbox and recording it go in one block, so a signal can never fall between them and
    leave a process nobody knows to delete. Python runs handlers in the main thread between
    bytecodes, so swapping the handlers is exact where a signal mask would not be (another
    thread would take the signal)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pending:
            handler = previous[signal.Signals(pending[0])]
            if callable(handler):
                handler(pending[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), pending[0])


def run_tool(argv: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """A short command (a runtime's create/start/delete); in its own session so a Ctrl-C at
    the terminal reaches the harness only, which then cleans up in order."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                          start_new_session=True, check=False)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def kill_dwellers(root: Path, keep: set[str]) -> list[str]:
    """SIGKILL every process working in a run directory under ``root`` that ``keep`` does not
    name (by directory name), also once the directory is deleted: a native sandbox's probe,
    and what it forked, work in their sandbox directory there, and a harness killed with
    SIGKILL leaves them running in their own session. The working directory is read through a
    pidfd opened first, so a pid reused meanwhile is never the one signalled. What was killed,
    one line each."""
    prefix = os.path.realpath(root).rstrip("/") + "/"
    killed = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            pidfd = os.pidfd_open(int(entry.name))
        except OSError:
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd").removesuffix(" (deleted)")
            run = cwd[len(prefix):].split("/")[0] if cwd.startswith(prefix) else ""
            if not run or run in keep:
                continue
            command = _command_line(entry.name)
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            killed.append(f"process {entry.name} ({command}) of dead run {run}")
        except OSError:
            continue
        finally:
            os.close(pidfd)
    return killed


def _command_line(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            argv = file.read(4096).decode(errors="replace").split("\0")
    except OSError:
        return "?"
    # The program's name, not its path in the cache: the line stays short and readable.
    return " ".join([os.path.basename(argv[0]), *argv[1:]]).strip()[:60]
