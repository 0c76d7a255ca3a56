"""A running local sandbox's cost to the host, read from the host while its probe idles.

The processes counted are those the runtime added for this sandbox, found two ways and never
by name: every process in the sandbox's cgroup (runc's and crun's container; runsc puts its
sentry, gofer and systrap stubs there too), and every process below the one the runtime
started (the native probe, QEMU and anything a wrapper forked). Memory is each process's
smaps_rollup, summed; the cgroup's own charge is read beside it, as it also holds the page
cache the sandbox caused. CPU is the ns the same processes' threads ran (schedstat) over a window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from sandbench.backends.local import proc
from sandbench.backends.local.cgroups import CGROUP_ROOT
from sandbench.facts import procmem
from sandbench.model import Execution, HostFootprint, HostProcess, Observe


@dataclass(frozen=True)
class Where:
    """Where a sandbox's host processes are: what its driver knows of it."""

    #: The processes the runtime started for it (the container's init, QEMU, the probe).
    roots: frozenset[int]
    #: Its OCI cgroupsPath (/sandbench/ID), or None for a sandbox without a cgroup.
    cgroup: str | None = None


class HoldFailed(Exception):
    """A sandbox to be held running (density) could not be started; the message says why."""


class NotMeasured(Exception):
    """The sandbox could not be measured (it had exited, no process was found)."""


def memory_cgroup(relative: str) -> Path:
    """The sandbox's memory cgroup: v1's hierarchy on this hybrid host, else the unified."""
    v1 = CGROUP_ROOT / "memory" / relative.strip("/")
    return v1 if v1.is_dir() else CGROUP_ROOT / relative.strip("/")


def _cgroup_pids(relative: str | None) -> set[int]:
    if relative is None:
        return set()
    try:
        text = (memory_cgroup(relative) / "cgroup.procs").read_text()
    except OSError:
        return set()
    return {int(word) for word in text.split()}


def _cgroup_kib(relative: str | None) -> int | None:
    if relative is None:
        return None
    path = memory_cgroup(relative)
    for name in ("memory.usage_in_bytes", "memory.current"):
        try:
            return int((path / name).read_text()) // 1024
        except (OSError, ValueError):
            continue
    return None


def processes(where: Where) -> dict[int, str]:
    """The sandbox's host processes now, each with how it was found."""
    in_cgroup = _cgroup_pids(where.cgroup)
    below = procmem.descendants(set(where.roots), procmem.all_stats())
    found = {}
    for pid in in_cgroup | below:
        found[pid] = "+".join(how for how, pids in (("cgroup", in_cgroup), ("tree", below))
                              if pid in pids)
    return found


def _cpu_ns(pids: dict[int, str]) -> tuple[int, set[int]]:
    read = {pid: procmem.read_cpu_ns(pid) for pid in pids}
    return sum(ns for ns in read.values() if ns is not None), \
        {pid for pid, ns in read.items() if ns is not None}


def measure(where: Where | Sequence[Where], observe: Observe) -> HostFootprint:
    """Read the footprint of one sandbox (or of several held together) now: CPU over
    ``observe.window_s``, then memory. Raises NotMeasured when a sandbox has no process there
    to read, or one ended while it was read."""
    places = [where] if isinstance(where, Where) else list(where)
    found: dict[int, str] = {}
    for place in places:
        mine = processes(place)
        if not mine:
            raise NotMeasured(f"no process of the sandbox was found (roots "
                              f"{sorted(place.roots)}, cgroup {place.cgroup})")
        found.update(mine)
    start_ns, _ = _cpu_ns(found)
    started = time.monotonic()
    time.sleep(observe.window_s)
    # The same processes at both ends: one that came or went in between would count
    # its whole life's CPU as the window's.
    end_ns, alive = _cpu_ns(found)
    elapsed = time.monotonic() - started
    if alive != set(found):
        raise NotMeasured(f"processes {sorted(set(found) - alive)} of the sandbox ended "
                          "during the CPU window")
    counted = []
    for pid, how in sorted(found.items()):
        memory, stat = procmem.read_memory(pid), procmem.read_stat(pid)
        if memory is None or stat is None:
            raise NotMeasured(f"process {pid} of the sandbox ended while it was measured")
        counted.append(HostProcess(pid, procmem.read_name(pid, stat.comm), how,
                                   memory.rss_kib, memory.pss_kib, memory.uss_kib))
    charged = [_cgroup_kib(p.cgroup) for p in places if p.cgroup is not None]
    cgroup = (str(memory_cgroup(places[0].cgroup)) if len(places) == 1 and places[0].cgroup
              else f"{len(charged)} sandbox cgroups" if charged else None)
    return HostFootprint(tuple(counted), cgroup,
                         sum(k for k in charged if k is not None) if charged and None not in
                         charged else None,
                         (end_ns - start_ns) / 1e6 / elapsed, elapsed, sandboxes=len(places))


def hold_and_measure(execution: Execution, pid: int, where: Where, observe: Observe,
                     release: Callable[[], None]) -> None:
    """While the sandbox whose workload is ``pid`` idles: let it settle, measure it into
    ``execution``, then ``release`` it (a SIGTERM the probe answers with a clean exit). A
    sandbox that could not be measured says why in ``footprint_error``; it is never a zero."""
    if proc.wait_exit(pid, observe.settle_s) is not None:
        execution.footprint_error = (f"the sandbox exited within the {observe.settle_s:g} s "
                                     "it was given to settle; nothing to measure")
        return
    try:
        execution.footprint = measure(where, observe)
    except (NotMeasured, OSError, procmem.ProcFormatError) as exc:
        execution.footprint_error = str(exc)
    finally:
        release()
