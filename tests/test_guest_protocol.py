"""The guest protocol (kernel command line down, serial console up) and the initramfs writer,
on real consoles captured from QEMU guests on this machine (tests/data/golden/qemu_console_*)."""

from __future__ import annotations

import base64
import re
import shlex
import shutil
import stat
from pathlib import Path

import pytest

from conftest import golden
from sandbench import resources, workloads
from sandbench.backends.guest_protocol import (
    CMDLINE_LIMIT, CommandLineError, ConsoleLine, annotate, kernel_cmdline, parse_annotated,
    read_console)
from sandbench.image import initramfs, input_hash, inputs
from sandbench.image.rootfs import ImageBuildError
from sandbench.model import Clock, Execution


def _console(name: str) -> tuple[list[ConsoleLine], str]:
    text = golden(name)
    match = re.search(r"sandbench_nonce=(\w+)", text)
    assert match is not None
    return parse_annotated(text), match.group(1)


def test_fio_console_gives_exactly_the_workload_stdout() -> None:
    lines, nonce = _console("qemu_console_fio_volume.txt")
    console = read_console(lines, nonce)
    assert console.exit_code == 0 and console.error is None
    assert console.stdout.startswith('{"probe":"fio","realtime_ns":')
    assert "SANDBENCH" not in console.stdout and "\r" not in console.stdout
    assert "[    " not in console.stdout  # no kernel line leaked in
    io = workloads.get("io")
    (case,) = [c for c in io.cases(io.params({})) if c.name == "volume"]
    values = io.parse(case, Execution(stdout=console.stdout))  # the container parser, unchanged
    assert {v.labels.get("job") for v in values} >= {"seqwrite", "seqread", "randread", "randwrite"}


def test_start_console_marks_in_boot_order() -> None:
    lines, nonce = _console("qemu_console_start.txt")
    console = read_console(lines, nonce)
    assert console.kernel_ns is not None and console.init_ns is not None
    assert console.workload_ns is not None
    # Times as read in the golden file (ms after the request).
    assert console.kernel_ns == 468_676_000
    assert console.init_ns == 2_003_878_000
    assert console.workload_ns == 2_268_098_000
    assert console.last_line.endswith("reboot: Power down")
    start = workloads.get("start")
    case = start.cases(start.params({}))[0]
    execution = Execution(stdout=console.stdout)
    execution.mark("request", Clock.HOST_MONOTONIC, 0)
    for name, ns in (("kernel", console.kernel_ns), ("init", console.init_ns),
                     ("workload", console.workload_ns)):
        execution.mark(name, Clock.HOST_MONOTONIC, ns)
    values = {v.metric.name: v.value for v in start.parse(case, execution)}
    assert values["request_to_kernel"] == pytest.approx(468.676)
    assert values["request_to_init"] == pytest.approx(2003.878)
    # The host receive time of the header wins over the guest's second-granular clock.
    assert values["request_to_workload"] == pytest.approx(2268.098)


def test_without_its_receive_time_the_guest_stamp_is_a_failed_phase() -> None:
    lines, nonce = _console("qemu_console_start.txt")
    start = workloads.get("start")
    case = start.cases(start.params({}))[0]
    execution = Execution(stdout=read_console(lines, nonce).stdout)
    execution.mark("request", Clock.HOST_MONOTONIC, 0)
    execution.mark("request", Clock.HOST_REALTIME, 0)
    values = {v.metric.name: v for v in start.parse(case, execution)}
    failed = values["request_to_workload"]
    assert failed.value is None and "no measured offset" in str(failed.reason)


def _lines(*texts: str) -> list[ConsoleLine]:
    return [ConsoleLine(index * 1000, text) for index, text in enumerate(texts)]


def test_markers_of_another_nonce_and_output_without_a_final_newline() -> None:
    console = read_console(_lines(
        "SANDBENCH-BEGIN old", "stale", "SANDBENCH-END old rc=0",
        "SANDBENCH-INIT n1", "SANDBENCH-BEGIN n1", "first", "no newlineSANDBENCH-END n1 rc=3",
        "SANDBENCH-STDERR n1", "oops", "SANDBENCH-STDERR-END n1"), "n1")
    assert console.stdout == "first\nno newline"
    assert console.exit_code == 3 and console.stderr == "oops\n"
    assert console.init_ns == 3000 and console.workload_ns == 5000


def test_guest_error_and_unfinished_workload() -> None:
    console = read_console(
        _lines("SANDBENCH-INIT n", "SANDBENCH-ERROR n no block device /dev/vdb"), "n")
    assert console.error == "no block device /dev/vdb" and console.exit_code is None
    cut = read_console(_lines("SANDBENCH-BEGIN n", '{"probe"'), "n")
    assert cut.exit_code is None and cut.stdout == '{"probe"\n'


