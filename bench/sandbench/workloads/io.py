"""The io workload: fio inside the sandbox, on its root filesystem and on a host-backed volume.

The job file (workloads/io/sandbench.fio, in the image at /sandbench/sandbench.fio) runs four
jobs one after the other: sequential write then read with 1 MiB blocks, random read then write
with 4 KiB blocks. The probe first tries O_DIRECT in the target directory and sets direct=1
only where the filesystem takes it; which one ran is recorded as the ``direct_io`` value.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from sandbench.model import Better, Case, Execution, Metric, Value
from sandbench.workloads.base import PROBE, Params, ParseError, Workload, probe_header

BANDWIDTH = Metric("bandwidth", "MiB/s", Better.HIGHER, "fio bandwidth of one job")
IOPS = Metric("iops", "IOPS", Better.HIGHER, "fio operations per second of one job")
CLAT_P50 = Metric("clat_p50", "µs", Better.LOWER, "fio completion latency, median")
CLAT_P99 = Metric("clat_p99", "µs", Better.LOWER, "fio completion latency, 99th percentile")
DIRECT_IO = Metric("direct_io", "flag", Better.HIGHER,
                   "1 when O_DIRECT worked on the target and fio ran with direct=1, else 0")

JOBS = {"seqwrite": "write", "seqread": "read", "randread": "read", "randwrite": "write"}
JOB_METRICS = (BANDWIDTH, IOPS, CLAT_P50, CLAT_P99)

#: Where each target is inside every sandbox: the root filesystem, and the volume mount point.
TARGETS = {"rootfs": "/var/tmp/sandbench", "volume": "/data"}

JOB_FILE = "/sandbench/sandbench.fio"

Target = Literal["rootfs", "volume"]


class IoParams(Params):
    size_mib: int = Field(32, ge=1, le=1_048_576)
    """Size of the test file in MiB. Small in quick runs: it then fits in the page cache,
    which direct I/O bypasses but buffered I/O does not."""

    runtime_s: int = Field(1, ge=1, le=3600)
    """Seconds each of the four jobs runs (time based)."""

    ramp_s: int = Field(0, ge=0, le=600)
    """Seconds each job runs before fio starts counting."""

    iodepth: int = Field(16, ge=1, le=1024)
    """Outstanding I/Os for the random jobs (libaio); Kata's storage metric uses 8, PKB 1 or 64."""

    ioengine: Literal["libaio", "psync", "sync", "io_uring", "posixaio"] = "libaio"
    """fio's engine. libaio is asynchronous only with direct=1; that is recorded per sample."""

    # Not strict: a spec's YAML list is the tuple meant.
    targets: tuple[Target, ...] = Field(("rootfs", "volume"), strict=False)
    """Which filesystems to measure."""


class Io(Workload):
    name = "io"
    description = "fio sequential and random read/write on the root filesystem and a volume"
    params_model = IoParams
    metrics = (*JOB_METRICS, DIRECT_IO)

    def cases(self, params: Params) -> list[Case]:
        assert isinstance(params, IoParams)
        env = {
            "IOENGINE": params.ioengine, "IODEPTH": str(params.iodepth),
            "SIZE": f"{params.size_mib}M", "RUNTIME": str(params.runtime_s),
            "RAMP": str(params.ramp_s),
        }
        return [self._case(target, env) for target in params.targets]

    def _case(self, target: str, env: dict[str, str]) -> Case:
        expected = [(m, {"target": target, "job": job}) for job in JOBS for m in JOB_METRICS]
        expected.append((DIRECT_IO, {"target": target}))
        argv = [PROBE, "fio", TARGETS[target], JOB_FILE]
        return Case(self.name, target, argv, env=env, labels={"target": target}, expected=expected)

    def parse(self, case: Case, execution: Execution) -> list[Value]:
        header, rest = probe_header(execution.stdout, "fio")
        report = _fio_json(rest)
        target = case.labels["target"]
        direct = bool(header.get("direct"))
        reason = None if direct else f"O_DIRECT refused: {header.get('direct_error') or 'unknown'}"
        values = [Value(DIRECT_IO, 1.0 if direct else 0.0, {"target": target}, reason=reason)]
        for job in _jobs(report):
            values.extend(_job_values(job, target))
        return values


def _fio_json(text: str) -> dict[str, Any]:
    # fio may print notes before its JSON; the report is the first '{' at a line start.
    start = text.find("{")
    if start < 0:
        raise ParseError(f"no fio JSON in the output: {text.strip()[-200:]!r}")
    try:
        report = json.loads(text[start:])
    except json.JSONDecodeError as exc:
        raise ParseError(f"fio JSON is not valid ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(report, dict) or not isinstance(report.get("jobs"), list):
        raise ParseError("fio JSON has no jobs list")
    return report


def _jobs(report: dict[str, Any]) -> list[dict[str, Any]]:
    jobs = {j.get("jobname"): j for j in report["jobs"] if isinstance(j, dict)}
    missing = [name for name in JOBS if name not in jobs]
    if missing:
        raise ParseError(f"fio report lacks jobs {missing}; it has {sorted(map(str, jobs))}")
    for name in JOBS:
        if jobs[name].get("error"):
            raise ParseError(f"fio job {name} failed with error {jobs[name]['error']}")
    return [jobs[name] for name in JOBS]


def _job_values(job: dict[str, Any], target: str) -> list[Value]:
    name = job["jobname"]
    stats = job.get(JOBS[name])
    if not isinstance(stats, dict) or not stats.get("io_bytes"):
        raise ParseError(f"fio job {name} did no {JOBS[name]}s")
    percentiles = stats.get("clat_ns", {}).get("percentile", {})
    try:
        numbers = (stats["bw_bytes"] / 2**20, float(stats["iops"]),
                   percentiles["50.000000"] / 1e3, percentiles["99.000000"] / 1e3)
    except (KeyError, TypeError) as exc:
        raise ParseError(f"fio job {name} lacks {exc}") from exc
    labels = {"target": target, "job": name}
    return [Value(m, float(n), dict(labels), clock="fio") for m, n in zip(JOB_METRICS, numbers)]
