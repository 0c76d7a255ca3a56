"""The footprint workload: what one idle sandbox costs the host, in memory and CPU.

The probe idles (``probe idle``) and reports its own resident set as its kernel sees it; the
backend measures the sandbox from the host meanwhile (Case.observe): every host process it
added, by PSS and USS, the sandbox cgroup's charge, and the CPU the idle sandbox spends. The
overhead is what the host holds beyond what the workload itself does: host PSS minus the
workload's RSS. Natively that is close to nothing, which is why native is the floor.
"""

from __future__ import annotations

from collections import Counter

from pydantic import Field, model_validator

from sandbench.model import (Better, Case, Execution, HostFootprint, Metric, Observe,
                             PodFootprint, Status, Value)
from sandbench.workloads.base import PROBE, Params, ParseError, Workload, probe_header

KIB_PER_MIB = 1024.0

HOST_PSS = Metric("host_pss_mib", "MiB", Better.LOWER,
                  "PSS summed over the host processes the sandbox added (smaps_rollup)")
HOST_USS = Metric("host_uss_mib", "MiB", Better.LOWER,
                  "USS (private pages) summed over the same processes: freed when it ends")
CGROUP_MEMORY = Metric("cgroup_memory_mib", "MiB", Better.LOWER,
                       "the sandbox cgroup's memory charge (usage_in_bytes, page cache included)")
IDLE_CPU = Metric("idle_cpu_ms_per_s", "ms/s", Better.LOWER,
                  "host CPU of the same processes while the workload idles, ms per second")
WORKLOAD_RSS = Metric("workload_rss_mib", "MiB", Better.LOWER,
                      "the idle probe's own resident set, as the sandbox's kernel reports it")
OVERHEAD_PSS = Metric("overhead_pss_mib", "MiB", Better.LOWER,
                      "host PSS minus the workload's own RSS: what the sandbox itself costs")

POD_WORKING_SET = Metric("pod_working_set_mib", "MiB", Better.LOWER,
                         "the pod cgroup's working set, as the node's kubelet reports it")
CONTAINER_WORKING_SET = Metric("container_working_set_mib", "MiB", Better.LOWER,
                               "the workload container's working set, as the kubelet reports it")
POD_OVERHEAD = Metric("pod_overhead_mib", "MiB", Better.LOWER,
                      "pod working set minus its containers': what the sandbox itself costs, "
                      "as far as it is inside the pod's cgroup")

METRICS = (OVERHEAD_PSS, HOST_PSS, HOST_USS, CGROUP_MEMORY, IDLE_CPU, WORKLOAD_RSS)
#: What a cluster backend yields instead of the host-side figures.
POD_METRICS = (POD_OVERHEAD, POD_WORKING_SET, CONTAINER_WORKING_SET)


class FootprintParams(Params):
    settle_s: float = Field(1.0, ge=0.0, le=60.0)
    """Seconds after the workload starts before anything is read: a runtime's start-up
    allocations (the sentry's, a guest init's) settle in well under one."""

    window_s: float = Field(2.0, gt=0.0, le=60.0)
    """Seconds over which the idle CPU is read: CPU time is read in ns, so two seconds resolve
    a hundredth of a ms per second."""

    hold_s: int = Field(30, ge=1, le=3600)
    """Seconds the probe idles at most. Containers and native are released the moment they
    are measured; a VM cannot be signalled and idles for all of it, so it must cover the
    settle and window with room for a loaded host."""

    @model_validator(mode="after")
    def _hold_covers_measuring(self) -> FootprintParams:
        if self.settle_s + self.window_s >= self.hold_s:
            raise ValueError(f"hold_s {self.hold_s} must exceed settle_s + window_s "
                             f"({self.settle_s + self.window_s:g} s): the probe would stop "
                             "before it is measured")
        return self


