"""Really run each workload under native, runc and crun on this host, through the command a
user types, and check that the results are whole and nothing is left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import sandbench
from sandbench.backends.local import mounts
from sandbench.image import WorkloadImage
from sandbench.results import load_run

pytestmark = pytest.mark.integration

RUNTIMES = ["native", "runc", "crun"]
SMALL = """
profile: quick
runtimes: [native, runc, crun]
workloads:
  start: {rounds: 3, warmup: 1}
  syscall: {rounds: 2, warmup: 0, params: {iterations: 20000}}
  io: {rounds: 1, warmup: 0, params: {size_mib: 8, runtime_s: 1}}
"""


def leftovers(cache: Path, run_dir: Path) -> list[str]:
    """Containers, mounts, cgroups and scratch the run in ``run_dir`` could have left (other
    runs on the machine are not this test's business)."""
    run_id = run_dir.name
    short = run_id.replace("T", "").replace("Z", "")[-12:].lower()
    found = []
    for runtime in ("runc", "crun"):
        root = Path("/run/sandbench") / runtime
        if root.is_dir():
            listed = subprocess.run([runtime, "--root", str(root), "list", "-q"],
                                    capture_output=True, text=True, check=False).stdout.split()
            found += [f"{runtime} container {c}" for c in listed if short in c]
    found += [f"mount {m}" for m in mounts.mounts_under(cache / "scratch" / run_id)]
    if (cache / "scratch" / run_id).exists():
        found.append(f"scratch {cache / 'scratch' / run_id}")
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        parent = hierarchy / "sandbench"
        if parent.is_dir():
            found += [f"cgroup {c}" for c in parent.iterdir() if c.is_dir() and short in c.name]
    return found


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, workload_image: WorkloadImage,
              sandbench_cache: Path) -> Path:
    spec = tmp_path_factory.mktemp("spec") / "small.yaml"
    spec.write_text(SMALL)
    out = tmp_path_factory.mktemp("runs")
    result = sandbench("run", str(spec), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "report:" in result.stdout
    (run_dir,) = list(out.iterdir())
    return run_dir


def test_every_workload_on_every_runtime_is_measured(small_run: Path) -> None:
    run = load_run(small_run)
    assert run.meta["status"] == "completed" and run.meta["valid"] is True
    samples = run.samples
    assert (samples["status"] == "ok").all(), samples[samples["status"] != "ok"][["reason"]]
    for runtime in RUNTIMES:
        mine = samples[samples["runtime"] == runtime]
        assert set(mine["workload"]) == {"start", "syscall", "io"}
    start = samples[(samples["workload"] == "start") & ~samples["warmup"]]
    assert (start.groupby("runtime").size() > 0).all()
    oci = start[start["runtime"].isin(["runc", "crun"])]
    assert {"request_to_created", "start_to_workload"} <= set(oci["metric"])
    assert (start["value"] > 0).all()


def test_io_measures_both_targets_labelled_direct_or_buffered(small_run: Path) -> None:
    io = load_run(small_run).samples.query("workload == 'io'")
    targets = {(r, lab["target"]) for r, lab in zip(io["runtime"], io["labels"])}
    assert targets == {(r, t) for r in RUNTIMES for t in ("rootfs", "volume")}
    assert "direct_io" not in set(io["metric"])
    for labels, reason in zip(io["labels"], io["reason"]):
        assert labels["direct"] in ("true", "false")
        # A buffered sample says why O_DIRECT was refused; a direct one has nothing to say.
        assert (labels["direct"] == "false") == isinstance(reason, str)


def test_stat_and_open_close_are_one_row_across_runtimes(small_run: Path) -> None:
    samples = load_run(small_run).samples.query("workload == 'syscall'")
    for op in ("stat", "open_close"):
        mine = samples[[labels["op"] == op for labels in samples["labels"]]]
        assert {json.dumps(labels, sort_keys=True) for labels in mine["labels"]} == {
            json.dumps({"op": op, "path": "probe"})}
        assert set(mine["runtime"]) == set(RUNTIMES)
    # The same file, each in its runtime's own copy of the image.
    for runtime, output in zip(samples["runtime"], samples["output"]):
        header = json.loads((small_run / output).read_text().splitlines()[0])
        assert header["path"] == "probe" and header["dir_from"] == "/proc/self/exe"
        if runtime == "native":
            assert header["dir"].endswith("/rootfs/sandbench"), header["dir"]
        else:
            assert header["dir"] == "/sandbench"


def test_warmups_recorded_and_flagged(small_run: Path) -> None:
    samples = load_run(small_run).samples
    warm = samples[samples["warmup"]]
    assert set(warm["workload"]) == {"start"} and set(warm["round"]) == {1}


def test_metadata_names_host_runtimes_and_clocks(small_run: Path) -> None:
    meta = json.loads((small_run / "run.json").read_text())
    assert meta["format_version"] == 1
    assert {"kernel", "cpu_model", "cores", "memory_bytes", "cgroup_layout"} <= set(meta["host"])
    assert "runc version" in meta["runtimes"]["runc"]["version"]
    assert "crun version" in meta["runtimes"]["crun"]["version"]
    assert set(meta["clocks"]) >= {"host_monotonic", "host_realtime", "sandbox_realtime"}
    assert meta["metrics"]["bandwidth"]["better"] == "higher"


def test_every_sandbox_output_is_kept(small_run: Path) -> None:
    samples = load_run(small_run).samples
    for output in set(samples["output"]):
        assert (small_run / output).is_file()


def test_nothing_left_behind(small_run: Path, sandbench_cache: Path) -> None:
    assert leftovers(sandbench_cache, small_run) == []


def test_report_renders_from_the_run(small_run: Path) -> None:
    result = sandbench("report", str(small_run), "-o", str(small_run / "again.html"))
    assert result.returncode == 0, result.stderr
    assert (small_run / "again.html").stat().st_size > 1_000_000  # plotly.js is inside


def test_timeout_fails_samples_with_reason_and_cleans_up(
        tmp_path: Path, workload_image: WorkloadImage, sandbench_cache: Path) -> None:
    result = sandbench("run", "--runtimes", "runc", "--workloads", "io", "--rounds", "1",
                       "--timeout", "0.5", "--out", str(tmp_path), "--no-report")
    assert result.returncode == 1, result.stderr
    assert "not valid" in result.stderr
    (run_dir,) = list(tmp_path.iterdir())
    samples = load_run(run_dir).samples
    assert (samples["status"] == "failed").all()
    assert samples["reason"].str.contains("timed out").all()
    assert samples["value"].isna().all()  # never a zero
    assert leftovers(sandbench_cache, run_dir) == []


def test_unusable_runtime_fails_before_measuring(tmp_path: Path,
                                                 workload_image: WorkloadImage) -> None:
    result = sandbench("run", "--runtimes", "native,runc", "--workloads", "start",
                       "--out", str(tmp_path), env={"PATH": "/nonexistent"})
    assert result.returncode == 3
    assert "runtime 'runc' is not usable here" in result.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_samples_and_leaves_nothing(
        tmp_path: Path, workload_image: WorkloadImage, sandbench_cache: Path,
        signum: signal.Signals) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "sandbench", "run", "--runtimes", "native,runc,crun",
         "--workloads", "start", "--rounds", "500", "--out", str(tmp_path), "--no-report"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples_file = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("*/samples.jsonl"))
        if found and sum(1 for _ in open(found[0])) >= 12:
            samples_file = found[0]
            break
        time.sleep(0.1)
    assert samples_file is not None, "the run never produced samples"
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr[-2000:]
    run = load_run(samples_file.parent)
    assert run.meta["status"] == "interrupted"
    assert len(run.samples) >= 12
    assert leftovers(sandbench_cache, samples_file.parent) == []
    rendered = sandbench("report", str(samples_file.parent))
    assert rendered.returncode == 0, rendered.stderr
    assert "interrupted" in (samples_file.parent / "report.html").read_text()
