"""Really boot VMs: each workload under the local `qemu` runtime through the command a user
types, the accelerator decision, timeouts, interrupts and gc. Under TCG on this host (its KVM
hangs guests), so each VM takes seconds: the parameters are tiny."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import sandbench
from sandbench.backends.local import LocalBackend, qemu_accel, qemu_vm
from sandbench.image import WorkloadImage
from sandbench.results import load_run
from sandbench.spec import Resources

pytestmark = pytest.mark.integration

SMALL = """
profile: quick
workloads:
  start: {}
  syscall: {params: {iterations: 20000}}
  io: {params: {size_mib: 8, runtime_s: 1}}
"""
PHASES = ["request_to_kernel", "request_to_init", "request_to_workload", "request_to_exit"]


def qemu_processes(cache: Path) -> list[str]:
    """QEMU processes started from this cache's scratch space (how sandbench starts them)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in cmdline and str(cache / "scratch").encode() in cmdline:
            words = cmdline.replace(b"\0", b" ")[:200]
            found.append(f"{entry.name}: {words!r}")
    return found


def scratch_left(cache: Path, run_dir: Path) -> list[Path]:
    """The run's scratch directory (named by its run id), if it is still there."""
    return [p for p in [cache / "scratch" / run_dir.name] if p.exists()]


@pytest.fixture(scope="module")
def qemu_run(tmp_path_factory: pytest.TempPathFactory, workload_image: WorkloadImage) -> Path:
    assert workload_image.guest is not None
    spec = tmp_path_factory.mktemp("spec") / "small.yaml"
    spec.write_text(SMALL)
    out = tmp_path_factory.mktemp("runs")
    result = sandbench("run", str(spec), "--runtimes", "qemu", "--workloads", "start,syscall,io",
                       "--rounds", "1", "--warmup", "0", "--out", str(out), "--no-report")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = list(out.iterdir())
    return run_dir


def test_every_workload_boots_and_is_measured(qemu_run: Path) -> None:
    run = load_run(qemu_run)
    assert run.meta["status"] == "completed" and run.meta["valid"] is True
    samples = run.samples
    assert (samples["status"] == "ok").all(), samples[samples["status"] != "ok"][["reason", "raw"]]
    assert set(samples["workload"]) == {"start", "syscall", "io"}
    io = samples[samples["workload"] == "io"]
    assert {labels["target"] for labels in io["labels"]} == {"rootfs", "volume"}
    # O_DIRECT works on both virtio disks.
    assert {labels["direct"] for labels in io["labels"]} == {"true"}
    syscall = samples[samples["workload"] == "syscall"]
    assert len(syscall) == 7 and (syscall["value"] > 0).all()


def test_guest_stats_the_probe_in_its_own_directory_as_containers_do(qemu_run: Path) -> None:
    syscall = load_run(qemu_run).samples.query("workload == 'syscall'")
    paths = {labels["op"]: labels.get("path") for labels in syscall["labels"]}
    assert paths["stat"] == paths["open_close"] == "probe"
    (output,) = set(syscall["output"])
    header = next(json.loads(line) for line in (qemu_run / output).read_text().splitlines()
                  if line.startswith('{"probe":"syscall"'))
    assert (header["dir"], header["path"], header["dir_from"]) == (
        "/sandbench", "probe", "/proc/self/exe")


def test_boot_phases_in_order(qemu_run: Path) -> None:
    start = load_run(qemu_run).samples.query("workload == 'start'")
    values = dict(zip(start["metric"], start["value"]))
    assert [m for m in PHASES if m in values] == PHASES
    assert 0 < values["request_to_kernel"] < values["request_to_init"] \
        < values["request_to_workload"] < values["request_to_exit"]
    assert set(start["clock"]) == {"host_monotonic"}
    # The target for a TCG guest, with room for a host shared with other work.
    assert values["request_to_workload"] < 10_000


def test_accelerator_on_every_sample_and_in_metadata(qemu_run: Path) -> None:
    run = load_run(qemu_run)
    facts = json.loads((qemu_run / "run.json").read_text())["runtimes"]["qemu"]
    assert facts["kind"] == "vm" and facts["accel"] in ("kvm", "tcg")
    assert facts["emulated"] is (facts["accel"] == "tcg") and facts["accel_reason"]
    if Path("/dev/kvm").exists() and "do not run here" in facts["accel_reason"]:
        assert facts["accel"] == "tcg"  # this host: /dev/kvm opens, guests hang under it
    assert {labels["accel"] for labels in run.samples["labels"]} == {facts["accel"]}