def counted_label(footprint: HostFootprint) -> str:
    """Which processes were counted, e.g. "exe x5 (cgroup)": a label on every value."""
    kinds = Counter(f"{p.comm} ({p.found_by})" for p in footprint.processes)
    return ", ".join(f"{name} x{count}" if count > 1 else name
                     for name, count in sorted(kinds.items()))


class Footprint(Workload):
    name = "footprint"
    description = "what an idle sandbox costs the host: PSS, USS, cgroup memory, idle CPU"
    params_model = FootprintParams
    metrics = (*METRICS, *POD_METRICS)
    headline = ("overhead_pss_mib", "host_pss_mib", "pod_overhead_mib", "idle_cpu_ms_per_s")
    headline_note = "memory beyond the workload's own, and the idle CPU"

    def cases(self, params: Params) -> list[Case]:
        assert isinstance(params, FootprintParams)
        return [Case(self.name, "idle", [PROBE, "idle", str(params.hold_s)],
                     expected=[(m, {}) for m in METRICS],
                     observe=Observe(params.settle_s, params.window_s))]

    def parse(self, case: Case, execution: Execution) -> list[Value]:
        header, _ = probe_header(execution.stdout, "idle")
        rss_kib = header.get("rss_kib")
        if not isinstance(rss_kib, int) or rss_kib <= 0:
            raise ParseError(f"probe idle rss_kib is {rss_kib!r} "
                             f"({header.get('rss_error', 'no reason given')})")
        rss = Value(WORKLOAD_RSS, rss_kib / KIB_PER_MIB, clock="sandbox")
        if execution.pod_footprint is not None:
            return [rss, *pod_values(execution.pod_footprint)]
        found = execution.footprint
        if found is None:
            why = execution.footprint_error or "the backend did not measure the sandbox"
            return [rss, *(Value(m, None, status=Status.FAILED, reason=why)
                           for m in METRICS if m is not WORKLOAD_RSS)]
        return [rss, *host_values(found, rss_kib)]


def host_values(found: HostFootprint, workload_rss_kib: int) -> list[Value]:
    """The host-side values of one measured sandbox."""
    labels = {"counted": counted_label(found)}
    pss = sum(p.pss_kib for p in found.processes)
    uss = sum(p.uss_kib for p in found.processes)
    values = [
        Value(OVERHEAD_PSS, (pss - workload_rss_kib) / KIB_PER_MIB, labels, clock="host"),
        Value(HOST_PSS, pss / KIB_PER_MIB, labels, clock="host"),
        Value(HOST_USS, uss / KIB_PER_MIB, labels, clock="host"),
    ]
    if found.cgroup_memory_kib is None:
        values.append(Value(CGROUP_MEMORY, None, status=Status.SKIPPED,
                            reason="the sandbox has no cgroup of its own"))
    else:
        values.append(Value(CGROUP_MEMORY, found.cgroup_memory_kib / KIB_PER_MIB,
                            {"cgroup": found.cgroup or ""}, clock="host"))
    if found.idle_cpu_ms_per_s is not None:
        values.append(Value(IDLE_CPU, found.idle_cpu_ms_per_s, labels,
                            clock=f"host schedstat over {found.window_s:.2f} s"))
    return values


def pod_values(found: PodFootprint) -> list[Value]:
    """The values of one pod measured by its kubelet (working sets, not PSS)."""
    containers = sum(found.containers_kib.values())
    values = [
        Value(POD_OVERHEAD, (found.pod_working_set_kib - containers) / KIB_PER_MIB,
              clock=found.source),
        Value(POD_WORKING_SET, found.pod_working_set_kib / KIB_PER_MIB, clock=found.source),
        Value(CONTAINER_WORKING_SET, containers / KIB_PER_MIB, clock=found.source),
    ]
    if found.cpu_ms_per_s is not None:
        values.append(Value(IDLE_CPU, found.cpu_ms_per_s, clock=f"{found.source} (pod)"))
    return values