def test_command_line_carries_argv_and_env_exactly() -> None:
    argv = ["/sandbench/probe", "fio", "/data", "it's \"quoted\"\nand multi-line"]
    env = {"SIZE": "32M", "ODD": "a b;$(x)"}
    line = kernel_cmdline(argv, env, "abc")
    params = dict(p.split("=", 1) for p in line.split() if p.startswith("sandbench_"))
    assert shlex.split(base64.b64decode(params["sandbench_argv"]).decode()) == argv
    assert shlex.split(base64.b64decode(params["sandbench_env"]).decode()) == [
        "SIZE=32M", "ODD=a b;$(x)"]
    assert params["sandbench_nonce"] == "abc" and line.startswith("console=ttyS0 ")
    assert "sandbench_argv" not in kernel_cmdline([], {}, "abc")  # the accelerator test boot


def test_command_line_limits() -> None:
    with pytest.raises(CommandLineError, match="2048"):
        kernel_cmdline(["x" * CMDLINE_LIMIT], {}, "n")
    with pytest.raises(CommandLineError, match="'BAD-NAME'"):
        kernel_cmdline(["x"], {"BAD-NAME": "1"}, "n")


def test_annotated_console_round_trips() -> None:
    lines = [ConsoleLine(5_000_000_123, "a | b"), ConsoleLine(5_250_000_000, "")]
    back = parse_annotated(annotate(lines, 5_000_000_000) + "--- qemu stderr ---\nboom\n",
                           5_000_000_000)
    assert [line.text for line in back] == ["a | b", ""]
    assert back[1].ns == 5_250_000_000


def _modules(tmp_path: Path) -> Path:
    root = tmp_path / "lib" / "modules" / "6.1"
    (root / "kernel").mkdir(parents=True)
    (root / "modules.dep").write_text(
        "kernel/virtio_pci.ko: kernel/virtio_pci_modern_dev.ko kernel/virtio.ko "
        "kernel/virtio_ring.ko\n"
        "kernel/virtio_pci_modern_dev.ko:\n"
        "kernel/virtio.ko: kernel/virtio_ring.ko\n"
        "kernel/virtio_ring.ko:\n"
        "kernel/virtio_blk.ko: kernel/virtio.ko kernel/virtio_ring.ko\n")
    (root / "modules.builtin").write_text("kernel/fs/ext4/ext4.ko\n")
    for name in ("virtio_pci", "virtio_pci_modern_dev", "virtio", "virtio_ring", "virtio_blk"):
        (root / "kernel" / f"{name}.ko").write_bytes(name.encode())
    return root


def test_module_closure_loads_dependencies_first_and_skips_builtins(tmp_path: Path) -> None:
    order = initramfs.module_closure(_modules(tmp_path), ["virtio_pci", "virtio-blk", "ext4"])
    names = [initramfs.module_name(p) for p in order]
    assert names == ["virtio_pci_modern_dev", "virtio_ring", "virtio", "virtio_pci", "virtio_blk"]
    with pytest.raises(ImageBuildError, match="'nvme'"):
        initramfs.module_closure(tmp_path / "lib" / "modules" / "6.1", ["nvme"])


def _read_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    found, at = {}, 0
    while True:
        fields = [int(data[at + 6 + 8 * i: at + 14 + 8 * i], 16) for i in range(13)]
        assert data[at:at + 6] == b"070701"
        name_len, size = fields[11], fields[6]
        name = data[at + 110: at + 110 + name_len - 1].decode()
        at += 110 + name_len + (-(110 + name_len) % 4)
        if name == "TRAILER!!!":
            return found
        found[name] = (fields[1], data[at:at + size], (fields[9], fields[10]))
        at += size + (-size % 4)


def test_initramfs_archive(tmp_path: Path) -> None:
    modules_dir = _modules(tmp_path)
    (tmp_path / "init").write_text("#!/bin/sh\n")
    (tmp_path / "busybox").write_bytes(b"\x7fELF...")
    order = initramfs.module_closure(modules_dir, ["virtio_blk"])
    initramfs.write_newc(initramfs.entries(
        init=tmp_path / "init", busybox=tmp_path / "busybox", applets=["sh", "mount"],
        modules_dir=modules_dir, modules=order), tmp_path / "initrd.img")
    found = _read_newc((tmp_path / "initrd.img").read_bytes())
    assert stat.S_ISCHR(found["dev/console"][0]) and found["dev/console"][2] == (5, 1)
    assert found["init"][0] & 0o111 and found["init"][1] == b"#!/bin/sh\n"
    assert stat.S_ISLNK(found["bin/sh"][0]) and found["bin/sh"][1] == b"busybox"
    assert found[initramfs.MODULE_LIST][1] == b"virtio_ring.ko\nvirtio.ko\nvirtio_blk.ko\n"
    assert found["lib/modules/virtio.ko"][1] == b"virtio"


def test_input_hash_changes_with_the_guest_init(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "workloads"
    shutil.copytree(resources.workloads_dir(), copy)
    monkeypatch.setattr(resources, "workloads_dir", lambda: copy)
    before = input_hash()
    with (copy / inputs.GUEST_INIT).open("a") as init:
        init.write("\n")
    assert input_hash() != before
