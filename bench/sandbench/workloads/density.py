"""The density workload: N idle sandboxes held together, at several N, and what they cost.

Each case holds ``sandboxes`` copies of the footprint workload's idle probe running at once
and measures them as one; the analysis fits total host PSS against N, whose slope is the
marginal cost of one more sandbox (with a CI) and whose intercept the fixed cost. A case the
host could not hold (the memory floor reached, a sandbox that failed to start) is a failed
sample saying where it stopped and why.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from sandbench.model import Better, Case, Execution, Metric, Observe, PodFootprint, Status, Value
from sandbench.workloads.base import PROBE, Params, ParseError, Workload, probe_header
from sandbench.workloads.footprint import KIB_PER_MIB, counted_label

TOTAL_PSS = Metric("total_host_pss_mib", "MiB", Better.LOWER,
                   "PSS summed over every host process of the N sandboxes held together")
TOTAL_USS = Metric("total_host_uss_mib", "MiB", Better.LOWER,
                   "USS summed over the same processes")
AVAILABLE_DROP = Metric("available_drop_mib", "MiB", Better.LOWER,
                        "fall of the host's MemAvailable from before the first sandbox to the "
                        "measurement (other tenants move it too)")
TOTAL_POD_WORKING_SET = Metric("total_pod_working_set_mib", "MiB", Better.LOWER,
                               "the N pods' cgroup working sets together, as the kubelet "
                               "reports them (a cluster's figure where host PSS is not read)")
TOTAL_CPU = Metric("total_idle_cpu_ms_per_s", "ms/s", Better.LOWER,
                   "host CPU of the N idle sandboxes together, ms per second")

METRICS = (TOTAL_PSS, TOTAL_USS, AVAILABLE_DROP, TOTAL_CPU)
POD_METRICS = (TOTAL_POD_WORKING_SET,)
#: The label saying how many sandboxes a sample's case held together.
SANDBOXES = "sandboxes"


class DensityParams(Params):
    counts: list[int] = Field(default_factory=lambda: [1, 4, 16])
    """How many sandboxes to hold together, one case per count. 1, 4 and 16 give a slope on
    three points with 16 runsc sandboxes (about 0.7 GiB) well inside this host's memory."""

    floor_mib: int = Field(8192, ge=512)
    """Start no more sandboxes once the host's MemAvailable would fall below this many MiB:
    a third of this 24 GiB host stays free for everyone else whatever the counts."""

    settle_s: float = Field(1.0, ge=0.0, le=60.0)
    """Seconds after the last sandbox started before they are read."""

    window_s: float = Field(1.0, gt=0.0, le=60.0)
    """Seconds over which the idle CPU of all of them is read."""

    hold_s: int = Field(600, ge=10, le=3600)
    """Seconds each probe idles at most: longer than starting the largest count takes (they
    are deleted as soon as they are measured)."""

    @field_validator("counts")
    @classmethod
    def _counts(cls, counts: list[int]) -> list[int]:
        bad = [c for c in counts if not 1 <= c <= 512]
        if not counts or bad or len(set(counts)) != len(counts):
            raise ValueError(f"counts {counts!r} must be distinct whole numbers from 1 to 512, "
                             "for example [1, 4, 16]")
        return sorted(counts)


class Density(Workload):
    name = "density"
    description = "N idle sandboxes held together at several N: marginal and fixed host cost"
    params_model = DensityParams
    metrics = (*METRICS, *POD_METRICS)
    headline = ("total_host_pss_mib", "total_pod_working_set_mib")
    headline_note = "host PSS of all N sandboxes together, per N"

    def cases(self, params: Params) -> list[Case]:
        assert isinstance(params, DensityParams)
        observe = Observe(params.settle_s, params.window_s, params.floor_mib)
        return [Case(self.name, f"n{count}", [PROBE, "idle", str(params.hold_s)],
                     labels={SANDBOXES: str(count)},
                     expected=[(m, {}) for m in METRICS], observe=observe, together=count)
                for count in params.counts]

    def parse(self, case: Case, execution: Execution) -> list[Value]:
        probe_header(execution.stdout, "idle")  # the first sandbox's probe did idle
        if execution.pod_footprint is not None:
            return _pod_values(case, execution.pod_footprint)
        found = execution.footprint
        if found is None:
            why = execution.footprint_error or "the backend did not measure the sandboxes"
            return [Value(m, None, status=Status.FAILED, reason=why) for m in METRICS]
        if found.sandboxes != case.together:
            raise ParseError(f"{found.sandboxes} sandboxes were measured, not {case.together}")
        labels = {"counted": counted_label(found)}
        values = [
            Value(TOTAL_PSS, sum(p.pss_kib for p in found.processes) / KIB_PER_MIB, labels,
                  clock="host"),
            Value(TOTAL_USS, sum(p.uss_kib for p in found.processes) / KIB_PER_MIB, labels,
                  clock="host"),
        ]
        if found.available_drop_kib is not None:
            values.append(Value(AVAILABLE_DROP, found.available_drop_kib / KIB_PER_MIB,
                                clock="host /proc/meminfo"))
        if found.idle_cpu_ms_per_s is not None:
            values.append(Value(TOTAL_CPU, found.idle_cpu_ms_per_s, labels,
                                clock=f"host schedstat over {found.window_s:.2f} s"))
        return values


def _pod_values(case: Case, found: PodFootprint) -> list[Value]:
    if found.pods != case.together:
        raise ParseError(f"{found.pods} pods were measured, not {case.together}")
    values = [Value(TOTAL_POD_WORKING_SET, found.pod_working_set_kib / KIB_PER_MIB,
                    clock=found.source)]
    if found.available_drop_kib is not None:
        values.append(Value(AVAILABLE_DROP, found.available_drop_kib / KIB_PER_MIB,
                            clock=f"{found.source} (node availableBytes)"))
    if found.cpu_ms_per_s is not None:
        values.append(Value(TOTAL_CPU, found.cpu_ms_per_s, clock=f"{found.source} (pods)"))
    return values
