"""gVisor's runsc as a local runtime, really run: the same bundle, overlay root, volume and
resources as runc, driven create then start; the platform on every sample; and a missing
runsc leaves the default run with a note rather than stopping it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import sandbench
from sandbench.backends.local import runtime_table
from sandbench.image import WorkloadImage
from sandbench.results import load_run

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def runsc_run(tmp_path_factory: pytest.TempPathFactory, workload_image: WorkloadImage,
              runsc: str) -> Path:
    out = tmp_path_factory.mktemp("runsc")
    result = sandbench("run", "--runtimes", "runc,runsc,runsc-ptrace", "--workloads",
                       "start,syscall,io", "--rounds", "2", "--warmup", "0", "--no-report",
                       "--out", str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (run_dir,) = list(out.iterdir())
    return run_dir


def test_runsc_measures_every_workload_with_its_platform(runsc_run: Path) -> None:
    run = load_run(runsc_run)
    samples = run.samples
    failed = samples[samples["status"] != "ok"]
    assert failed.empty, failed[["runtime", "metric", "reason"]].to_string()
    for runtime, platform in (("runsc", "systrap"), ("runsc-ptrace", "ptrace")):
        mine = samples[samples["runtime"] == runtime]
        assert set(mine["workload"]) == {"start", "syscall", "io"}
        assert {labels.get("platform") for labels in mine["labels"]} == {platform}
        assert {"request_to_created", "start_to_workload"} <= set(mine["metric"])
    facts = run.meta["runtimes"]["runsc"]
    assert facts["version"].startswith("runsc version")
    assert "--platform=systrap" in facts["flags"] and "sentry" in facts["sandbox_clock"]


def test_the_platform_does_not_split_rows_from_runc(runsc_run: Path) -> None:
    from sandbench.analysis import stats
    summary = stats.summarize(load_run(runsc_run))
    getpid = summary[(summary["metric"] == "ns_per_op") & (summary["labels"] == "op=getpid")]
    assert set(getpid["runtime"]) == {"runc", "runsc", "runsc-ptrace"}
    # gVisor intercepts every syscall: far above runc, whatever the platform.
    runsc_ratio = float(getpid[getpid["runtime"] == "runsc"]["ratio"].iloc[0])
    assert runsc_ratio > 5


def test_nothing_of_runsc_is_left(runsc_run: Path) -> None:
    short = runsc_run.name.replace("T", "").replace("Z", "")[-12:].lower()
    for root in (Path("/run/sandbench/runsc"), Path("/run/sandbench/runsc-ptrace")):
        left = [p.name for p in root.iterdir() if short in p.name] if root.is_dir() else []
        assert left == []
        assert not (root / "null-netns").is_mount() if root.exists() else True
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            assert short.encode() not in cmdline or b"pytest" in cmdline


def test_without_runsc_the_default_run_leaves_it_out_with_a_note(
        tmp_path: Path, workload_image: WorkloadImage, sandbench_cache: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "images").symlink_to(sandbench_cache / "images")  # the image, but no gVisor
    path = ":".join(p for p in os.environ["PATH"].split(":")
                    if not (Path(p) / "runsc").exists())
    env = {"PATH": f"{Path(sys.executable).parent}:{path}"}
    result = sandbench("run", "--workloads", "start", "--rounds", "1", "--warmup", "0",
                       "--no-report", "--cache-dir", str(cache), "--out", str(tmp_path / "out"),
                       env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "note: runsc left out: 'runsc' is not on PATH" in result.stderr
    (run_dir,) = list((tmp_path / "out").iterdir())
    run = load_run(run_dir)
    assert set(run.samples["runtime"]) == {"native", "runc", "crun"}
    assert any("runsc left out" in w for w in run.meta["warnings"])
    # Asked for by name, it is an error that says how to get it.
    named = sandbench("run", "--runtimes", "runc,runsc", "--workloads", "start", "--rounds", "1",
                      "--cache-dir", str(cache), "--out", str(tmp_path / "out2"), env=env)
    assert named.returncode == 3 and "make demo builds it" in named.stderr


def test_io_samples_say_what_their_target_is(runsc_run: Path) -> None:
    run = load_run(runsc_run)
    io = run.samples[run.samples["workload"] == "io"]
    storage = {(r, labels["target"], labels.get("storage"))
               for r, labels in zip(io["runtime"], io["labels"])}
    assert storage == {("runc", "rootfs", "host-overlay"), ("runc", "volume", "host-bind"),
                       *((r, "rootfs", "gvisor-overlay:self") for r in ("runsc", "runsc-ptrace")),
                       *((r, "volume", "host-bind:directfs") for r in ("runsc", "runsc-ptrace"))}
    facts = run.meta["environment"]["runtimes"]["runsc"]
    assert facts["storage_flags"]["overlay2"] == "root:self"
    assert facts["io_targets"]["rootfs"]["label"] == "gvisor-overlay:self"


def test_the_recorded_targets_are_where_runsc_writes(tmp_path: Path, runsc: str,
                                                     workload_image: WorkloadImage) -> None:
    """What io_targets says, checked against the real thing: under sandbench's flags the root
    is gVisor's overlay, backed by a filestore in the bundle's host overlay, and nothing the
    sandbox writes there appears on the host; /data is the host directory, through directfs."""
    from sandbench.backends.local import gvisor, mounts, oci_config

    flags = runtime_table()["runsc"].flags
    _, targets = gvisor.runsc_targets(runsc, flags)
    assert (targets["rootfs"].label, targets["volume"].label) == (
        "gvisor-overlay:self", "host-bind:directfs")
    bundle, root, sandbox = tmp_path / "bundle", tmp_path / "state", "sbtest-storage"
    mounts.mount_overlay(workload_image.rootfs, bundle / "upper", bundle / "work",
                         bundle / "rootfs")
    (bundle / "volume").mkdir()
    # The filestore exists while the sandbox runs: it waits for the test's go-ahead on /data.
    script = ("mkdir -p /var/tmp/sandbench && echo r > /var/tmp/sandbench/written && "
              "echo v > /data/written && cat /proc/self/mountinfo > /data/mountinfo.tmp && mv /data/mountinfo.tmp "
              "/data/mountinfo && for i in $(seq 600); do [ -e /data/go ] && exit 0; "
              "sleep 0.1; done; exit 1")
    config = oci_config.config(sandbox_id=sandbox, argv=["/bin/sh", "-c", script], env={},
                               rootfs=str(bundle / "rootfs"), volume=str(bundle / "volume"),
                               cpus=1, memory_mib=512)
    (bundle / "config.json").write_text(json.dumps(config))
    volume = bundle / "volume"
    try:
        running = subprocess.Popen([runsc, "--root", str(root), *flags, "run", "--bundle",
                                    str(bundle), sandbox], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (volume / "mountinfo").exists() and running.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        upper = {p.name for p in (bundle / "upper").rglob("*")}
        (volume / "go").touch()
        assert running.wait(timeout=60) == 0, running.stderr.read() if running.stderr else ""
        lines = (volume / "mountinfo").read_text().splitlines()
        fstypes = {line.split()[4]: line.split(" - ")[1].split()[0] for line in lines}
        assert fstypes["/"] == "overlay" and fstypes["/data"] == "9p"
        assert "directfs" in next(line for line in lines if line.split()[4] == "/data")
        assert f".gvisor.filestore.{sandbox}" in upper and "written" not in upper
        assert (volume / "written").read_text() == "v\n"
    finally:
        subprocess.run([runsc, "--root", str(root), "delete", "--force", sandbox],
                       capture_output=True, timeout=60, check=False)
        mounts.unmount_all(tmp_path)
