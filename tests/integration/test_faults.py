"""Faults against real runs on native, runc and crun: signals at random moments, a double
Ctrl-C, SIGKILL, `gc` beside a live run, a full disk, runs racing into one --out. Nothing is
left behind, nothing ends in a traceback, no measured sample is lost.

Only the test's own runs are looked at (tests/leaks.py): the machine is shared."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import sandbench
from leaks import leftovers, private_cache, stop_at_random
from sandbench.backends.local import mounts
from sandbench.image import WorkloadImage
from sandbench.results import load_run

pytestmark = pytest.mark.integration

#: The signal test stops starting new runs after this long, whatever the count.
SIGNAL_BUDGET_S = 180.0


@pytest.fixture
def cache(tmp_path: Path, workload_image: WorkloadImage,
          sandbench_cache: Path) -> Iterator[Path]:
    private = private_cache(sandbench_cache, tmp_path / "cache")
    yield private
    # A failed test's own mounts would keep pytest from removing its directory.
    mounts.unmount_all(private)


def _start(cache: Path, out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbench", "run", "--workloads", "start", "--out", str(out),
         "--no-report", "--cache-dir", str(cache), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_samples(out: Path, count: int, timeout_s: float = 120) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for samples in out.glob("*/samples.jsonl"):
            if sum(1 for _ in open(samples)) >= count:
                return samples.parent
        time.sleep(0.05)
    raise AssertionError(f"no run in {out} reached {count} samples")


def test_signals_at_random_times_leave_nothing(cache: Path, tmp_path: Path) -> None:
    rng = random.Random(20261201)
    out = tmp_path / "runs"
    out.mkdir()
    tried = []
    began = time.monotonic()
    while len(tried) < 12 and time.monotonic() - began < SIGNAL_BUDGET_S:
        stopped = stop_at_random(cache, out, rng)
        tried.append(stopped)
        assert stopped.returncode == 130, stopped.stderr[-3000:]
        assert "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
        left = leftovers(cache, out)
        assert left == [], f"after signal {stopped.signum} at {stopped.after_s:.2f} s: {left}"
    # How many fit in the budget depends on the host's load; a few are enough to fail on a
    # leak here, and tests/benchmarks/signal_leaks.py sends a hundred.
    assert len(tried) >= 3
    # A run stopped before its first sandbox leaves no run directory at all.
    for run in out.iterdir():
        assert load_run(run).meta["status"] == "interrupted"


def test_double_ctrl_c_ends_interrupted_and_says_what_is_left(cache: Path,
                                                            tmp_path: Path) -> None:
    rng = random.Random(7)
    for attempt in range(4):
        out = tmp_path / f"runs{attempt}"
        out.mkdir()
        stopped = stop_at_random(cache, out, rng, latest_s=1.0, after_samples=3,
                                 second_signal=True)
        assert stopped.returncode == 130, stopped.stderr[-3000:]
        assert "Aborted!" not in stopped.stderr and "Traceback" not in stopped.stderr
        for run in out.iterdir():
            assert load_run(run).meta["status"] == "interrupted"
        if "cleanup was skipped" in stopped.stderr:
            assert "sandbench gc" in stopped.stderr
            result = sandbench("gc", "--cache-dir", str(cache))
            assert result.returncode == 0, result.stderr
        assert leftovers(cache, out) == []


def test_sigkill_reads_as_crashed_and_gc_beside_a_live_run_takes_only_its_leftovers(
        cache: Path, tmp_path: Path) -> None:
    dead_out, live_out = tmp_path / "dead", tmp_path / "live"
    killed = _start(cache, dead_out, "--runtimes", "runc,crun", "--rounds", "200")
    dead_run = _wait_for_samples(dead_out, 30)
    killed.kill()
    killed.communicate()
    live = _start(cache, live_out, "--runtimes", "native,runc,crun", "--rounds", "12")
    live_run = _wait_for_samples(live_out, 6)

    assert load_run(dead_run).meta["status"] == "crashed"
    listed = sandbench("history", str(dead_out))
    assert "crashed" in listed.stdout, listed.stdout + listed.stderr
    compared = sandbench("compare", str(dead_run), str(dead_run))
    assert "is crashed" in compared.stderr, compared.stderr

    result = sandbench("gc", "--cache-dir", str(cache))
    assert result.returncode == 0, result.stderr
    deleted = [line for line in result.stdout.splitlines() if line.startswith("deleted ")]
    assert any(dead_run.name in line for line in deleted), result.stdout
    assert not any(live_run.name in line for line in deleted), result.stdout
    assert leftovers(cache, dead_out) == []

    stdout, stderr = live.communicate(timeout=300)
    assert live.returncode == 0, stderr[-3000:]
    run = load_run(live_run)
    assert run.meta["status"] == "completed" and run.meta["valid"] is True
    assert (run.samples["status"] == "ok").all(), run.samples.query("status != 'ok'")["reason"]
    assert leftovers(cache, live_out) == []


def _probes_in(cache: Path) -> list[int]:
    """Native probes working in the cache's scratch directory (leaks.py looks the same way)."""
    scratch = str((cache / "scratch").resolve())
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "cwd").startswith(scratch):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_gc_ends_the_probes_a_sigkilled_density_run_left_running(cache: Path,
                                                                 tmp_path: Path) -> None:
    spec = tmp_path / "density.yaml"
    spec.write_text("runtimes: [native]\nrounds: 1\nwarmup: 0\nworkloads:\n"
                    "  density: {params: {counts: [3], settle_s: 60}}\n")
    out = tmp_path / "runs"
    killed = subprocess.Popen(
        [sys.executable, "-m", "sandbench", "run", str(spec), "--out", str(out), "--no-report",
         "--cache-dir", str(cache)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + 120
    while len(_probes_in(cache)) < 3 and time.monotonic() < deadline:
        assert killed.poll() is None, killed.communicate()[1][-3000:]
        time.sleep(0.1)
    killed.kill()
    killed.communicate()
    probes = _probes_in(cache)
    assert len(probes) >= 3  # in their own sessions: SIGKILL of the harness leaves them

    result = sandbench("gc", "--cache-dir", str(cache))
    assert result.returncode == 0, result.stderr
    assert sum("process" in line and "dead run" in line
               for line in result.stdout.splitlines()) >= 3, result.stdout
    deadline = time.monotonic() + 10
    while _probes_in(cache) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _probes_in(cache) == []
    assert leftovers(cache, out) == []


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_one_line_and_loses_no_sample(cache: Path, full_disk: Path) -> None:
    result = sandbench("run", "--workloads", "start", "--runtimes", "native", "--rounds",
                       "5000", "--out", str(full_disk), "--no-report", "--cache-dir", str(cache))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot" in last and str(full_disk) in last and "disk is full" in last, last
    (run_dir,) = [p for p in full_disk.iterdir() if p.is_dir()]
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "failed" and "disk is full" in meta["status_reason"]
    assert not (run_dir / "run.json.tmp").exists()
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]  # every line whole
    # A sandbox's output is written after its samples: every kept output has its samples.
    saved = {f"outputs/{p.name}" for p in (run_dir / "outputs").iterdir()}
    assert saved <= {s["output"] for s in samples}
    assert leftovers(cache, full_disk) == []


def test_parallel_runs_into_one_out_never_share_a_directory(cache: Path,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "runs"
    runs = [_start(cache, out, "--runtimes", "native", "--rounds", "3") for _ in range(4)]
    for child in runs:
        _, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr[-3000:]
    dirs = sorted(out.iterdir())
    assert len(dirs) == 4
    for run_dir in dirs:
        run = load_run(run_dir)
        assert run.meta["run_id"] == run_dir.name
        assert set(run.samples["run_id"]) == {run_dir.name}
