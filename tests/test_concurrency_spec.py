"""Concurrency as an axis, without running a sandbox: the spec's levels and arrival, their
flags, the plan they make, the labels that keep level 1 comparable with older runs, and bad
input refused in one line through the real command."""

from __future__ import annotations

from pathlib import Path
from statistics import mean

import pytest

from conftest import sandbench
from sandbench import runner
from sandbench.analysis import stats
from sandbench.model import comparable_labels
from sandbench.spec import (Arrival, Overrides, SpecError, load_spec, offsets_s, parse_arrival,
                            parse_levels, parse_spec)

KNOWN = {"native": "", "runc": "", "crun": ""}
START = {"runtimes": ["runc", "crun"], "workloads": {"start": {}}, "rounds": 2, "warmup": 1}


def test_the_default_is_one_sandbox_at_a_time_and_no_axis() -> None:
    spec = parse_spec(START, "test")
    assert spec.concurrency == [1] and spec.arrival == Arrival()
    assert not spec.concurrency_axis
    plan = runner.plan(spec, KNOWN)
    # Exactly the steps of a run made before concurrency existed: lone sandboxes.
    assert {step.concurrency for step in plan.steps} == {None}
    assert plan.sandboxes == len(plan.steps) == 3 * 2
    assert "burst_throughput" not in {m.name for m in plan.metrics}


def test_levels_interleave_in_every_round_and_count_their_sandboxes() -> None:
    spec = parse_spec({**START, "concurrency": [1, 4]}, "test")
    plan = runner.plan(spec, KNOWN)
    rounds = {n: [(s.concurrency, s.runtime) for s in plan.steps if s.round == n]
              for n in (1, 2, 3)}
    assert rounds[1] == [(1, "runc"), (1, "crun"), (4, "runc"), (4, "crun")]
    # The next round starts with the other level, as the runtimes alternate.
    assert rounds[2][0][0] == 4
    assert plan.sandboxes == 3 * 2 * (1 + 4)
    # A cluster's fan-out starts every id of a burst on each of its nodes; a lone run is alone.
    assert plan.started(2) == 2 * plan.sandboxes == plan.started(1) * 2
    assert runner.plan(parse_spec(START, "test"), KNOWN).started(3) == 3 * 2
    names = {m.name for m in plan.metrics}
    assert {"burst_to_last_workload", "burst_throughput", "harness_cpu"} <= names


def test_a_workload_that_cannot_run_concurrently_is_refused() -> None:
    spec = parse_spec({**START, "workloads": {"start": {}, "syscall": {}},
                       "concurrency": [1, 8]}, "test")
    with pytest.raises(SpecError, match=r"concurrency \[1, 8\]: workload 'syscall' runs one "
                                        r"sandbox at a time .* only start can"):
        runner.plan(spec, KNOWN)
    # [1] is not an axis: every workload runs as before.
    runner.plan(parse_spec({**START, "workloads": {"syscall": {}}, "concurrency": [1]},
                           "test"), KNOWN)


def test_a_backend_that_starts_one_at_a_time_refuses_levels_above_one() -> None:
    spec = parse_spec({**START, "concurrency": [4]}, "test")
    with pytest.raises(SpecError, match="starts one sandbox at a time"):
        runner.plan(spec, KNOWN, concurrent=False)


