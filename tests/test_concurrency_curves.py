"""A burst's totals, its threads and the curves against concurrency, on hand-computed numbers
(no runtime runs here)."""

from __future__ import annotations

import _thread
import threading
import time

import numpy as np
import pandas as pd
import pytest

from sandbench.analysis import concurrency, stats
from sandbench.backends.base import Gate
from sandbench.backends.burst import arrival_order, run_burst
from sandbench.model import Burst, Clock, Execution, Status, Value
from sandbench.report.concurrency import concurrency_charts, has_curves
from sandbench.report.labels import Runtimes
from sandbench.workloads.start import Arrived, Start, burst_totals, harness_values

MS = 1_000_000


def test_the_burst_total_runs_from_the_first_request_to_the_last_workload() -> None:
    # Requests at 0, 10 and 20 ms; workloads 50, 45 and 30 ms after them: the last is the
    # first sandbox's at 50 ms, though the third was requested last.
    totals = burst_totals([Arrived(100 * MS, 50.0), Arrived(110 * MS, 45.0),
                           Arrived(120 * MS, 30.0)])
    assert [(v.metric.name, v.value) for v in totals] == [
        ("burst_to_last_workload", pytest.approx(55.0)),
        ("burst_throughput", pytest.approx(3 / 0.055))]


def test_a_sandbox_that_never_ran_fails_the_burst_with_its_reason() -> None:
    totals = burst_totals([Arrived(0, 40.0), Arrived(1 * MS, None, "runc create failed")])
    assert {v.status for v in totals} == {Status.FAILED}
    assert all(v.value is None for v in totals)
    assert totals[0].reason == "sandbox 2 of 2 never ran its workload: runc create failed"


def test_the_harness_share_is_its_cpu_over_the_burst_wall_time() -> None:
    values = {v.metric.name: v.value for v in harness_values(0.05, 0.2, [0.001, None, 0.004])}
    assert values == {"harness_cpu": pytest.approx(25.0),
                      "harness_lateness": pytest.approx(4.0)}


def test_start_makes_the_burst_values_from_its_sandboxes() -> None:
    def sandbox(request_ms: int) -> Execution:
        execution = Execution()
        execution.mark("request", Clock.HOST_MONOTONIC, request_ms * MS)
        return execution

    # Requested at 0 and 5 ms, workloads 20 and 30 ms after: the last at 35 ms.
    burst = Burst([sandbox(0), sandbox(5)], 0.01, 0.1, [0.0, 0.002])
    start = Start()
    phase = start.metrics[0]
    values = start.burst(burst, [[Value(phase, 20.0)], [Value(phase, 30.0)]])
    by_name = {v.metric.name: v.value for v in values}
    assert by_name["burst_to_last_workload"] == pytest.approx(35.0)
    assert by_name["harness_cpu"] == pytest.approx(10.0)


def test_a_burst_releases_its_sandboxes_on_schedule_and_ranks_them_by_request() -> None:
    requested: dict[str, int] = {}
    lock = threading.Lock()

    def one(sandbox_id: str, gate: Gate) -> Execution:
        if sandbox_id == "a":
            time.sleep(0.1)  # a slow set-up: the burst begins when the last is ready
        assert gate()
        execution = Execution()
        execution.mark_now("request")
        with lock:
            requested[sandbox_id] = time.monotonic_ns()
        return execution

    offsets = [0.0, 0.0, 0.15, 0.3]
    burst = run_burst(one, ["a", "b", "c", "d"], offsets)
    assert len(burst.executions) == 4 and burst.wall_s >= 0.3
    first = min(requested.values())
    assert (requested["c"] - first) / 1e9 == pytest.approx(0.15, abs=0.1)
    assert (requested["d"] - first) / 1e9 == pytest.approx(0.3, abs=0.1)
    positions = arrival_order(burst.executions)
    assert sorted(positions) == [0, 1, 2, 3] and positions[2:] == [2, 3]
    # Requests of the burst's first moment are not spread by the slow set-up of one.
    assert abs(requested["a"] - requested["b"]) / 1e9 < 0.05
    assert burst.harness_cpu_s >= 0 and all(s is not None and -0.01 < s < 0.1
                                            for s in burst.lateness_s)


def test_a_harness_error_in_one_thread_fails_that_sandbox_only() -> None:
    def one(sandbox_id: str, gate: Gate) -> Execution:
        if sandbox_id == "b":
            raise RuntimeError("boom")  # before its gate: the others must not wait for it
        assert gate()
        return Execution()

    burst = run_burst(one, ["a", "b"], [0.0, 0.0])
    assert burst.executions[0].error is None
    assert burst.executions[1].error == "the harness failed: RuntimeError: boom"
    assert arrival_order(burst.executions) == [0, 1]


def test_the_tail_quantile_bootstrap_matches_resampling() -> None:
    values = np.arange(1.0, 41.0)
    rng = np.random.default_rng(1)
    fast = concurrency.bootstrap_quantiles(values, 0.9, 20000, rng)
    brute = np.quantile(rng.choice(values, (20000, values.size)), 0.9, axis=1,
                        method="inverted_cdf")
    assert np.mean(fast) == pytest.approx(np.mean(brute), rel=0.01)
    assert np.std(fast) == pytest.approx(np.std(brute), rel=0.05)


def test_curves_per_runtime_level_and_statistic() -> None:
    rows = []
    for level, base in ((1, 10.0), (4, 20.0)):
        for i in range(1, 11):
            rows.append({"runtime": "runc", "workload": "start",
                         "metric": "request_to_workload", "unit": "ms", "status": "ok",
                         "value": base + i, "warmup": False,
                         "labels": {"concurrency": str(level), "arrival": "burst",
                                    "position": str(i % level)}})
    rows.append({"runtime": "runc", "workload": "start", "metric": "request_to_workload",
                 "unit": "ms", "status": "ok", "value": 1.0, "warmup": False, "labels": {}})
    curves = concurrency.curves(stats.measured(pd.DataFrame(rows)))
    assert set(curves["concurrency"]) == {1, 4}, "an unlabelled sample is no level"
    point = curves[(curves["concurrency"] == 4) & (curves["statistic"] == "p50")].iloc[0]
    assert point["value"] == pytest.approx(25.5) and point["n"] == 10
    assert point["ci_low"] <= 25.5 <= point["ci_high"]
    p90 = curves[(curves["concurrency"] == 1) & (curves["statistic"] == "p90")].iloc[0]
    assert p90["value"] == 19.0  # the 9th of 10, numpy's inverted CDF
    names = Runtimes(["runc"], {"runc": "runc"}, {"runc": "#000000"}, frozenset())
    assert has_curves(curves)
    assert [c.name for c in concurrency_charts(curves, names)] == ["start-concurrency-latency"]
    assert not has_curves(curves[curves["concurrency"] == 1])


def test_ctrl_c_during_set_up_lets_no_sandbox_through_its_gate() -> None:
    passed: dict[str, bool] = {}

    def one(sandbox_id: str, gate: Gate) -> Execution:
        if sandbox_id == "a":
            _thread.interrupt_main()  # Ctrl-C while this one still sets up
            time.sleep(0.3)
        passed[sandbox_id] = gate()
        return Execution()

    with pytest.raises(KeyboardInterrupt):
        run_burst(one, ["a", "b", "c"], [0.0, 0.0, 0.0])
    # Those whose threads had started got to their gates and were refused; the signal may
    # come before the others were started at all.
    assert passed["a"] is False and set(passed.values()) == {False}
