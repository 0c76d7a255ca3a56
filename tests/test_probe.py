"""The probe's syscall mode, compiled from workloads/probe/probe.c as the image build does and
run on this host from wherever a runtime puts it: open_close and stat must be the same
operation everywhere (a one-component lookup of the probe in its own directory), labelled
with a path that does not depend on where that directory is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandbench import resources
from sandbench.image import inputs
from sandbench.model import Execution, Status
from sandbench.workloads import get

ITERATIONS = "1000"
#: The probe's operations on a file.
PATH_OPERATIONS = ("open_close", "stat")


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("compiling the probe needs gcc")
    binary = tmp_path_factory.mktemp("build") / "probe"
    subprocess.run(["gcc", *inputs.CFLAGS, "-o", str(binary),
                    str(resources.workloads_dir() / inputs.PROBE_SOURCE)], check=True)
    return binary


def placed(probe: Path, directory: Path) -> Path:
    """The probe copied into ``directory``, as an image puts it in /sandbench."""
    directory.mkdir(parents=True)
    return Path(shutil.copy2(probe, directory / "probe"))


def run(argv: list[str], cwd: Path, **kwargs: Any) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True, **kwargs)
    return done.stdout


def values(stdout: str) -> dict[str, Any]:
    workload = get("syscall")
    (case,) = workload.cases(workload.params({}))
    return {v.labels["op"]: v for v in workload.parse(case, Execution(stdout=stdout))}


def test_stat_and_open_are_relative_to_the_probes_own_directory(
        probe: Path, tmp_path: Path) -> None:
    # A shallow directory (a container's /sandbench) and a deep one (the host's unpacked image,
    # where the native runtime runs it), each run from an unrelated working directory.
    shallow = placed(probe, tmp_path / "sandbench")
    deep = placed(probe, tmp_path / "cache" / "images" / "0123abcd" / "rootfs" / "sandbench")
    for binary in (shallow, deep):
        header = json.loads(run([str(binary), "syscall", ITERATIONS], cwd=tmp_path))
        assert header["dir"] == str(binary.parent)
        assert header["path"] == "probe" and header["dir_from"] == "/proc/self/exe"
        for op in PATH_OPERATIONS:
            assert header["results"][op]["ns_per_op"] > 0


def test_path_rows_are_the_same_wherever_the_probe_lives(probe: Path, tmp_path: Path) -> None:
    shallow = placed(probe, tmp_path / "sandbench")
    deep = placed(probe, tmp_path / "a" / "b" / "c" / "sandbench")
    found = [values(run([str(b), "syscall", ITERATIONS], cwd=tmp_path)) for b in (shallow, deep)]
    for op in PATH_OPERATIONS:
        assert found[0][op].labels == found[1][op].labels == {"op": op, "path": "probe"}
        assert all(f[op].status == Status.OK for f in found)
    assert found[0]["getpid"].labels == {"op": "getpid"}


def test_argv0_names_the_directory_when_proc_cannot(probe: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("hiding /proc needs root and unshare")
    binary = placed(probe, tmp_path / "sandbench")
    # In a mount namespace of its own, /proc unmounted: as in a sandbox without /proc.
    script = f"umount -l /proc && exec {binary} syscall {ITERATIONS}"
    header = json.loads(run(["unshare", "-m", "sh", "-c", script], cwd=tmp_path))
    assert header["dir"] == str(binary.parent) and header["dir_from"] == "argv[0]"
    assert header["path"] == "probe" and header["results"]["stat"]["ns_per_op"] > 0


def test_a_probe_that_cannot_find_its_file_fails_those_samples(
        probe: Path, tmp_path: Path) -> None:
    # Executed from an open descriptor, then unlinked: the directory is there, the file is not.
    binary = placed(probe, tmp_path / "sandbench")
    fd = os.open(binary, os.O_RDONLY)
    try:
        binary.unlink()
        stdout = run([f"/proc/self/fd/{fd}", "syscall", ITERATIONS], cwd=tmp_path, pass_fds=(fd,))
    finally:
        os.close(fd)
    found = values(stdout)
    for op in PATH_OPERATIONS:
        assert found[op].status == Status.FAILED and found[op].value is None
        assert found[op].labels == {"op": op, "path": "probe"}
        assert f"of 'probe' in {binary.parent}: No such file or directory" in (found[op].reason or "")
    assert found["getpid"].status == Status.OK