@pytest.mark.parametrize("data, message", [
    ({"concurrency": []}, "concurrency: [] names no level"),
    ({"concurrency": [0, 4]}, "concurrency: 0 is not a concurrency level: give 1 to 256"),
    ({"concurrency": [4, 4]}, "concurrency: level 4 is listed twice"),
    ({"concurrency": [1, "4"]}, "concurrency.1: '4' is not valid"),
    ({"concurrency": 4}, "concurrency: 4 is not valid"),
    ({"arrival": {"pattern": "rate"}}, "rate needs per_second"),
    ({"arrival": {"pattern": "burst", "per_second": 5}}, "per_second 5.0 is for rate and poisson"),
    ({"arrival": {"pattern": "storm"}}, "arrival.pattern: 'storm' is not valid"),
    ({"arrival": {"pattern": "rate", "per_second": 0}}, "arrival.per_second: 0 is not valid"),
    ({"arrival": {"pattern": "rate", "per_second": 5, "jitter": 1}}, "unknown key 'jitter'"),
])
def test_bad_levels_and_arrivals_in_a_spec_are_one_line(data: dict[str, object],
                                                        message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({**START, **data}, "spec.yaml")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_flags_parse_to_the_spec_keys_and_keep_the_spec_seed(tmp_path: Path) -> None:
    assert parse_levels("1, 4,16") == [1, 4, 16]
    assert parse_arrival("burst") == {"pattern": "burst"}
    assert parse_arrival("poisson:2.5") == {"pattern": "poisson", "per_second": 2.5}
    path = tmp_path / "spec.yaml"
    path.write_text("workloads: {start: {}}\narrival: {pattern: poisson, per_second: 5, "
                    "seed: 7}\n")
    spec = load_spec(path, overrides=Overrides(concurrency=[1, 8],
                                               arrival=parse_arrival("rate:20")))
    assert spec.concurrency == [1, 8]
    assert spec.arrival == Arrival(pattern="rate", per_second=20.0, seed=7)
    assert spec.arrival.label == "rate:20"


@pytest.mark.parametrize("text, message", [
    ("1,x", "'x' is not a whole number"), ("", "names no level"), (" , ", "names no level"),
])
def test_bad_concurrency_flags(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_levels(text)


@pytest.mark.parametrize("text, message", [
    ("storm", "unknown pattern 'storm'"), ("rate", "'' is not a number"),
    ("rate:fast", "'fast' is not a number"), ("poisson:inf", "'inf' is not a rate"),
    ("burst:4", "burst takes no rate"),
])
def test_bad_arrival_flags(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_arrival(text)
    assert "burst, rate:N or poisson:N" in str(caught.value) or "burst takes" in message


def test_arrival_offsets() -> None:
    assert offsets_s(Arrival(), 3) == [0.0, 0.0, 0.0]
    assert offsets_s(Arrival(pattern="rate", per_second=4), 4) == [0.0, 0.25, 0.5, 0.75]
    poisson = Arrival(pattern="poisson", per_second=10, seed=3)
    first = offsets_s(poisson, 2001, stream=1)
    assert first == offsets_s(poisson, 2001, stream=1), "seeded: the same offsets again"
    assert first != offsets_s(poisson, 2001, stream=2), "each round its own gaps"
    assert first[0] == 0.0 and first == sorted(first)
    gaps = [b - a for a, b in zip(first, first[1:])]
    assert mean(gaps) == pytest.approx(0.1, rel=0.1)


def test_level_one_shares_its_rows_with_runs_made_before_concurrency() -> None:
    alone = {"concurrency": "1", "arrival": "burst", "position": "0"}
    assert comparable_labels(alone) == {}
    assert stats.labels_key(alone) == ""
    burst = {"concurrency": "8", "arrival": "rate:20", "position": "5", "platform": "systrap"}
    assert stats.labels_key(burst) == "arrival=rate:20,concurrency=8"


@pytest.mark.parametrize("flags, message", [
    (["--concurrency", "0"], "concurrency: 0 is not a concurrency level: give 1 to 256"),
    (["--concurrency", "2,two"], "--concurrency '2,two': 'two' is not a whole number"),
    (["--arrival", "rate:x"], "--arrival 'rate:x': 'x' is not a number of sandboxes per second"),
    (["--concurrency", "1,4", "--workloads", "start,io"], "workload 'io' runs one sandbox at a"),
])
def test_bad_flags_through_the_command(tmp_path: Path, flags: list[str], message: str) -> None:
    out = tmp_path / "runs"
    result = sandbench("run", "--runtimes", "native", "--workloads", "start", "--rounds", "1",
                       "--no-report", "--out", str(out), *flags)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
