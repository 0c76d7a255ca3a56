"""Phase computation from recorded marks: hand-computed values, clocks and their offsets."""

from __future__ import annotations

import pytest

from sandbench.model import Clock, ClockOffset, Execution, Mark, Status
from sandbench.workloads import get
from sandbench.workloads.start import PHASES, phase_value

PHASE = {p.metric.name: p for p in PHASES}
MONO, REAL, SANDBOX = Clock.HOST_MONOTONIC, Clock.HOST_REALTIME, Clock.SANDBOX_REALTIME
SAME = ClockOffset(SANDBOX, REAL, 0, 0, "same kernel clock")


def test_same_clock_difference_in_ms() -> None:
    marks = [Mark("request", MONO, 1_000_000), Mark("exit", MONO, 39_500_000)]
    value = phase_value(PHASE["request_to_exit"], marks, [])
    assert value is not None and value.value == pytest.approx(38.5)
    assert value.clock == "host_monotonic"


def test_monotonic_preferred_when_both_ends_have_it() -> None:
    marks = [Mark("request", MONO, 0), Mark("request", REAL, 0),
             Mark("exit", MONO, 2_000_000), Mark("exit", REAL, 9_000_000)]
    value = phase_value(PHASE["request_to_exit"], marks, [])
    assert value is not None and value.value == pytest.approx(2.0)


def test_stamp_uses_the_measured_offset() -> None:
    offset = ClockOffset(SANDBOX, REAL, -250_000, 40_000, "ntp-style exchange")
    marks = [Mark("request", MONO, 5), Mark("request", REAL, 10_000_000),
             Mark("workload", SANDBOX, 13_250_000)]
    value = phase_value(PHASE["request_to_workload"], marks, [offset])
    assert value is not None and value.value == pytest.approx(3.0)
    assert value.clock is not None and "offset -250000±40000 ns" in value.clock


def test_unknown_offset_is_flagged_not_reported() -> None:
    marks = [Mark("request", REAL, 10), Mark("workload", SANDBOX, 20)]
    value = phase_value(PHASE["request_to_workload"], marks, [])
    assert value is not None and value.status == Status.FAILED and value.value is None
    assert "no measured offset" in (value.reason or "")


def test_negative_latency_is_invalid_not_clamped() -> None:
    marks = [Mark("request", REAL, 10_000_000), Mark("workload", SANDBOX, 9_000_000)]
    value = phase_value(PHASE["request_to_workload"], marks, [SAME])
    assert value is not None and value.status == Status.FAILED
    assert "negative latency" in (value.reason or "")


def test_phase_without_marks_does_not_apply() -> None:
    assert phase_value(PHASE["create_to_running"], [Mark("request", MONO, 1)], []) is None


def test_kubernetes_event_sequence() -> None:
    marks = [Mark("create", MONO, 0), Mark("scheduled", MONO, 12_000_000),
             Mark("running", MONO, 812_000_000), Mark("ready", MONO, 815_000_000)]
    got = {name: phase_value(PHASE[name], marks, []) for name in
           ("create_to_scheduled", "scheduled_to_running", "create_to_running", "create_to_ready")}
    assert {k: v.value for k, v in got.items() if v} == pytest.approx(
        {"create_to_scheduled": 12.0, "scheduled_to_running": 800.0,
         "create_to_running": 812.0, "create_to_ready": 815.0})


def test_failed_sandbox_names_the_phases_its_backend_would_have_measured() -> None:
    start = get("start")
    case = start.cases(start.params({}))[0]
    oci = Execution(planned=("request", "created", "start", "workload", "exit"))
    names = {m.name for m, _ in start.unmeasured(case, oci)}
    assert names == {"request_to_workload", "request_to_exit", "request_to_created",
                     "start_to_workload"}
    pod = Execution(planned=("create", "scheduled", "running", "ready"))
    names = {m.name for m, _ in start.unmeasured(case, pod)}
    assert names == {"create_to_scheduled", "scheduled_to_running", "create_to_running",
                     "create_to_workload", "create_to_ready"}


def test_the_probes_end_stamp_splits_exit_into_the_workload_and_the_floor() -> None:
    """The exit the harness sees comes after the sandbox's teardown and the harness's own
    wake-up; the probe's last stamp says where the workload itself ended."""
    execution = Execution(planned=("request", "workload", "exit"), offsets=[SAME],
                          stdout='{"probe":"start","realtime_ns":1000500000}\n'
                                 '{"probe":"end","realtime_ns":1000700000}\n')
    execution.mark("request", MONO, 0)
    execution.mark("request", REAL, 1_000_000_000)
    execution.mark("exit", MONO, 900_000)
    execution.mark("exit", REAL, 1_000_900_000)
    start = get("start")
    values = {v.metric.name: v.value for v in start.parse(start.cases(start.params({}))[0],
                                                          execution)}
    assert values["request_to_workload"] == pytest.approx(0.5)
    assert values["request_to_end"] == pytest.approx(0.7)
    assert values["end_to_exit"] == pytest.approx(0.2)
    assert values["request_to_exit"] == pytest.approx(0.9)


def test_an_older_probe_without_the_end_stamp_just_lacks_those_phases() -> None:
    execution = Execution(planned=("request", "workload", "exit"), offsets=[SAME],
                          stdout='{"probe":"start","realtime_ns":1000500000}\n')
    execution.mark("request", MONO, 0)
    execution.mark("request", REAL, 1_000_000_000)
    execution.mark("exit", MONO, 900_000)
    start = get("start")
    names = {v.metric.name for v in start.parse(start.cases(start.params({}))[0], execution)}
    assert "request_to_end" not in names and "end_to_exit" not in names
    assert "request_to_exit" in names
