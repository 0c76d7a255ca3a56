"""Start phases from a pod's watch events, on a sequence recorded from the test cluster
(tests/data/golden/pod_watch_runc.jsonl: a runc pod running `probe start 2`)."""

from __future__ import annotations

import json

import pytest

from conftest import GOLDEN
from sandbench.backends.kubernetes.kubelet import round_ms, totals
from sandbench.backends.kubernetes.lifecycle import (PLANNED, PodFailed, PodProgress, PodRun,
                                                     observe_event, observe_pod)
from sandbench.backends.kubernetes.watcher import Seen
from sandbench.model import Clock, ClockOffset, Execution, Mark, MissingOffset
from sandbench.workloads.start import PHASES, phase_value

MS = 1_000_000


def recorded() -> list[dict[str, object]]:
    return [json.loads(line) for line in (GOLDEN / "pod_watch_runc.jsonl").read_text().splitlines()]


def test_marks_from_recorded_events_at_their_receive_times() -> None:
    progress = PodProgress(Execution(planned=PLANNED))
    progress.execution.mark("create", Clock.HOST_MONOTONIC, 0)
    events = [e for e in recorded() if e["type"] != "DELETED"]
    for index, event in enumerate(events):  # received 10 ms apart
        observe_pod(progress, Seen("pod", str(event["type"]), (index + 1) * 10 * MS,
                                   event["object"]))  # type: ignore[arg-type]
    marks = {m.name: m.ns for m in progress.execution.marks}
    # ADDED (no node) at 10, scheduled at 20, waiting at 30, running and Ready together at 40.
    assert marks == {"create": 0, "scheduled": 20 * MS, "running": 40 * MS, "ready": 40 * MS}
    assert progress.finished and progress.phase == "Succeeded"
    values = {p.metric.name: phase_value(p, progress.execution.marks, []) for p in PHASES}
    got = {k: v.value for k, v in values.items() if v is not None and v.value is not None}
    assert got == pytest.approx({"create_to_scheduled": 20.0, "scheduled_to_running": 20.0,
                                 "create_to_running": 40.0, "create_to_ready": 40.0})


def test_create_marked_late_by_a_loaded_host_is_pulled_back_to_the_watch() -> None:
    """The race of a busy host: the watch thread received ADDED and the scheduler's binding
    before the creating thread, delayed after the API answered, took its mark."""
    progress = PodProgress(Execution(planned=PLANNED))
    progress.execution.mark("create", Clock.HOST_MONOTONIC, 30 * MS)
    progress.execution.mark("create", Clock.HOST_REALTIME, 1_000_030 * MS)
    added, scheduled = recorded()[0], recorded()[1]
    observe_pod(progress, Seen("pod", "ADDED", 12 * MS, added["object"]))  # type: ignore[arg-type]
    observe_pod(progress, Seen("pod", "MODIFIED", 13 * MS, scheduled["object"]))  # type: ignore[arg-type]
    marks = {(m.name, m.clock): m.ns for m in progress.execution.marks}
    assert marks[("create", Clock.HOST_MONOTONIC)] == 12 * MS
    # The wall-clock mark moves with it, for the in-sandbox stamp.
    assert marks[("create", Clock.HOST_REALTIME)] == 1_000_012 * MS
    phase = next(p for p in PHASES if p.metric.name == "create_to_scheduled")
    value = phase_value(phase, progress.execution.marks, [])
    assert value is not None and value.value == pytest.approx(1.0)


def test_a_negative_phase_on_one_clock_is_called_a_race_not_a_clock_disagreement() -> None:
    marks = [Mark("create", Clock.HOST_MONOTONIC, 30 * MS),
             Mark("scheduled", Clock.HOST_MONOTONIC, 13 * MS)]
    phase = next(p for p in PHASES if p.metric.name == "create_to_scheduled")
    value = phase_value(phase, marks, [])
    assert value is not None and value.value is None
    assert "race in the harness" in str(value.reason)
    assert "the clocks disagree" not in str(value.reason)


