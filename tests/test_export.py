"""pytest-benchmark's JSON from a run, read back by the real `pytest-benchmark compare`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_benchmark.stats import Stats

from conftest import sandbench
from sandbench.model import Sample, Status
from sandbench.nightly.export import ExportError, export, to_pytest_benchmark
from sandbench.results import Run, RunWriter, load_run

PYTEST_BENCHMARK = Path(sys.executable).with_name("pytest-benchmark")
STATS_FIELDS = {"min", "max", "mean", "stddev", "rounds", "median", "iqr", "q1", "q3",
                "iqr_outliers", "stddev_outliers", "outliers", "ld15iqr", "hd15iqr", "ops",
                "total", "data", "iterations"}


def sample(runtime: str, metric: str, unit: str, value: float, round_: int, *,
           workload: str = "start", labels: dict[str, str] | None = None,
           warmup: bool = False) -> Sample:
    return Sample(run_id="r", backend="local", runtime=runtime, workload=workload, metric=metric,
                  unit=unit, value=value, round=round_, warmup=warmup, status=Status.OK,
                  time="2026-01-01T00:00:00+00:00", labels=labels or {})


def make_run(path: Path, scale: float = 1.0) -> Run:
    rows = []
    for i, ms in enumerate([10.0, 11.0, 12.0, 13.0, 14.0]):
        for runtime in ("native", "runc"):
            factor = scale * (1 if runtime == "native" else 4)
            rows.append(sample(runtime, "request_to_exit", "ms", ms * factor, i + 1))
        rows.append(sample("runc", "ns_per_op", "ns/op", 100.0 + i, i + 1, workload="syscall",
                           labels={"op": "getpid"}))
        rows.append(sample("runc", "iops", "IOPS", 1000.0 * (i + 1), i + 1, workload="io",
                           labels={"job": "randread", "target": "rootfs"}))
        rows.append(sample("runc", "direct_io", "flag", 1.0, i + 1, workload="io",
                           labels={"job": "randread", "target": "rootfs"}))
    rows.append(sample("runc", "request_to_exit", "ms", 1000.0, 0, warmup=True))
    meta = {"run_id": path.name, "backend": "local", "git_commit": "abc123",
            "started_at": "2026-01-01T00:00:00+00:00",
            "host": {"hostname": "vm", "kernel": "6.1.0", "arch": "x86_64",
                     "cpu_model": "Xeon", "cores": 2, "python": "3.11.7"},
            "metrics": {"request_to_exit": {"unit": "ms", "better": "lower"},
                        "iops": {"unit": "IOPS", "better": "higher"}}}
    writer = RunWriter(path, meta)
    writer.append(rows)
    writer.finish("completed")
    return load_run(path)


def by_name(document: dict[str, object]) -> dict[str, dict[str, object]]:
    benchmarks = document["benchmarks"]
    assert isinstance(benchmarks, list)
    return {b["name"]: b for b in benchmarks}


def test_fields_are_pytest_benchmarks_own(tmp_path: Path) -> None:
    document = to_pytest_benchmark(make_run(tmp_path / "run"))
    assert set(document) == {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    assert document["commit_info"]["id"] == "abc123"
    machine = document["machine_info"]
    assert machine["node"] == "vm" and machine["release"] == "6.1.0"
    assert machine["cpu"]["brand_raw"] == "Xeon" and machine["sandbench"]["run_id"] == "run"
    for bench in document["benchmarks"]:
        assert set(bench) == {"group", "name", "fullname", "params", "param", "extra_info",
                              "options", "stats"}
        assert set(bench["stats"]) == STATS_FIELDS


def test_times_become_seconds_and_warmups_stay_out(tmp_path: Path) -> None:
    benches = by_name(to_pytest_benchmark(make_run(tmp_path / "run")))
    runc = benches["request_to_exit[runc]"]
    assert runc["stats"]["data"] == pytest.approx([0.040, 0.044, 0.048, 0.052, 0.056])
    assert runc["stats"]["median"] == pytest.approx(0.048)
    assert runc["extra_info"]["unit"] == "ms" and runc["extra_info"]["conversion"] == "ms -> s"
    assert runc["params"] == {"runtime": "runc"} and runc["stats"]["rounds"] == 5
    getpid = benches["ns_per_op[runc-getpid]"]
    assert getpid["stats"]["min"] == pytest.approx(100e-9)
    assert getpid["extra_info"]["labels"] == {"op": "getpid"}
    assert getpid["group"] == "syscall ns_per_op [op=getpid]"


def test_stats_are_computed_as_pytest_benchmark_computes_them(tmp_path: Path) -> None:
    benches = by_name(to_pytest_benchmark(make_run(tmp_path / "run")))
    stats = benches["request_to_exit[native]"]["stats"]
    reference = Stats()
    for value in stats["data"]:
        reference.update(value)
    assert {k: v for k, v in stats.items() if k not in ("data", "iterations")} == \
        pytest.approx(reference.as_dict())


def test_throughput_is_inverted_and_flags_are_left_out(tmp_path: Path) -> None:
    document = to_pytest_benchmark(make_run(tmp_path / "run"))
    iops = by_name(document)["iops[runc-randread-rootfs]"]
    assert iops["stats"]["data"] == pytest.approx([1 / 1000, 1 / 2000, 1 / 3000, 1 / 4000,
                                                   1 / 5000])
    assert "inverted" in iops["extra_info"]["conversion"]
    # ops = 1 / mean seconds per I/O: the harmonic mean of the IOPS.
    assert iops["stats"]["ops"] == pytest.approx(5 / sum(1 / (1000.0 * k) for k in range(1, 6)))
    skipped = document["machine_info"]["sandbench"]["skipped"]
    assert [(s["metric"], s["unit"]) for s in skipped] == [("direct_io", "flag")]
    assert not any(name.startswith("direct_io") for name in by_name(document))


def test_a_zero_throughput_is_left_out_and_said_so(tmp_path: Path) -> None:
    rows = [sample("runc", "bandwidth", "MiB/s", value, i + 1, workload="io",
                   labels={"job": "seqwrite", "target": "volume"})
            for i, value in enumerate([0.0, 200.0, 0.0, 400.0, 500.0])]
    writer = RunWriter(tmp_path / "zero", {"run_id": "zero", "backend": "local"})
    writer.append(rows)
    writer.finish("completed")
    document = to_pytest_benchmark(load_run(tmp_path / "zero"))
    (bandwidth,) = by_name(document).values()
    assert bandwidth["stats"]["data"] == pytest.approx([1 / 200, 1 / 400, 1 / 500])
    (note,) = document["machine_info"]["sandbench"]["skipped"]
    assert note["metric"] == "bandwidth" and note["reason"].startswith("2 value(s) <= 0 MiB/s")


def test_unknown_format_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="known formats: pytest-benchmark"):
        export(make_run(tmp_path / "run"), "asv")


def test_pytest_benchmark_compare_reads_the_exports(tmp_path: Path) -> None:
    base, new = make_run(tmp_path / "base"), make_run(tmp_path / "new", scale=1.5)
    files = []
    for run in (base, new):
        out = tmp_path / f"{run.run_id}.json"
        result = sandbench("export", "--format", "pytest-benchmark", str(run.dir), "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert "left out: runc direct_io (flag)" in result.stderr
        files.append(str(out))
    table = tmp_path / "table"
    compared = subprocess.run(
        [str(PYTEST_BENCHMARK), "compare", *files, "--group-by", "name", "--columns",
         "min,median,max,rounds", "--csv", str(table)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    assert compared.returncode == 0, compared.stderr
    output = compared.stdout
    assert "request_to_exit[runc]" in output and "ns_per_op[runc-getpid]" in output
    assert "Failed to load" not in output + compared.stderr
    # Its CSV has one row per benchmark and file, our params as its param columns.
    rows = list(csv.DictReader(open(f"{table}.csv")))
    runc = sorted(float(row["median"]) for row in rows
                  if row["name"] == "sandbench/start::request_to_exit[runc]")
    assert runc == pytest.approx([0.048, 0.072])
    assert {row["param:runtime"] for row in rows} == {"native", "runc"}


def test_export_to_stdout_is_json(tmp_path: Path) -> None:
    result = sandbench("export", str(make_run(tmp_path / "run").dir))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["version"]
