"""The file formats as models: the JSON Schema ``sandbench schema`` prints, and a run written
before run.json had a model (tests/data/runs/format1-local, made with the code of e9a074a),
which must still validate, report, compare and export."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from conftest import sandbench
from sandbench import formats
from sandbench.model import Sample, Status
from sandbench.nightly import compare, history
from sandbench.nightly.export import to_pytest_benchmark
from sandbench.report import build_report
from sandbench.results import RUN_FILE, SAMPLES_FILE, ResultsError, RunWriter, load_meta, load_run

FORMAT1 = Path(__file__).parent / "data" / "runs" / "format1-local"


def schema(name: str) -> Draft202012Validator:
    """The schema as the command prints it, checked to be a valid JSON Schema itself."""
    result = sandbench("schema", name)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


def errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(instance)]


def copy_of_format1(where: Path) -> Path:
    shutil.copytree(FORMAT1, where)
    return where


def rewrite(old: Path, new: Path, run_id: str) -> Path:
    """The old run's samples and metadata written again by today's RunWriter, as a new run."""
    meta = {**json.loads((old / RUN_FILE).read_text()), "run_id": run_id}
    for key in ("status", "ended_at", "format_version"):
        meta.pop(key)
    writer = RunWriter(new, meta)
    with open(old / SAMPLES_FILE, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    writer.append(Sample(**{**r, "run_id": run_id, "status": Status(r["status"])}) for r in rows)
    writer.finish("completed")
    return new


def test_schema_command_prints_both_schemas() -> None:
    run, sample = schema("run"), schema("sample")
    assert run.schema["title"].startswith("sandbench run.json")
    assert {"format_version", "run_id", "status", "started_at"} <= set(run.schema["required"])
    assert "value" in sample.schema["properties"]
    assert sandbench("schema", "index").returncode == 2


def test_a_format1_run_validates_against_the_schemas() -> None:
    assert errors(schema("run"), json.loads((FORMAT1 / RUN_FILE).read_text())) == []
    sample = schema("sample")
    lines = (FORMAT1 / SAMPLES_FILE).read_text().splitlines()
    assert lines and all(errors(sample, json.loads(line)) == [] for line in lines)


def test_the_model_writes_a_format1_run_json_back_unchanged() -> None:
    document = json.loads((FORMAT1 / RUN_FILE).read_text())
    assert formats.RunMeta.read(document).to_json() == document


def test_a_format1_run_reads_typed() -> None:
    info = load_run(FORMAT1).info
    assert info.format_version == 1 and info.status == "completed" and info.valid is True
    assert info.baseline == "native" and info.spec.runtimes == ["native", "runc"]
    assert info.metrics["request_to_workload"].better == "lower"
    assert info.runtime_facts("runc")["kind"] == "oci"


def test_a_format1_run_renders(tmp_path: Path) -> None:
    result = sandbench("report", str(FORMAT1), "-o", str(tmp_path / "report.html"),
                       "--no-embed-js")
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "report.html").read_text()
    assert "20261201T160523Z-eadb" in html and "request_to_workload" in html
    report = build_report(load_run(FORMAT1), embed_js=False)
    assert set(report.summary["runtime"]) == {"native", "runc"}


def test_a_format1_run_compares_with_a_new_run(tmp_path: Path) -> None:
    old = copy_of_format1(tmp_path / "runs" / "old")
    new = rewrite(old, tmp_path / "runs" / "new", "20261202T000000Z-beef")
    comparison = compare.compare_runs(load_run(old), load_run(new))
    assert comparison.pairs == [("native", "native"), ("runc", "runc")]
    assert comparison.gating_differences == []
    result = sandbench("compare", str(old), str(new), "--record")
    assert result.returncode == 0, result.stderr
    recorded = formats.VerdictRecord.model_validate_json((new / history.VERDICT_FILE).read_text())
    assert recorded.gate == "compared" and recorded.base.run_id == "20261201T160523Z-eadb"
    again = compare.Comparison.from_json(recorded.model_dump(mode="json"))
    assert again.to_json() == compare.Comparison.from_record(recorded).to_json()
    entries = history.load_index(tmp_path / "runs")
    assert [e.run_id for e in entries] == ["20261201T160523Z-eadb", "20261202T000000Z-beef"]
    assert entries[-1].gate == "compared" and entries[0].spec_name == "quick"
    lines = (tmp_path / "runs" / history.INDEX_FILE).read_text().splitlines()
    assert [formats.HistoryEntry.model_validate_json(line) for line in lines] == entries


def test_a_format1_run_exports(tmp_path: Path) -> None:
    document = to_pytest_benchmark(load_run(FORMAT1))
    assert document["machine_info"]["sandbench"]["backend"] == "local"
    assert document["commit_info"]["id"] == "e9a074af6788d8ff63078f2a866b298569abf7d5"
    assert {b["extra_info"]["runtime"] for b in document["benchmarks"]} == {"native", "runc"}
    result = sandbench("export", str(FORMAT1), "-o", str(tmp_path / "bench.json"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("change", "said"), [
    ({"status": 5}, "status"),
    ({"metrics": {"x": {"unit": "ms", "better": "sideways"}}}, "metrics.x.better"),
    ({"spec": {"runtimes": "runc"}}, "spec.runtimes"),
    ({"run_id": None}, "run_id"),
    ({"ended_at": "later"}, "ended_at is 'later': value error, not an iso 8601 time"),
    ({"started_at": "garbage"}, "started_at is 'garbage'"),
])
def test_run_json_that_is_not_run_metadata_is_refused(tmp_path: Path, change: dict[str, Any],
                                                      said: str) -> None:
    run_dir = copy_of_format1(tmp_path / "run")
    document = {**json.loads((run_dir / RUN_FILE).read_text()), **change}
    (run_dir / RUN_FILE).write_text(json.dumps(document))
    with pytest.raises(ResultsError, match=f"not sandbench run metadata: {said}"):
        load_meta(run_dir)


def test_keys_the_model_does_not_know_are_kept(tmp_path: Path) -> None:
    meta = {"run_id": "r1", "backend": "kubernetes", "kubevirt": {"phase_transitions": {}},
            "environment": {"clock_offsets": {"runc": {"offset_ns": 1}}, "notes": []},
            "spec": {"runtimes": ["runc"], "kubernetes": {"node": None}}}
    writer = RunWriter(tmp_path / "run", meta)
    writer.finish("completed")
    written = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    assert written["kubevirt"] == {"phase_transitions": {}}
    assert written["environment"]["clock_offsets"]["runc"]["offset_ns"] == 1
    assert written["spec"] == meta["spec"]


SAMPLE_LINE: dict[str, Any] = {
    "backend": "local", "labels": {}, "metric": "request_to_workload", "round": 1,
    "run_id": "r", "runtime": "runc", "status": "ok", "time": "2026-12-02T01:06:02.396424+00:00",
    "unit": "ms", "value": 8.8, "warmup": False, "workload": "start"}


@pytest.mark.parametrize(("change", "said"), [
    ({"time": "yesterday"}, "time is 'yesterday', not an ISO 8601 time"),
    ({"value": float("inf")}, "runc start request_to_workload round 1 has value inf"),
    ({"value": float("nan"), "status": "skipped"}, "has value nan, not a finite number"),
    ({"value": None}, "has status ok and no value"),
    ({"value": -5.0}, "lasted -5.0 ms: a measured duration is not negative"),
    ({"value": 1e300}, "lasted 1e+300 ms: longer than any sandbox may run"),
])
def test_a_sample_that_cannot_have_been_measured_is_refused(
        tmp_path: Path, change: dict[str, Any], said: str) -> None:
    run_dir = copy_of_format1(tmp_path / "run")
    with open(run_dir / SAMPLES_FILE, "a") as file:
        file.write(json.dumps({**SAMPLE_LINE, **change}) + "\n")
    with pytest.raises(ResultsError, match=re.escape(said)) as refused:
        load_run(run_dir)
    assert f"{SAMPLES_FILE}' line " in str(refused.value)
    # The otlp export of such a run ends as one line, not a traceback.
    result = sandbench("export", "--format", "otlp", str(run_dir))
    assert result.returncode == 2 and said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_values_that_are_not_measurements_are_written_as_failed(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run", {"run_id": "r", "started_at": SAMPLE_LINE["time"]})
    for i, value in enumerate([float("nan"), -1.0, None, 3.0, 2e300]):
        writer.append([Sample(**{**SAMPLE_LINE, "status": Status.OK, "value": value,
                                 "round": i + 1})])
    writer.finish("completed")
    samples = load_run(tmp_path / "run").samples
    assert list(samples["status"]) == ["failed", "failed", "failed", "ok", "failed"]
    assert samples["reason"].iloc[1].startswith(
        "not a measurement: runc start request_to_workload round 2 lasted -1.0 ms")


@pytest.mark.parametrize("damage", ["missing", "a directory"])
def test_a_run_without_its_samples_file_is_refused(tmp_path: Path, damage: str) -> None:
    run_dir = copy_of_format1(tmp_path / "run")
    (run_dir / SAMPLES_FILE).unlink()
    if damage == "a directory":
        (run_dir / SAMPLES_FILE).mkdir()
    with pytest.raises(ResultsError, match=f"{SAMPLES_FILE}' is {damage}; every run directory"):
        load_run(run_dir)
    for command in (["summary"], ["export", "--format", "openmetrics"], ["report"]):
        result = sandbench(*command, str(run_dir))
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_run_stopped_before_its_first_sample_reads_as_empty(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run", {"run_id": "r", "started_at": SAMPLE_LINE["time"]})
    writer.finish("interrupted", "stopped by Ctrl-C")
    assert load_run(tmp_path / "run").samples.empty


def test_a_completed_valid_run_with_an_empty_samples_file_is_refused(tmp_path: Path) -> None:
    run_dir = copy_of_format1(tmp_path / "run")
    (run_dir / SAMPLES_FILE).write_text("")
    with pytest.raises(ResultsError, match="is empty, yet run.json says the run completed"):
        load_run(run_dir)
