"""How long a report of a large run takes to render: 100,000 samples, every workload.

Measured, not asserted: compare with ``--benchmark-compare``. The aim is under 5 s.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from sandbench.report import render_report
from report_demo import samples_per_round, write_demo_run

SAMPLES = 100_000


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The demo writes a warmup round and then ``rounds`` measured ones.
    rounds = math.ceil(SAMPLES / samples_per_round()) - 1
    run_dir = write_demo_run(tmp_path_factory.mktemp("bench") / "run", rounds)
    with open(run_dir / "samples.jsonl", encoding="utf-8") as lines:
        assert sum(1 for _ in lines) >= SAMPLES
    return run_dir


def test_render_100k_samples(benchmark: Any, big_run: Path) -> None:
    out = big_run / "bench-report.html"
    path = benchmark.pedantic(render_report, args=(big_run, out), rounds=3, iterations=1)
    assert path == out and out.stat().st_size > 0
