"""The syscall workload: nanoseconds per operation for a fixed set of system calls.

The probe times a fixed count of each operation on CLOCK_MONOTONIC inside the sandbox, so
nothing here depends on the host's clock. clock_gettime goes through the vDSO without entering
the kernel: it is the floor the others are read against.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import Field

from sandbench.model import Better, Case, Execution, Metric, Value
from sandbench.workloads.base import PROBE, Params, ParseError, Workload, probe_header

NS_PER_OP = Metric("ns_per_op", "ns/op", Better.LOWER, "mean time of one operation in a timed loop")

#: The probe's operations, in the order it runs them.
OPERATIONS = ("getpid", "clock_gettime", "open_close", "stat", "read_4k", "write_4k", "mmap_touch")


class SyscallParams(Params):
    iterations: int = Field(100_000, ge=100, le=100_000_000)
    """Operations per timed loop. 100k keeps a loop near 10-100 ms natively, long enough
    to swamp the clock's own cost, short enough for a quick run."""


class Syscall(Workload):
    name = "syscall"
    description = "ns per system call: getpid, clock_gettime, open+close, stat, read, write, mmap"
    params_model = SyscallParams
    metrics = (NS_PER_OP,)

    def cases(self, params: Params) -> list[Case]:
        assert isinstance(params, SyscallParams)
        expected = [(NS_PER_OP, {"op": op}) for op in OPERATIONS]
        argv = [PROBE, "syscall", str(params.iterations)]
        return [Case(self.name, "syscall", argv, expected=expected)]

    def parse(self, case: Case, execution: Execution) -> list[Value]:
        header, _ = probe_header(execution.stdout, "syscall")
        results = header.get("results")
        if not isinstance(results, dict):
            raise ParseError(f"probe syscall results is {results!r}, not an object")
        return [_op_value(op, results.get(op)) for op in OPERATIONS]


def _op_value(op: str, result: Any) -> Value:
    if not isinstance(result, dict):
        raise ParseError(f"probe syscall result for {op!r} is missing")
    ns = result.get("ns_per_op")
    if not isinstance(ns, (int, float)) or not math.isfinite(ns) or ns <= 0:
        raise ParseError(f"probe syscall {op} ns_per_op is {json.dumps(ns)}, not a positive number")
    return Value(NS_PER_OP, float(ns), labels={"op": op}, clock="sandbox_monotonic")