def test_console_kept_and_nothing_left(qemu_run: Path, sandbench_cache: Path) -> None:
    run = load_run(qemu_run)
    for output in set(run.samples["output"]):
        text = (qemu_run / output).read_text()
        assert "SANDBENCH-INIT" in text and "Linux version" in text
    assert qemu_processes(sandbench_cache) == []
    assert scratch_left(sandbench_cache, qemu_run) == []


def test_kvm_test_boot_falls_back_within_its_bound(
        tmp_path: Path, workload_image: WorkloadImage, sandbench_cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert workload_image.guest is not None
    monkeypatch.setattr(qemu_accel, "_decided", {})
    scratch = tmp_path / "scratch"
    config = qemu_vm.vm_config({}, "qemu-system-x86_64", Resources(), scratch)
    # The bound is the deadline the test boot runs under (run_vm kills QEMU at it), checked
    # as given, not by timing the call: a busy host may take longer around the boot itself.
    boots: list[float] = []
    real_run_vm = qemu_vm.run_vm

    def spy(argv: list[str], sandbox: Path, deadline_ns: int) -> qemu_vm.Boot:
        boots.append((deadline_ns - time.monotonic_ns()) / 1e9)
        return real_run_vm(argv, sandbox, deadline_ns)

    monkeypatch.setattr(qemu_vm, "run_vm", spy)
    accel = qemu_accel.decide(config, workload_image.guest, tmp_path / "cache", scratch,
                              timeout_s=20.0)
    assert accel.reason
    if boots:  # a test boot ran (/dev/kvm opens): under a deadline no further than the bound
        assert len(boots) == 1 and 0 < boots[0] <= 20.0
    if Path("/dev/kvm").exists() and accel.accel == "tcg":
        # However KVM fails here: a guest that never runs (killed at the bound), or QEMU
        # dying at once (seen on this PVM host: kvm_buf_set_msrs asserts), or no device.
        assert (accel.reason.startswith("a test boot under KVM")
                or "cannot be opened" in accel.reason), accel.reason
    recorded = json.loads(next((tmp_path / "cache" / "accel").glob("*.json")).read_text())
    assert recorded["accel"] == accel.accel and recorded["key"]["qemu"].startswith("QEMU")
    assert qemu_accel.decide(config, workload_image.guest, tmp_path / "cache", scratch) == accel
    assert len(boots) <= 1  # decided once per process: no second test boot
    assert not any(scratch.iterdir())
    assert qemu_processes(tmp_path) == []


def test_timeout_kills_the_vm_and_fails_the_sample(
        tmp_path: Path, workload_image: WorkloadImage, sandbench_cache: Path) -> None:
    result = sandbench("run", "--runtimes", "qemu", "--workloads", "start", "--rounds", "1",
                       "--warmup", "0", "--timeout", "1", "--out", str(tmp_path), "--no-report")
    assert result.returncode == 1, result.stderr[-2000:]
    (run_dir,) = list(tmp_path.iterdir())
    samples = load_run(run_dir).samples
    assert (samples["status"] == "failed").all() and samples["value"].isna().all()
    assert samples["reason"].str.contains("timed out: the VM did not exit within 1 s").all()
    assert set(samples["metric"]) == set(PHASES)
    assert qemu_processes(sandbench_cache) == []
    assert scratch_left(sandbench_cache, run_dir) == []


def test_interrupt_mid_boot_leaves_nothing(tmp_path: Path, workload_image: WorkloadImage,
                                           sandbench_cache: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "sandbench", "run", "--runtimes", "qemu", "--workloads", "start",
         "--rounds", "50", "--warmup", "0", "--out", str(tmp_path), "--no-report"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not qemu_processes(sandbench_cache):
        time.sleep(0.1)
    assert qemu_processes(sandbench_cache), "no VM was ever started"
    time.sleep(0.5)  # mid-boot
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr[-2000:]
    (run_dir,) = list(tmp_path.iterdir())
    assert load_run(run_dir).meta["status"] == "interrupted"
    assert qemu_processes(sandbench_cache) == []
    assert scratch_left(sandbench_cache, run_dir) == []


def _stopped_vm(sandbox: Path) -> subprocess.Popen[bytes]:
    """A VM that would never end on its own (CPUs stopped, -S), as if its harness had died."""
    sandbox.mkdir(parents=True)
    pid_file = sandbox / qemu_vm.PID_FILE
    vm = subprocess.Popen(["qemu-system-x86_64", "-nodefaults", "-display", "none", "-S",
                           "-pidfile", str(pid_file)], start_new_session=True)
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return vm


def test_leftover_vms_are_killed_by_their_pid_files_only(tmp_path: Path) -> None:
    # gc's layout (scratch/<run>/<sandbox>/qemu.pid) and cleanup's (<run scratch>/<sandbox>/).
    # `sandbench gc` itself is not run: it also deletes every sandbench container on the host,
    # which would break other runs sharing this machine.
    scratch = tmp_path / "cache" / "scratch"
    vms = [_stopped_vm(scratch / "crashed-run" / "sandbench-x-00000"),
           _stopped_vm(scratch / "adhoc" / "sandbench-y-00000")]
    decoy = subprocess.Popen(["sleep", "60"])
    (scratch / "crashed-run" / "not-a-vm").mkdir()
    (scratch / "crashed-run" / "not-a-vm" / qemu_vm.PID_FILE).write_text(f"{decoy.pid}\n")
    try:
        killed = qemu_vm.kill_leftovers(scratch)
        assert [f"qemu process {vms[1].pid}", f"qemu process {vms[0].pid}"] == [
            k.split(" (")[0] for k in killed]
        assert gone(vms[0]) and gone(vms[1])
        assert decoy.poll() is None  # a pid file alone is not enough to be killed
        vm = _stopped_vm(scratch / "adhoc" / "sandbench-z-00001")
        vms.append(vm)
        deleted = LocalBackend(tmp_path / "cache", Resources()).cleanup()
        assert f"qemu process {vm.pid} ({vm_dir(scratch, 'adhoc', 'sandbench-z-00001')})" in deleted
        assert gone(vm)
        assert not (scratch / "adhoc").exists()
        assert qemu_processes(tmp_path / "cache") == []
    finally:
        for process in (*vms, decoy):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait()


def gone(process: subprocess.Popen[bytes]) -> bool:
    """Killed, and reaped (by the harness code, being its child, or here)."""
    process.wait(timeout=10)
    return not Path(f"/proc/{process.pid}").exists()


def vm_dir(scratch: Path, run: str, sandbox: str) -> Path:
    return scratch / run / sandbox


def _layer_members(archive: Path) -> dict[str, tarfile.TarInfo]:
    """The members of the one layer of an OCI archive written by sandbench.image.oci."""
    with tarfile.open(archive) as outer:
        index = json.load(outer.extractfile("index.json"))  # type: ignore[arg-type]
        manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(outer.extractfile(manifest_name))  # type: ignore[arg-type]
        layer_name = "blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]
        layer = outer.extractfile(layer_name)
        assert layer is not None
        with tarfile.open(fileobj=layer, mode="r:gz") as inner:
            return {m.name: m for m in inner.getmembers()}


def test_guest_runs_the_image_bytes_and_ships_kubevirt_archives(
        workload_image: WorkloadImage) -> None:
    guest = workload_image.guest
    assert guest is not None
    for inside in ("sandbench/probe", "sandbench/sandbench.fio", "usr/bin/fio"):
        on_disk = subprocess.run(["debugfs", "-R", f"cat /{inside}", str(guest.rootfs_disk)],
                                 capture_output=True, check=True).stdout
        assert on_disk == (workload_image.rootfs / inside).read_bytes(), inside
    assert guest.kernel.read_bytes()[0x202:0x206] == b"HdrS"  # a bzImage
    disk = _layer_members(guest.containerdisk_archive)
    assert [n for n, m in disk.items() if m.isfile()] == ["disk/rootfs.qcow2"]
    assert disk["disk/rootfs.qcow2"].mode & 0o004 and disk["disk"].mode & 0o005 == 0o005
    data = _layer_members(guest.datadisk_archive)
    assert [n for n, m in data.items() if m.isfile()] == ["disk/data.qcow2"]
    boot = _layer_members(guest.kernelboot_archive)
    assert {n for n, m in boot.items() if m.isfile()} == {"boot/vmlinuz", "boot/initrd.img"}
    assert boot["boot/vmlinuz"].size == guest.kernel.stat().st_size
    assert guest.names["containerdisk"].startswith("localhost/sandbench/containerdisk:")
