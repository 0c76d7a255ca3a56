"""Sandboxes of one case started together: one thread per sandbox, each released at its
scheduled arrival, each running the backend's whole single-sandbox lifecycle.

Every sandbox goes through exactly what a sandbox started alone goes through (create, start,
the probe's stamp, exit, delete), so a burst's phases mean what a lone start's mean. Threads,
not processes: the marks are taken by the thread that makes each request, and the runtimes'
own processes do the work; the harness's CPU over the burst is measured and recorded, so a
harness that became the bottleneck shows. Python delivers signals to the main thread only:
a Ctrl-C there stops sandboxes not yet requested, waits for those in flight (each deletes its
own sandbox on its way out, as a lone start does), and only then goes on to the run's
cleanup.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable

from sandbench.model import Burst, Clock, Execution

#: One sandbox: (sandbox id) -> its execution; deletes the sandbox on every path out.
ExecuteOne = Callable[[str], Execution]

#: Seconds threads are given to be ready before the first arrival: all of them waiting on one
#: release, so a burst is not the harness spawning threads one after another.
READY_TIMEOUT_S = 30.0


def run_burst(execute_one: ExecuteOne, sandbox_ids: list[str],
              offsets_s: list[float]) -> Burst:
    """Run one sandbox per id, the i-th requested ``offsets_s[i]`` after the burst begins."""
    assert len(sandbox_ids) == len(offsets_s)
    stop = threading.Event()
    ready = threading.Barrier(len(sandbox_ids) + 1)
    results: list[Execution | None] = [None] * len(sandbox_ids)
    begun: list[int] = []

    def one(index: int) -> None:
        try:
            ready.wait(READY_TIMEOUT_S)
        except threading.BrokenBarrierError:
            results[index] = Execution(error="not started: the burst was stopped")
            return
        delay = begun[0] / 1e9 + offsets_s[index] - time.monotonic()
        if delay > 0 and stop.wait(delay):
            results[index] = Execution(error="not started: the burst was stopped")
            return
        if stop.is_set():
            results[index] = Execution(error="not started: the burst was stopped")
            return
        try:
            results[index] = execute_one(sandbox_ids[index])
        except Exception as exc:  # a harness bug in one thread fails its sandbox, not the run
            results[index] = Execution(error=f"the harness failed: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one, args=(i,), name=f"burst-{i}", daemon=False)
               for i in range(len(sandbox_ids))]
    cpu_before = _cpu_s()
    try:
        for thread in threads:
            thread.start()
        begun.append(time.monotonic_ns())
        ready.wait(READY_TIMEOUT_S)
        for thread in threads:
            thread.join()
    finally:
        # A Ctrl-C or SIGTERM (raised here, in the main thread): requests not yet made are
        # not made; those in flight finish and delete their own sandboxes before the run's
        # cleanup looks for what is left.
        stop.set()
        ready.abort()
        for thread in threads:
            if thread.ident is not None:
                thread.join()
    wall_s = (time.monotonic_ns() - begun[0]) / 1e9
    cpu_s = _cpu_s() - cpu_before
    executions = [r if r is not None else Execution(error="the sandbox's thread ended "
                                                          "without a result")
                  for r in results]
    lateness = [_lateness(e, begun[0], offset) for e, offset in zip(executions, offsets_s)]
    return Burst(executions, cpu_s, wall_s, lateness)


def _cpu_s() -> float:
    """The harness's CPU time so far: user and system, every thread of this process (not the
    runtimes' processes it started, which are its children)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _lateness(execution: Execution, begun_ns: int, offset_s: float) -> float | None:
    request = next((m.ns for m in execution.marks
                    if m.name == "request" and m.clock == Clock.HOST_MONOTONIC), None)
    if request is None:
        return None
    return (request - begun_ns) / 1e9 - offset_s


def arrival_order(executions: list[Execution]) -> list[int]:
    """Each sandbox's position in its burst (0 for the first), in the order the requests were
    actually made (their monotonic request marks; ties and sandboxes never requested by their
    place in the schedule, the latter last)."""
    def request(index: int) -> tuple[int, int, int]:
        ns = next((m.ns for m in executions[index].marks
                   if m.name == "request" and m.clock == Clock.HOST_MONOTONIC), None)
        return (ns is None, ns or 0, index)

    ranked = sorted(range(len(executions)), key=request)
    positions = [0] * len(executions)
    for position, index in enumerate(ranked):
        positions[index] = position
    return positions
