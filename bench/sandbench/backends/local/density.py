"""Density: N identical sandboxes held running together, measured as one, then deleted.

The sandboxes are started one after another and none is released until all are measured, so
the host holds N at once. Before each start the host's MemAvailable is read: once the next
sandbox (priced at the dearest so far, from the fall in MemAvailable) would take it below the
case's floor, no more are started and the case fails saying where it stopped and why. A
sandbox that fails to start stops it the same way. Every sandbox started is in ``live`` from
the moment it is spawned until it is deleted, so a Ctrl-C's cleanup finds it.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from sandbench.backends.floor import stop_reason
from sandbench.backends.local import footprint, proc
from sandbench.facts import procmem
from sandbench.model import Case, Execution, Observe

MEMINFO = Path("/proc/meminfo")


@runtime_checkable
class Holding(Protocol):
    """A driver that can leave a sandbox running (native, the OCI runtimes). Both keep a
    sandbox's stdio in its directory under ``scratch``."""

    scratch: Path

    def hold(self, case: Case, sandbox_id: str, timeout_s: float) -> footprint.Where: ...

    def delete(self, sandbox_id: str) -> None: ...


def available_kib(meminfo: str | None = None) -> int:
    """The host's MemAvailable, in KiB."""
    text = meminfo if meminfo is not None else MEMINFO.read_text()
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise procmem.ProcFormatError("/proc/meminfo has no MemAvailable line")


def execute_together(driver: Holding, runtime: str, case: Case, sandbox_id: str,
                     timeout_s: float, live: set[tuple[str, str]]) -> Execution:
    """Start ``case.together`` sandboxes, hold them, measure them as one, delete them all."""
    assert case.together is not None and case.observe is not None
    wanted, observe = case.together, case.observe
    execution = Execution(labels={"sandboxes": str(wanted)})
    ids = [f"{sandbox_id}-{index:03d}" for index in range(wanted)]
    held: list[footprint.Where] = []
    deadline = time.monotonic() + timeout_s
    try:
        before = available_kib()
        for number, one in enumerate(ids):
            why = stop_reason(number, wanted, available_kib(), before, observe.floor_mib * 1024)
            if why is None and time.monotonic() > deadline:
                why = f"stopped at {number} of {wanted} sandboxes: the timeout ({timeout_s:g} s) passed"
            if why is not None:
                execution.error = why
                return execution
            live.add((runtime, one))
            try:
                held.append(driver.hold(case, one, max(deadline - time.monotonic(), 1.0)))
            except footprint.HoldFailed as exc:
                execution.error = f"sandbox {number + 1} of {wanted} failed to start: {exc}"
                return execution
        _measure(execution, held, observe, before)
    finally:
        _delete_all(driver, runtime, ids, held, live, execution)
    return execution


def _measure(execution: Execution, held: list[footprint.Where], observe: Observe,
             before: int) -> None:
    time.sleep(observe.settle_s)
    try:
        found = footprint.measure(held, observe)
    except (footprint.NotMeasured, OSError, procmem.ProcFormatError) as exc:
        execution.footprint_error = str(exc)
        return
    execution.footprint = replace(found, available_drop_kib=before - available_kib())


def _delete_all(driver: Holding, runtime: str, ids: list[str], held: list[footprint.Where],
                live: set[tuple[str, str]], execution: Execution) -> None:
    """Delete every sandbox started, keeping the first one's output (its probe header)."""
    for index, one in enumerate(ids):
        if (runtime, one) not in live:
            continue
        if index == 0:
            execution.stdout = proc.read_text(driver.scratch / one / "stdout")
            execution.stderr = proc.read_text(driver.scratch / one / "stderr")
        driver.delete(one)
        for pid in held[index].roots if index < len(held) else ():
            proc.reap(pid)
        shutil.rmtree(driver.scratch / one, ignore_errors=True)
        live.discard((runtime, one))
