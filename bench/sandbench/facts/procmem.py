"""What a host process holds and spends, from /proc: its memory by smaps_rollup, its CPU time.

PSS (proportional set size) charges each shared page to the processes sharing it in equal
parts, so the PSS of a set of processes adds up to what the set costs the host; USS (unique set
size: private clean + private dirty) is what the host gets back when the process ends; RSS
counts shared pages in full and overstates a set. Kata's deleted footprint CI summed PSS the
same way (of the hypervisor, virtiofsd and shim). The parsers are pure functions of the files'
text, tested on captured outputs; the readers return None for a process that is gone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


class ProcFormatError(ValueError):
    """A /proc file whose text is not what the kernel writes; the message says what."""


@dataclass(frozen=True)
class Memory:
    """One process's memory, in KiB, from /proc/PID/smaps_rollup."""

    rss_kib: int
    pss_kib: int
    #: Private_Clean + Private_Dirty: freed when the process ends.
    uss_kib: int
    swap_kib: int


def parse_smaps_rollup(text: str) -> Memory:
    """The totals of a smaps_rollup file (first line: the address range, then ``Key: N kB``)."""
    fields: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        words = rest.split()
        if len(words) == 2 and words[1] == "kB" and words[0].isdigit():
            fields[key.strip()] = int(words[0])
    missing = [k for k in ("Rss", "Pss", "Private_Clean", "Private_Dirty") if k not in fields]
    if missing:
        raise ProcFormatError(f"smaps_rollup without {', '.join(missing)}: "
                              f"{text.strip()[:80]!r}")
    return Memory(rss_kib=fields["Rss"], pss_kib=fields["Pss"],
                  uss_kib=fields["Private_Clean"] + fields["Private_Dirty"],
                  swap_kib=fields.get("Swap", 0))


@dataclass(frozen=True)
class Stat:
    """What /proc/PID/stat says that footprint needs."""

    pid: int
    comm: str
    ppid: int
    #: utime + stime, in clock ticks (os.sysconf("SC_CLK_TCK") per second).
    cpu_ticks: int


def parse_stat(text: str) -> Stat:
    """/proc/PID/stat: the comm is in parentheses and may itself hold spaces and ')'."""
    open_at, close_at = text.find("("), text.rfind(")")
    if open_at < 0 or close_at < open_at:
        raise ProcFormatError(f"/proc stat without a (comm): {text[:80]!r}")
    rest = text[close_at + 1:].split()
    # rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
    if len(rest) < 13:
        raise ProcFormatError(f"/proc stat with {len(rest) + 2} fields, not 15 or more")
    return Stat(pid=int(text[:open_at]), comm=text[open_at + 1:close_at], ppid=int(rest[1]),
                cpu_ticks=int(rest[11]) + int(rest[12]))


def parse_memory_stat(text: str) -> dict[str, int]:
    """A cgroup v1 memory.stat (or v2's): ``key value`` lines."""
    result: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            result[key] = int(value)
    return result


def read_memory(pid: int, proc: Path = PROC) -> Memory | None:
    try:
        return parse_smaps_rollup((proc / str(pid) / "smaps_rollup").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as exc:
        # ESRCH mid-read: the process exited while it was read.
        if exc.errno == 3:
            return None
        raise


def read_stat(pid: int, proc: Path = PROC) -> Stat | None:
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None


def all_stats(proc: Path = PROC) -> list[Stat]:
    """Every process's stat now; those that went while the list was read are left out."""
    stats = []
    for entry in os.listdir(proc):
        if entry.isdigit():
            stat = read_stat(int(entry), proc)
            if stat is not None:
                stats.append(stat)
    return stats


def descendants(roots: set[int], stats: list[Stat]) -> set[int]:
    """``roots`` and every process below them in the process tree."""
    children: dict[int, list[int]] = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: set[int] = set()
    todo = [r for r in roots if any(s.pid == r for s in stats)]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def parse_schedstat(text: str) -> int:
    """/proc/PID/task/TID/schedstat's first field: ns the thread ran on a CPU."""
    words = text.split()
    if len(words) != 3 or not words[0].isdigit():
        raise ProcFormatError(f"schedstat is {text.strip()[:80]!r}, not three counters")
    return int(words[0])


def read_cpu_ns(pid: int, proc: Path = PROC) -> int | None:
    """CPU time all of a process's threads have run, in ns: stat's utime+stime count ticks
    of 10 ms, too coarse for an idle sandbox over a second or two. None once it is gone."""
    try:
        tasks = os.listdir(proc / str(pid) / "task")
    except (FileNotFoundError, ProcessLookupError):
        return None
    total = 0
    for tid in tasks:
        try:
            total += parse_schedstat((proc / str(pid) / "task" / tid / "schedstat").read_text())
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended between the listing and the read
    return total


def read_name(pid: int, comm: str, proc: Path = PROC) -> str:
    """What a process is called in words: its argv[0]'s last component (runsc's processes
    all have the comm "exe"; their argv[0] says runsc-sandbox, runsc-gofer), else its comm."""
    try:
        argv0 = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return comm
    name = argv0.decode("utf-8", errors="replace").rsplit("/", 1)[-1]
    return name or comm
