"""The io workload: fio inside the sandbox, on its root filesystem and on a host-backed volume.

The job file (workloads/io/sandbench.fio, in the image at /sandbench/sandbench.fio) runs four
jobs one after the other: sequential write then read with 1 MiB blocks, random read then write
with 4 KiB blocks. The probe first tries O_DIRECT in the target directory and sets direct=1
only where the filesystem takes it. Which one ran is the ``direct`` label of every sample
(``true``: O_DIRECT, past the page cache; ``false``: buffered, through it), so direct and
buffered numbers are never in one comparison; a buffered sample's reason says why O_DIRECT
was refused.

Runs before the label recorded a ``direct_io`` metric (1 or 0) per target instead; they still
load, and the report says which of their rows may mix the two.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from sandbench.image.inputs import FIO_JOB_IN_IMAGE
from sandbench.model import VOLUME, Better, Case, Execution, Metric, Value
from sandbench.workloads.base import PROBE, Params, ParseError, Workload, probe_header

BANDWIDTH = Metric("bandwidth", "MiB/s", Better.HIGHER, "fio bandwidth of one job")
IOPS = Metric("iops", "IOPS", Better.HIGHER, "fio operations per second of one job")
CLAT_P50 = Metric("clat_p50", "µs", Better.LOWER, "fio completion latency, median")
CLAT_P99 = Metric("clat_p99", "µs", Better.LOWER, "fio completion latency, 99th percentile")

#: The label that says whether fio ran with O_DIRECT ("true") or buffered ("false").
DIRECT = "direct"

JOBS = {"seqwrite": "write", "seqread": "read", "randread": "read", "randwrite": "write"}
JOB_METRICS = (BANDWIDTH, IOPS, CLAT_P50, CLAT_P99)

#: Where each target is inside every sandbox: the root filesystem, and the volume mount point.
TARGETS = {"rootfs": "/var/tmp/sandbench", "volume": VOLUME}

JOB_FILE = FIO_JOB_IN_IMAGE

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
    metrics = JOB_METRICS
    # Bandwidth per job and target tells which runtime's storage path costs; IOPS of the
    # 1 MiB jobs repeats it and the latencies split it further.
    headline = (BANDWIDTH.name,)
    headline_note = "bandwidth per job and target"

    def cases(self, params: Params) -> list[Case]:
        assert isinstance(params, IoParams)
        env = {
            "IOENGINE": params.ioengine, "IODEPTH": str(params.iodepth),
            "SIZE": f"{params.size_mib}M", "RUNTIME": str(params.runtime_s),
            "RAMP": str(params.ramp_s),
        }
        return [self._case(target, env) for target in params.targets]

    def _case(self, target: str, env: dict[str, str]) -> Case:
        # Without the direct label: whether O_DIRECT works is known only once the probe ran.
        expected = [(m, {"target": target, "job": job}) for job in JOBS for m in JOB_METRICS]
        argv = [PROBE, "fio", TARGETS[target], JOB_FILE]
        # The volume is every sandbox's; a directory on the root filesystem is the case's own.
        rootfs_dirs = () if TARGETS[target] == VOLUME else (TARGETS[target],)
        return Case(self.name, target, argv, env=env, labels={"target": target},
                    expected=expected, rootfs_dirs=rootfs_dirs)

    def parse(self, case: Case, execution: Execution) -> list[Value]:
        header, rest = probe_header(execution.stdout, "fio")
        direct, reason = _direct(header)
        report = _fio_json(rest)
        target = case.labels["target"]
        return [Value(v.metric, v.value, {**v.labels, DIRECT: direct}, reason=reason,
                      clock=v.clock) for job in _jobs(report) for v in _job_values(job, target)]

    def unmeasured(self, case: Case, execution: Execution) -> list[tuple[Metric, dict[str, str]]]:
        # fio failed after the probe's header: its failures go in the rows of the mode it tried.
        try:
            direct, _ = _direct(probe_header(execution.stdout, "fio")[0])
        except ParseError:
            return case.expected
        return [(metric, {**labels, DIRECT: direct}) for metric, labels in case.expected]


def _direct(header: dict[str, Any]) -> tuple[str, str | None]:
    """The direct label from the probe's header, and why I/O was buffered when it was."""
    direct = header.get("direct")
    if not isinstance(direct, bool):
        raise ParseError(f"probe fio direct is {json.dumps(direct)}, not true or false")
    if direct:
        return "true", None
    return "false", f"buffered: O_DIRECT refused: {header.get('direct_error') or 'unknown'}"


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
