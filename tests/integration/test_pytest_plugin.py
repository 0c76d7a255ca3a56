"""sandbench's pytest plugin with pytest-benchmark, as a user runs it: the example benchmark
shipped in tests/benchmarks, and how many sandboxes a benchmark really starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "tests" / "benchmarks" / "test_example_sandbox.py"
COUNTING = '''
def test_count(benchmark, sandbox):
    benchmark.pedantic(sandbox.start, rounds=4)
    print(f"SANDBOXES={len(sandbox.results)} RUNTIME={sandbox.runtime}")
'''


def pytest_run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=600, check=False)


def test_the_example_benchmark_runs_on_native_and_runc(tmp_path: Path,
                                                       workload_image: object) -> None:
    out = tmp_path / "bench.json"
    result = pytest_run(str(EXAMPLE), f"--benchmark-json={out}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    benchmarks = {b["name"]: b for b in json.loads(out.read_text())["benchmarks"]}
    assert set(benchmarks) == {"test_start_latency[native]", "test_start_latency[runc]",
                               "test_syscall_getpid[native]"}
    runc = benchmarks["test_start_latency[runc]"]
    assert runc["stats"]["rounds"] == 5
    assert runc["extra_info"]["runtime"] == "runc"
    assert 0 < runc["extra_info"]["request_to_created_ms_median"] < runc["stats"]["max"] * 1000


def test_with_benchmarks_disabled_each_benchmark_still_runs_once(tmp_path: Path,
                                                                 workload_image: object) -> None:
    (tmp_path / "test_counting.py").write_text(COUNTING)
    disabled = pytest_run(str(tmp_path / "test_counting.py"), "--benchmark-disable", "-s",
                          "--rootdir", str(tmp_path), cwd=tmp_path)
    assert disabled.returncode == 0, disabled.stdout[-3000:]
    assert "SANDBOXES=1 RUNTIME=native" in disabled.stdout
    enabled = pytest_run(str(tmp_path / "test_counting.py"), "-s", "--rootdir", str(tmp_path),
                         "--sandbench-runtimes", "native,runc", cwd=tmp_path)
    assert enabled.returncode == 0, enabled.stdout[-3000:]
    assert "SANDBOXES=4 RUNTIME=native" in enabled.stdout
    assert "SANDBOXES=4 RUNTIME=runc" in enabled.stdout
    assert "test_count[runc]" in enabled.stdout


def test_the_example_with_benchmarks_disabled_is_a_smoke_test(workload_image: object) -> None:
    result = pytest_run(str(EXAMPLE), "--benchmark-disable", "-q")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 passed" in result.stdout


def test_an_unknown_runtime_fails_with_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "test_counting.py").write_text(COUNTING)
    result = pytest_run(str(tmp_path / "test_counting.py"), "--rootdir", str(tmp_path),
                        "--sandbench-runtimes", "kata", cwd=tmp_path)
    assert result.returncode == 1
    assert "unknown runtime 'kata'; known runtimes: native, runc, crun" in result.stdout
