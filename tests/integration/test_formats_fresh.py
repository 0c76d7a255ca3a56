"""A fresh run validates against the JSON Schema ``sandbench schema`` prints, and compares
with the run kept from before run.json had a model (tests/data/runs/format1-local)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from conftest import sandbench
from sandbench.image import WorkloadImage
from sandbench.nightly import compare
from sandbench.results import RUN_FILE, SAMPLES_FILE, load_run

pytestmark = pytest.mark.integration

FORMAT1 = Path(__file__).parent.parent / "data" / "runs" / "format1-local"


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory: pytest.TempPathFactory, workload_image: WorkloadImage) -> Path:
    out = tmp_path_factory.mktemp("runs")
    result = sandbench("run", "--runtimes", "native,runc", "--workloads", "start,syscall",
                       "--rounds", "2", "--warmup", "0", "--no-report", "--out", str(out))
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: valid, but over 10% failed
    (run_dir,) = list(out.iterdir())
    return run_dir


def validator(name: str) -> Draft202012Validator:
    result = sandbench("schema", name)
    assert result.returncode == 0, result.stderr
    return Draft202012Validator(json.loads(result.stdout))


def test_run_json_validates_against_schema_run(fresh_run: Path) -> None:
    document = json.loads((fresh_run / RUN_FILE).read_text())
    assert [e.message for e in validator("run").iter_errors(document)] == []


def test_every_sample_validates_against_schema_sample(fresh_run: Path) -> None:
    sample = validator("sample")
    lines = (fresh_run / SAMPLES_FILE).read_text().splitlines()
    assert lines
    for line in lines:
        assert [e.message for e in sample.iter_errors(json.loads(line))] == [], line


def test_a_fresh_run_compares_with_the_format1_run(fresh_run: Path, tmp_path: Path) -> None:
    comparison = compare.compare_runs(load_run(FORMAT1), load_run(fresh_run))
    assert comparison.pairs == [("native", "native"), ("runc", "runc")]
    assert comparison.metrics
    result = sandbench("report", str(fresh_run), "--baseline", str(FORMAT1), "--no-embed-js",
                       "-o", str(tmp_path / "report.html"))
    assert result.returncode == 0, result.stderr
    assert "Against the baseline run 20261201T160523Z-eadb" in (tmp_path / "report.html").read_text()
