"""The syscall workload: nanoseconds per operation for a fixed set of system calls.

The probe times a fixed count of each operation on CLOCK_MONOTONIC inside the sandbox, so
nothing here depends on the host's clock. clock_gettime goes through the vDSO without entering
the kernel: it is the floor the others are read against.

open_close and stat work on the probe's own file, named relative to the directory it lives in
(its workload directory, opened once before timing): every runtime then makes the same
one-component lookup in its own copy of the image, wherever that copy is. The samples carry
that relative path as the ``path`` label, so they group across runtimes; the probe's header
says which directory it was in each sandbox. An operation the probe could not do is a failed
sample with the probe's reason, never a time for some other file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pydantic import Field

from sandbench.model import Better, Case, Execution, Metric, Status, Value
from sandbench.workloads.base import PROBE, Params, ParseError, Workload, probe_header

NS_PER_OP = Metric("ns_per_op", "ns/op", Better.LOWER, "mean time of one operation in a timed loop")

#: The probe's operations, in the order it runs them.
OPERATIONS = ("getpid", "clock_gettime", "open_close", "stat", "read_4k", "write_4k", "mmap_touch")
#: The operations on a file: the probe, by its path relative to the workload directory.
PATH_OPERATIONS = frozenset({"open_close", "stat"})
#: That path, as the probe reports it in every sandbox.
PROBE_PATH = PurePosixPath(PROBE).name


class SyscallParams(Params):
    iterations: int = Field(100_000, ge=100, le=100_000_000)
    """Operations per timed loop. 100k keeps a loop near 10-100 ms natively, long enough
    to swamp the clock's own cost, short enough for a quick run."""


class Syscall(Workload):
    name = "syscall"
    description = "ns per system call: getpid, clock_gettime, open+close, stat, read, write, mmap"
    params_model = SyscallParams
    metrics = (NS_PER_OP,)
    headline_note = "every operation"

    def cases(self, params: Params) -> list[Case]:
        assert isinstance(params, SyscallParams)
        expected = [(NS_PER_OP, _labels(op, PROBE_PATH)) for op in OPERATIONS]
        argv = [PROBE, "syscall", str(params.iterations)]
        return [Case(self.name, "syscall", argv, expected=expected)]

    def parse(self, case: Case, execution: Execution) -> list[Value]:
        header, _ = probe_header(execution.stdout, "syscall")
        results = header.get("results")
        if not isinstance(results, dict):
            raise ParseError(f"probe syscall results is {results!r}, not an object")
        where = _Where.from_header(header)
        return [_op_value(op, results.get(op), where) for op in OPERATIONS]


def _labels(op: str, path: str) -> dict[str, str]:
    return {"op": op, "path": path} if op in PATH_OPERATIONS else {"op": op}


@dataclass(frozen=True)
class _Where:
    """The file the path operations worked on, as the probe's header says."""

    #: The workload directory in this sandbox (absolute); None when the probe found none.
    directory: str | None
    #: The file, relative to it: the same in every sandbox.
    path: str | None
    #: Why the directory could not be found or opened.
    error: str | None

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> _Where:
        directory, path = header.get("dir"), header.get("path")
        if directory is None and path is None:
            # The probe could not tell where it is; its path operations failed, and say why.
            return cls(None, None, str(header.get("dir_error") or "not reported"))
        if not isinstance(path, str) or not path or "/" in path:
            raise ParseError(f"probe syscall path is {json.dumps(path)}, not a name relative "
                             "to the workload directory")
        if not isinstance(directory, str) or not directory.startswith("/"):
            raise ParseError(f"probe syscall dir is {json.dumps(directory)}, not an absolute "
                             "directory")
        return cls(directory, path, header.get("dir_error"))

    def failure(self, op: str, error: str) -> str:
        if self.directory is None:
            return f"{op}: the probe found no workload directory ({self.error})"
        if self.error:
            return f"{op} of {self.path!r} in {self.directory}: {self.error}"
        return f"{op} of {self.path!r} in {self.directory}: {error}"


def _op_value(op: str, result: Any, where: _Where) -> Value:
    if not isinstance(result, dict):
        raise ParseError(f"probe syscall result for {op!r} is missing")
    labels = _labels(op, where.path or PROBE_PATH)
    error = result.get("error")
    if error is not None:
        reason = where.failure(op, str(error)) if op in PATH_OPERATIONS else f"{op}: {error}"
        return Value(NS_PER_OP, None, labels, Status.FAILED,
                     f"{reason} (after {result.get('iterations')} iterations)")
    ns = result.get("ns_per_op")
    if not isinstance(ns, (int, float)) or not math.isfinite(ns) or ns <= 0:
        raise ParseError(f"probe syscall {op} ns_per_op is {json.dumps(ns)}, not a positive number")
    return Value(NS_PER_OP, float(ns), labels, clock="sandbox_monotonic")
