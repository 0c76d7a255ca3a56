"""How long a report of a large run takes to render: 100,000 samples, every workload; alone,
against a baseline run of the same size, and with trends over a history of nightly runs.

Measured, not asserted: compare with ``--benchmark-compare``. The aim is under 5 s alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from sandbench.report import render_report
from report_demo import samples_per_round, write_demo_run

SAMPLES = 100_000
#: Past nights in the history, and measured rounds in each: a fortnight of quick runs.
NIGHTS = 14
NIGHT_ROUNDS = 10


def _big(directory: Path, seed: int) -> Path:
    # The demo writes a warmup round and then ``rounds`` measured ones.
    rounds = math.ceil(SAMPLES / samples_per_round()) - 1
    run_dir = write_demo_run(directory, rounds, seed=seed)
    with open(run_dir / "samples.jsonl", encoding="utf-8") as lines:
        assert sum(1 for _ in lines) >= SAMPLES
    return run_dir


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _big(tmp_path_factory.mktemp("bench") / "run", seed=0)


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _big(tmp_path_factory.mktemp("bench") / "baseline", seed=1)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    history = tmp_path_factory.mktemp("history")
    for night in range(NIGHTS):
        write_demo_run(history / f"night-{night:02d}", NIGHT_ROUNDS, seed=100 + night)
    return history


def test_render_100k_samples(benchmark: Any, big_run: Path) -> None:
    out = big_run / "bench-report.html"
    path = benchmark.pedantic(render_report, args=(big_run, out), rounds=3, iterations=1)
    assert path == out and out.stat().st_size > 0


def test_render_against_a_baseline(benchmark: Any, big_run: Path, baseline_run: Path) -> None:
    out = big_run / "bench-verdict.html"
    path = benchmark.pedantic(render_report, args=(big_run, out),
                              kwargs={"baseline": baseline_run}, rounds=3, iterations=1)
    assert "Against the baseline run" in path.read_text(encoding="utf-8")


def test_render_with_history(benchmark: Any, big_run: Path, nights: Path) -> None:
    out = big_run / "bench-trends.html"
    path = benchmark.pedantic(render_report, args=(big_run, out), kwargs={"history": nights},
                              rounds=3, iterations=1)
    assert "Trends over the history" in path.read_text(encoding="utf-8")