def test_workload_stamp_needs_the_measured_offset() -> None:
    marks = [Mark("create", Clock.HOST_REALTIME, 1_000 * MS),
             Mark("workload", Clock.SANDBOX_REALTIME, 1_500 * MS)]
    phase = next(p for p in PHASES if p.metric.name == "create_to_workload")
    unknown = phase_value(phase, marks, [])
    assert unknown is not None and unknown.value is None and "no measured offset" in str(unknown.reason)
    offset = ClockOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, 17_078, 88_911, "exchange")
    known = phase_value(phase, marks, [offset])
    assert known is not None and known.value == pytest.approx(500.017078)


def test_deleted_pod_fails() -> None:
    last = recorded()[-1]
    with pytest.raises(PodFailed, match="deleted"):
        observe_pod(PodProgress(Execution()), Seen("pod", "DELETED", 1, last["object"]))  # type: ignore[arg-type]


def test_sandbox_failure_event_fails_at_once_with_the_clusters_words() -> None:
    event = {"type": "Warning", "reason": "FailedCreatePodSandBox", "involvedObject": {"name": "p"},
             "message": 'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to '
                        'get sandbox runtime: no runtime for "kata" is configured'}
    with pytest.raises(PodFailed, match='no runtime for "kata" is configured'):
        observe_event(PodProgress(Execution()), Seen("event", "ADDED", 1, event))


def test_unschedulable_is_remembered_not_fatal() -> None:
    progress = PodProgress(Execution())
    event = {"type": "Warning", "reason": "FailedScheduling", "involvedObject": {"name": "p"},
             "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}
    observe_event(progress, Seen("event", "ADDED", 1, event))
    assert progress.unschedulable and "node affinity/selector" in progress.unschedulable


def test_kubelet_histograms_from_a_real_scrape() -> None:
    scraped = totals((GOLDEN / "kubelet_metrics.txt").read_text())
    assert set(scraped) == {"kubelet_run_podsandbox"}
    assert scraped["kubelet_run_podsandbox"].count == 16
    before = {"kubelet_run_podsandbox": scraped["kubelet_run_podsandbox"]}
    after = {"kubelet_run_podsandbox": type(scraped["kubelet_run_podsandbox"])(
        scraped["kubelet_run_podsandbox"].sum_s + 0.125, 17)}
    assert round_ms(before, after, "kubelet_run_podsandbox") == pytest.approx(125.0)
    # Two observations in between are not one pod's: not reported.
    two = {"kubelet_run_podsandbox": type(scraped["kubelet_run_podsandbox"])(1.0, 18)}
    assert round_ms(before, two, "kubelet_run_podsandbox") is None


def test_a_missing_offset_fails_the_phase_with_its_reason() -> None:
    marks = [Mark("create", Clock.HOST_REALTIME, 1_000 * MS),
             Mark("workload", Clock.SANDBOX_REALTIME, 1_500 * MS)]
    phase = next(p for p in PHASES if p.metric.name == "create_to_workload")
    why = MissingOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME,
                        "clock offset of runc not measured: port-forward refused")
    other = MissingOffset(Clock.NODE_REALTIME, Clock.HOST_REALTIME, "not this one")
    value = phase_value(phase, marks, [], [why, other])
    assert value is not None and value.value is None
    assert value.reason == ("no measured offset between host_realtime and sandbox_realtime: "
                            "clock offset of runc not measured: port-forward refused")


def test_a_log_answered_with_no_body_is_said_so_never_none() -> None:
    """The client hands back None when the API server answers a log request with no body (a
    node whose kubelet died mid-run); a failed sample keeps the words, not a crash."""

    class Core:
        def read_namespaced_pod_log(self, *args: object, **kwargs: object) -> None:
            return None

    run = PodRun(Core(), None, "ns", {"metadata": {"name": "p"}}, 30.0)
    text = run.log()
    assert text == "(no log: the API server answered the log request with no body)"
    assert Execution(stdout=text, error="timed out").raw() == text
