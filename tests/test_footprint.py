"""Footprint and density, on hand-computed numbers: the /proc parsers on real captured files
(a runsc sandbox's sentry and gofer, tests/data/golden/smaps), the line fit and its t-based
interval, the recommendation's quantile and margin, the density memory floor, and what the
workloads make of a measured sandbox."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from sandbench.analysis import stats
from sandbench.analysis.footprint import fit_line, recommend
from sandbench.backends.floor import stop_reason
from sandbench.backends.local.density import available_kib
from sandbench.facts import procmem
from sandbench.model import Execution, HostFootprint, HostProcess, Status
from sandbench.workloads import get

GOLDEN = Path(__file__).parent / "data" / "golden" / "smaps"


def test_smaps_rollup_of_a_runsc_sentry() -> None:
    memory = procmem.parse_smaps_rollup((GOLDEN / "runsc_sandbox_smaps_rollup.txt").read_text())
    # Rss 35988, Pss 25399, Private_Clean 6652 + Private_Dirty 8172 as the file says.
    assert memory == procmem.Memory(rss_kib=35988, pss_kib=25399, uss_kib=14824, swap_kib=0)


def test_smaps_rollup_of_a_runsc_gofer() -> None:
    memory = procmem.parse_smaps_rollup((GOLDEN / "runsc_gofer_smaps_rollup.txt").read_text())
    assert (memory.rss_kib, memory.pss_kib, memory.uss_kib) == (26116, 15846, 452 + 5132)


def test_smaps_rollup_without_its_totals_is_refused() -> None:
    with pytest.raises(procmem.ProcFormatError, match="Pss"):
        procmem.parse_smaps_rollup("00400000-7ffe [rollup]\nRss: 10 kB\n")


def test_stat_of_a_runsc_sentry() -> None:
    stat = procmem.parse_stat((GOLDEN / "runsc_sandbox_stat.txt").read_text())
    # utime 6 + stime 2 ticks; its parent was init (no subreaper in the capturing shell).
    assert (stat.pid, stat.comm, stat.ppid, stat.cpu_ticks) == (10060, "exe", 1, 8)


def test_stat_comm_may_hold_spaces_and_parentheses() -> None:
    fields = " ".join(["S", "7"] + ["0"] * 9 + ["3", "4"] + ["0"] * 5)
    stat = procmem.parse_stat(f"42 (a) b (c)) {fields}")
    assert (stat.pid, stat.comm, stat.ppid, stat.cpu_ticks) == (42, "a) b (c)", 7, 7)


def test_memory_stat_of_a_runsc_cgroup() -> None:
    stat = procmem.parse_memory_stat((GOLDEN / "runsc_memory_stat.txt").read_text())
    assert (stat["cache"], stat["rss"], stat["mapped_file"]) == (225280, 13496320, 208896)


def test_schedstat_first_field_is_ns_on_cpu() -> None:
    assert procmem.parse_schedstat("1613605 12012313 2\n") == 1613605
    with pytest.raises(procmem.ProcFormatError):
        procmem.parse_schedstat("garbage")


def test_descendants_follow_the_tree_from_the_roots_only() -> None:
    stats_ = [procmem.Stat(pid, "p", ppid, 0) for pid, ppid in
              ((1, 0), (10, 1), (11, 10), (12, 11), (20, 1), (21, 20))]
    assert procmem.descendants({10}, stats_) == {10, 11, 12}
    assert procmem.descendants({99}, stats_) == set()


def test_line_fit_by_hand() -> None:
    # x 1 2 3, y 2 4 7: slope 5/2, intercept 13/3 - 5 = -2/3, residuals 1/6 -1/3 1/6,
    # sd sqrt(1/6), slope se sd/sqrt(2), t(0.975, 1 df) = 12.7062.
    fit = fit_line([1, 2, 3], [2, 4, 7])
    assert fit is not None
    assert fit.slope == pytest.approx(2.5)
    assert fit.intercept == pytest.approx(-2 / 3)
    half = 12.7062047 * math.sqrt(1 / 6) / math.sqrt(2)
    assert (fit.slope_low, fit.slope_high) == (pytest.approx(2.5 - half), pytest.approx(2.5 + half))
    assert fit.residual_sd == pytest.approx(math.sqrt(1 / 6))


def test_line_fit_of_an_exact_line_has_no_width_and_needs_three_points() -> None:
    fit = fit_line([1, 4, 16, 16], [31.0, 46.0, 106.0, 106.0])
    assert fit is not None and fit.slope == pytest.approx(5) and fit.intercept == pytest.approx(26)
    assert fit.slope_high - fit.slope_low == pytest.approx(0, abs=1e-9)
    assert fit_line([1, 4], [1, 2]) is None
    assert fit_line([4, 4, 4], [1, 2, 3]) is None


def test_recommendation_is_the_quantile_plus_the_margin_rounded_up() -> None:
    # 1..20: numpy's 95th percentile is 19 + 0.05 * (20 - 19) = 19.05; +10% = 20.955 -> 21.
    found = recommend(np.arange(1, 21, dtype=float), quantile=0.95, margin=0.10)
    assert found is not None
    assert found.measured == pytest.approx(19.05)
    assert found.value_mib == 21
    assert found.measured_low <= found.measured <= found.measured_high <= 20
    assert recommend([5.0]) is None


def test_difference_of_identical_samples_is_nothing() -> None:
    assert stats.difference_ci([3.0, 3.0, 3.0], [3.0, 3.0, 3.0]) == (0.0, 0.0)


def test_density_stops_before_the_floor() -> None:
    mib = 1024
    # 4 started took 400 MiB of MemAvailable: the next is priced at 100 MiB.
    assert stop_reason(4, 16, 8_090 * mib, 8_490 * mib, 8_000 * mib) is not None
    assert stop_reason(4, 16, 8_200 * mib, 8_600 * mib, 8_000 * mib) is None
    why = stop_reason(0, 16, 8_000 * mib, 8_000 * mib, 8_192 * mib)
    assert why is not None and "stopped at 0 of 16" in why and "8192 MiB floor" in why
    assert available_kib("MemTotal: 24 kB\nMemAvailable:  1234 kB\n") == 1234


def _footprint(processes: list[tuple[int, int, int]], cgroup_kib: int | None) -> HostFootprint:
    return HostFootprint(tuple(HostProcess(i, "runsc-sandbox" if i else "runsc-gofer", "cgroup",
                                           rss, pss, uss) for i, (rss, pss, uss)
                               in enumerate(processes)),
                         "/sys/fs/cgroup/memory/sandbench/x" if cgroup_kib else None,
                         cgroup_kib, 0.25, 2.0)


def test_footprint_values_subtract_the_workloads_own_rss() -> None:
    workload = get("footprint")
    case = workload.cases(workload.params({}))[0]
    execution = Execution(stdout='{"probe":"idle","realtime_ns":1,"hold_s":30,"rss_kib":1024}\n',
                          footprint=_footprint([(26116, 15846, 5584), (35988, 25399, 14824)],
                                               15_000))
    values = {v.metric.name: v for v in workload.parse(case, execution)}
    assert values["host_pss_mib"].value == pytest.approx((15846 + 25399) / 1024)
    assert values["overhead_pss_mib"].value == pytest.approx((15846 + 25399 - 1024) / 1024)
    assert values["host_uss_mib"].value == pytest.approx((5584 + 14824) / 1024)
    assert values["workload_rss_mib"].value == pytest.approx(1.0)
    assert values["idle_cpu_ms_per_s"].value == pytest.approx(0.25)
    assert values["host_pss_mib"].labels == {
        "counted": "runsc-gofer (cgroup), runsc-sandbox (cgroup)"}


def test_an_unmeasured_sandbox_fails_with_the_reason_never_zero() -> None:
    workload = get("footprint")
    case = workload.cases(workload.params({}))[0]
    execution = Execution(stdout='{"probe":"idle","realtime_ns":1,"hold_s":30,"rss_kib":900}\n',
                          footprint_error="the sandbox exited within the 1 s it was given")
    values = workload.parse(case, execution)
    failed = [v for v in values if v.status == Status.FAILED]
    assert len(failed) == 5 and all(v.value is None and "exited" in (v.reason or "")
                                    for v in failed)


def test_without_a_cgroup_the_cgroup_memory_is_skipped() -> None:
    workload = get("footprint")
    case = workload.cases(workload.params({}))[0]
    execution = Execution(stdout='{"probe":"idle","realtime_ns":1,"hold_s":30,"rss_kib":700}\n',
                          footprint=_footprint([(700, 700, 700)], None))
    cgroup = [v for v in workload.parse(case, execution) if v.metric.name == "cgroup_memory_mib"]
    assert cgroup[0].status == Status.SKIPPED


def test_bad_parameters_name_the_value() -> None:
    with pytest.raises(ValidationError, match="hold_s 3 must exceed"):
        get("footprint").params({"hold_s": 3, "settle_s": 1.0, "window_s": 2.0})
    with pytest.raises(ValidationError, match=r"counts \[0, 4\]"):
        get("density").params({"counts": [0, 4]})
    params = get("density").params({"counts": [16, 1, 4]})
    assert [c.together for c in get("density").cases(params)] == [1, 4, 16]


def test_kubernetes_memory_quantities_in_mib() -> None:
    from sandbench.backends.kubernetes.overhead import quantity_mib
    from sandbench.errors import BadInput

    assert quantity_mib("130Mi") == 130
    assert quantity_mib("2Gi") == 2048
    assert quantity_mib("1048576") == 1
    assert quantity_mib("500M") == pytest.approx(500e6 / 2**20)
    with pytest.raises(BadInput, match="'13 Mi'"):
        quantity_mib("13 Mi")


#: node.k8s.io/v1 RuntimeClass as the API reference gives it: the fields a patched manifest
#: may hold, the handler a DNS label, podFixed a map of resource names to quantities.
RUNTIME_CLASS_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "handler"],
    "properties": {
        "apiVersion": {"const": "node.k8s.io/v1"}, "kind": {"const": "RuntimeClass"},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string"},
                                    "labels": {"type": "object"}}},
        "handler": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                    "maxLength": 63},
        "overhead": {"type": "object", "additionalProperties": False, "properties": {
            "podFixed": {"type": "object", "additionalProperties": {
                "type": "string",
                "pattern": r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$"}}}},
        "scheduling": {"type": "object"},
    },
}


def test_the_recommended_patch_is_a_valid_runtime_class() -> None:
    import jsonschema

    from sandbench.analysis.footprint import Recommendation
    from sandbench.backends.kubernetes.overhead import (Overhead, merge_patch,
                                                        patched_manifest)

    found = Recommendation(0.95, 40.2, 39.9, 40.6, 0.10, 12)
    row = Overhead("kata-qemu", "qemu", 320.0, "320Mi", found, 40.0)
    # 40.2 * 1.1 = 44.22 -> 45Mi; kata-qemu's declared cpu stays.
    assert merge_patch(row) == {"overhead": {"podFixed": {"memory": "45Mi"}}}
    manifest = patched_manifest(row)
    assert manifest is not None
    jsonschema.validate(manifest, RUNTIME_CLASS_SCHEMA)
    assert manifest["overhead"]["podFixed"] == {"memory": "45Mi", "cpu": "250m"}
    assert manifest["handler"] == "kata-qemu"
    assert patched_manifest(Overhead("runc", "", None, None, None, None)) is None


def test_pod_figures_from_a_kubelet_summary() -> None:
    from sandbench.backends.kubernetes.podstats import pod_footprint

    summary = {"pods": [{"podRef": {"name": "p", "namespace": "ns"},
                         "cpu": {"usageNanoCores": 2_500_000},
                         "memory": {"time": "2026-12-01T22:00:10Z", "workingSetBytes": 50 << 20},
                         "containers": [{"name": "workload",
                                         "memory": {"workingSetBytes": 1 << 20}}]}]}
    taken = 1796162410.0  # 2026-12-01T22:00:10Z
    found = pod_footprint(summary, "ns", "p", taken - 1)
    assert found is not None and found.pod_working_set_kib == 50 * 1024
    assert found.containers_kib == {"workload": 1024} and found.cpu_ms_per_s == 2.5
    # Stats taken before the pod settled are not this measurement's.
    assert pod_footprint(summary, "ns", "p", taken + 1) is None
    assert pod_footprint(summary, "ns", "other", 0) is None
    workload = get("footprint")
    case = workload.cases(workload.params({}))[0]
    execution = Execution(stdout='{"probe":"idle","realtime_ns":1,"hold_s":30,"rss_kib":700}\n',
                          pod_footprint=found)
    values = {v.metric.name: v.value for v in workload.parse(case, execution)}
    assert values["pod_overhead_mib"] == 49 and values["idle_cpu_ms_per_s"] == 2.5


def test_a_captured_kubelet_summary_of_a_pod_not_read_yet() -> None:
    import json

    from sandbench.backends.kubernetes.podstats import node_available_kib, pod_footprint

    # Captured from the test cluster 7 s after a runc pod started: the kubelet had read the
    # container (225280 bytes) but not yet the pod's cgroup (workingSetBytes 0).
    summary = json.loads((GOLDEN.parent / "kubelet_stats_summary.json").read_text())
    (pod,) = summary["pods"]
    name, namespace = pod["podRef"]["name"], pod["podRef"]["namespace"]
    assert pod_footprint(summary, namespace, name, 0) is None
    assert node_available_kib(summary) == 19485655040 // 1024
