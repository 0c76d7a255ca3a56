"""An example of a custom benchmark in pytest style, against fresh sandboxes.

The ``sandbox`` fixture comes from sandbench's pytest plugin; ``benchmark`` from
pytest-benchmark. Each round of ``benchmark.pedantic`` is one fresh sandbox of the runtime,
created, run to its exit and deleted; pytest-benchmark times the whole call on its clock, and
the phases sandbench measured itself go to ``extra_info``. With ``--benchmark-disable`` each
test still runs once, as a smoke test.

    pytest tests/benchmarks --benchmark-json=out.json     # then: sandbench-style comparisons
                                                          # with `pytest-benchmark compare`
"""

from __future__ import annotations

import statistics

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sandbench.pytest_plugin import Sandbox

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sandbench_runtime", ["native", "runc"])
def test_start_latency(benchmark: BenchmarkFixture, sandbox: Sandbox) -> None:
    phases = benchmark.pedantic(sandbox.start, rounds=5, warmup_rounds=1)
    assert phases["request_to_exit"] > 0
    # The harness's own phase timings of every round, beside pytest-benchmark's wall clock.
    for name in sorted({name for values in sandbox.results for name in
                        (v.metric.name for v in values)}):
        medians = [v.value for values in sandbox.results for v in values
                   if v.metric.name == name and v.value is not None]
        benchmark.extra_info[f"{name}_ms_median"] = statistics.median(medians)
    benchmark.extra_info["runtime"] = sandbox.runtime


def test_syscall_getpid(benchmark: BenchmarkFixture, sandbox: Sandbox) -> None:
    """Runs on the --sandbench-runtimes (native by default): no parametrize needed."""
    values = benchmark.pedantic(sandbox.run, args=("syscall",), kwargs={"iterations": 20000},
                                rounds=3)
    getpid = next(v for v in values if v.labels.get("op") == "getpid")
    assert getpid.value is not None and getpid.value > 0
