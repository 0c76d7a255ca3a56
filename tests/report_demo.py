"""A synthetic run with every workload, to preview the report and to test and benchmark it.

``python tests/report_demo.py DIR [ROUNDS]`` writes one and renders its report. The
numbers are made up (lognormal around plausible medians), never to be read as results.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sandbench.model import Better, Metric, Sample, Status
from sandbench.results import RunWriter, metrics_table

#: Runtime -> how much slower than runc it is made to be.
RUNTIMES = {"runc": 1.0, "crun": 0.85, "kata": 6.0, "qemu-tcg": 40.0}
VMS = {"kata", "qemu-tcg"}
START = {"request_to_created": 40.0, "start_to_workload": 12.0, "request_to_workload": 70.0,
         "request_to_exit": 90.0}
VM_START = {"request_to_kernel": 0.3, "request_to_init": 0.6}  # fractions of request_to_workload
SYSCALLS = {"getpid": 40.0, "clock_gettime": 25.0, "open_close": 1500.0, "stat": 600.0,
            "read_4k": 900.0, "write_4k": 1800.0, "mmap_touch": 2500.0}
IO = {"bandwidth": (Better.HIGHER, "MiB/s", 900.0), "iops": (Better.HIGHER, "IOPS", 20000.0),
      "clat_p50": (Better.LOWER, "µs", 80.0), "clat_p99": (Better.LOWER, "µs", 400.0)}
JOBS = ("seqread", "seqwrite", "randread", "randwrite")


def metrics() -> list[Metric]:
    start = [Metric(m, "ms", Better.LOWER, f"{m.replace('_to_', ' to ')}")
             for m in [*START, *VM_START]]
    syscall = [Metric("ns_per_op", "ns/op", Better.LOWER, "time per system call")]
    io = [Metric(m, unit, better, f"fio {m}") for m, (better, unit, _) in IO.items()]
    return start + syscall + io


def meta(run_id: str, status: str = "completed") -> dict[str, Any]:
    runtimes: dict[str, Any] = {
        "runc": {"kind": "oci", "binary": "/usr/bin/runc", "version": "1.1.12"},
        "crun": {"kind": "oci", "binary": "/usr/bin/crun", "version": "1.14"},
        "kata": {"kind": "vm", "hypervisor": "qemu", "version": "3.2.0", "accel": "kvm"},
        "qemu-tcg": {"kind": "vm", "version": "8.2.2", "emulated": True, "accel": "tcg"},
    }
    return {
        "run_id": run_id, "sandbench_version": "0.1.0", "git_commit": "0" * 40,
        "status": status, "backend": "local", "baseline": "runc",
        "spec": {"rounds": "synthetic", "workloads": {"start": {}, "syscall": {}, "io": {}}},
        "host": {"kernel": "6.1.0-demo", "os": "Debian 12", "cpu_model": "Demo CPU @ 3 GHz",
                 "cores": 8, "memory_bytes": 32 * 2**30, "cgroup_layout": "v2"},
        "runtimes": runtimes, "metrics": metrics_table(metrics()),
        "clocks": {"host_monotonic": "CLOCK_MONOTONIC on the host"},
        "warnings": ["synthetic data: not a measurement"],
    }


def samples(run_id: str, rounds: int, seed: int = 0) -> Iterator[Sample]:
    """Rounds interleave runtimes as the runner does; round 0 is a warmup."""
    rng = np.random.default_rng(seed)
    for round_ in range(rounds + 1):
        for runtime, factor in RUNTIMES.items():
            common = Sample(run_id=run_id, backend="local", runtime=runtime, workload="",
                            metric="", unit="", value=None, round=round_, warmup=round_ == 0,
                            status=Status.OK, time="2024-06-11T00:00:00+00:00")
            for workload, metric, unit, labels, centre in _values(runtime, factor):
                value = float(centre * rng.lognormal(0.0, 0.06))
                yield replace(common, workload=workload, metric=metric, unit=unit,
                              value=value, labels=labels)
            if runtime == "kata" and round_ == 3:
                yield replace(common, workload="start", metric="request_to_workload",
                              unit="ms", status=Status.FAILED,
                              reason="sandbox did not report within 30 s",
                              raw="qemu: <timeout> waiting for vsock\n")


def _values(runtime: str, factor: float) -> Iterator[tuple[str, str, str, dict[str, str], float]]:
    vm = runtime in VMS
    for metric, ms in START.items():
        yield "start", metric, "ms", {}, ms * factor
    if vm:
        for metric, fraction in VM_START.items():
            yield "start", metric, "ms", {}, START["request_to_workload"] * factor * fraction
    for op, ns in SYSCALLS.items():
        yield "syscall", "ns_per_op", "ns/op", {"op": op}, ns * (factor if vm else 1.05)
    for target in ("rootfs", "volume"):
        for direct in ("true", "false"):
            for job in JOBS:
                for metric, (better, unit, centre) in IO.items():
                    slow = factor ** 0.5 if vm else 1.0
                    value = centre / slow if better is Better.HIGHER else centre * slow
                    labels = {"target": target, "job": job, "direct": direct}
                    yield "io", metric, unit, labels, value


def write_demo_run(run_dir: Path, rounds: int = 20, *, status: str = "completed",
                   seed: int = 0) -> Path:
    writer = RunWriter(run_dir, meta(run_dir.name, status))
    writer.append(samples(run_dir.name, rounds, seed))
    writer.finish(status, None if status == "completed" else "interrupted by the user")
    return run_dir


def samples_per_round() -> int:
    return sum(1 for runtime, factor in RUNTIMES.items() for _ in _values(runtime, factor))


def main(argv: list[str]) -> None:
    from sandbench.report.render import render_report

    run_dir = Path(argv[0])
    rounds = int(argv[1]) if len(argv) > 1 else 20
    print(render_report(write_demo_run(run_dir, rounds)))


if __name__ == "__main__":
    main(sys.argv[1:])
