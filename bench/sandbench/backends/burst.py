"""Sandboxes of one case started together: one thread per sandbox, each running the backend's
whole single-sandbox lifecycle, all invoking their runtime at the burst's schedule.

Every sandbox goes through exactly what a sandbox started alone goes through (its files made,
create, start, the probe's stamp, exit, delete), so a burst's phases mean what a lone start's
mean. Each makes its files (a bundle and its overlay mount, a VM's disks) and then waits at
the burst's gate: once every sandbox is ready the burst begins, and each invokes its runtime
at its scheduled arrival. Without the gate, the set-up of 32 bundles on a loaded 2-core host
spread the requests of one "burst" over half a second.

Threads, not processes: the marks are taken by the thread that makes each request, and the
runtimes' own processes do the work; the harness's CPU over the burst and each request's
lateness against its schedule are measured and recorded, so a harness that became the
bottleneck shows. Python delivers signals to the main thread only: a Ctrl-C there releases
the gate with "stop", so sandboxes not yet requested are not, waits for those in flight (each
deletes its own sandbox on its way out, as a lone start does), and only then goes on to the
run's cleanup.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable

from sandbench.backends.base import NOT_STARTED, Gate
from sandbench.model import Burst, Clock, Execution

#: One sandbox: (sandbox id, its gate) -> its execution; deletes the sandbox on every path out.
ExecuteOne = Callable[[str, Gate], Execution]


class Schedule:
    """The burst's gate: closed until every sandbox is ready (or has ended without getting
    there), then open to each at its offset from that moment."""

    def __init__(self, offsets_s: list[float]) -> None:
        self.offsets_s = offsets_s
        self.stop = threading.Event()
        self._ready: set[int] = set()
        self._changed = threading.Condition()
        #: When the last sandbox was ready: the burst's start, on the monotonic clock.
        self.begun_ns: int | None = None

    def ready(self, index: int) -> None:
        """Sandbox ``index`` is ready to be requested, or will never be (idempotent)."""
        with self._changed:
            if index in self._ready:
                return
            self._ready.add(index)
            if len(self._ready) == len(self.offsets_s):
                self.begun_ns = time.monotonic_ns()
                self._changed.notify_all()

    def halt(self) -> None:
        """Stop the burst: every sandbox still at the gate is told not to go on."""
        self.stop.set()
        with self._changed:
            self._changed.notify_all()

    def gate(self, index: int) -> bool:
        self.ready(index)
        with self._changed:
            self._changed.wait_for(lambda: self.begun_ns is not None or self.stop.is_set())
        if self.stop.is_set() or self.begun_ns is None:
            return False
        delay = self.begun_ns / 1e9 + self.offsets_s[index] - time.monotonic()
        return not (delay > 0 and self.stop.wait(delay)) and not self.stop.is_set()


def run_burst(execute_one: ExecuteOne, sandbox_ids: list[str],
              offsets_s: list[float]) -> Burst:
    """Run one sandbox per id, the i-th requested ``offsets_s[i]`` after every one is ready."""
    assert len(sandbox_ids) == len(offsets_s)
    schedule = Schedule(offsets_s)
    results: list[Execution | None] = [None] * len(sandbox_ids)

    def one(index: int) -> None:
        try:
            if schedule.stop.is_set():
                results[index] = Execution(error=NOT_STARTED)
                return
            results[index] = execute_one(sandbox_ids[index], lambda: schedule.gate(index))
        except Exception as exc:  # a harness bug in one thread fails its sandbox, not the run
            results[index] = Execution(error=f"the harness failed: {type(exc).__name__}: {exc}")
        finally:
            # One that ended before its gate must not hold the others back.
            schedule.ready(index)

    threads = [threading.Thread(target=one, args=(i,), name=f"burst-{i}")
               for i in range(len(sandbox_ids))]
    cpu_before, wall_before = harness_cpu_s(), time.monotonic_ns()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        # A Ctrl-C or SIGTERM (raised here, in the main thread): requests not yet made are
        # not made; those in flight finish and delete their own sandboxes before the run's
        # cleanup looks for what is left.
        if any(thread.is_alive() for thread in threads):
            schedule.halt()
        for thread in threads:
            if thread.ident is not None:
                thread.join()
    executions = [r if r is not None else Execution(error="the sandbox's thread ended "
                                                          "without a result")
                  for r in results]
    begun = schedule.begun_ns if schedule.begun_ns is not None else wall_before
    return Burst(executions, harness_cpu_s() - cpu_before,
                 (time.monotonic_ns() - wall_before) / 1e9,
                 [_lateness(e, begun, offset) for e, offset in zip(executions, offsets_s)])


def harness_cpu_s() -> float:
    """The harness's CPU time so far: user and system, every thread of this process (not the
    runtimes' processes it started, which are its children)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def request_ns(execution: Execution) -> int | None:
    """When the sandbox was requested, on the monotonic clock: its ``request`` mark (the
    runtime invoked), or on a cluster its ``create`` (the pod's first event on the watch)."""
    marks = {m.name: m.ns for m in execution.marks if m.clock == Clock.HOST_MONOTONIC}
    return marks.get("request", marks.get("create"))


def _lateness(execution: Execution, begun_ns: int, offset_s: float) -> float | None:
    request = request_ns(execution)
    return None if request is None else (request - begun_ns) / 1e9 - offset_s


def arrival_order(executions: list[Execution]) -> list[int]:
    """Each sandbox's position in its burst (0 for the first), in the order the requests were
    actually made (their monotonic request marks, a pod's create; ties and sandboxes never
    requested by their place in the schedule, the latter last)."""
    def request(index: int) -> tuple[bool, int, int]:
        ns = request_ns(executions[index])
        return (ns is None, ns or 0, index)

    ranked = sorted(range(len(executions)), key=request)
    positions = [0] * len(executions)
    for position, index in enumerate(ranked):
        positions[index] = position
    return positions
