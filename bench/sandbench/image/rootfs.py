"""Making the workload root filesystem: Debian's fio, the static probe, the fio job.

mmdebstrap's ``extract`` variant unpacks the packages and their dependencies without
running maintainer scripts or installing apt/dpkg: the smallest tree in which fio runs. The
result is then shaped for runtimes: empty /dev, /proc, /sys (they mount their own), a
/data mount point for volumes and a 1777 /tmp.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from sandbench.errors import RunFailed
from sandbench.image import inputs

Progress = Callable[[str], None]


class ImageBuildError(RunFailed):
    """A build step failed; the message names the step, the command and where its log is."""


def build_rootfs(dest: Path, log_path: Path, progress: Progress) -> None:
    """Create the rootfs in dest (which must not exist yet)."""
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"building the workload image needs root (mmdebstrap --mode=root), "
            f"running as uid {os.geteuid()}"
        )
    _debootstrap(dest, log_path, progress)
    _shape(dest)
    progress("compiling the probe (gcc " + " ".join(inputs.CFLAGS) + ")")
    _compile_probe(dest, log_path)
    shutil.copyfile(inputs.fio_job(), _inside(dest, inputs.FIO_JOB_IN_IMAGE))
    _smoke_test(dest, log_path)


def _inside(rootfs: Path, absolute: str) -> Path:
    return rootfs / absolute.lstrip("/")


def _debootstrap(dest: Path, log_path: Path, progress: Progress) -> None:
    command = [
        "mmdebstrap",
        "--mode=root",
        "--variant=extract",
        "--include=" + ",".join(inputs.PACKAGES),
        *(f"--dpkgopt=path-exclude={pattern}" for pattern in inputs.PATH_EXCLUDES),
        inputs.SUITE,
        str(dest),
        inputs.MIRROR,
    ]
    progress(f"mmdebstrap {inputs.SUITE} ({', '.join(inputs.PACKAGES)}), log {log_path}")
    with log_path.open("a") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            # "I:" lines are mmdebstrap's own steps; the rest is apt and dpkg detail.
            if line.startswith(("I: ", "W: ", "E: ")):
                progress("mmdebstrap " + line.rstrip())
        returncode = process.wait()
    if returncode != 0:
        raise ImageBuildError(
            f"mmdebstrap exited with {returncode}; its output is in {str(log_path)!r}"
        )


def _shape(rootfs: Path) -> None:
    dev = rootfs / "dev"
    # mmdebstrap leaves device nodes here; runtimes mount their own /dev, and device nodes
    # cannot go into an image layer anyway.
    if dev.is_dir():
        shutil.rmtree(dev)
    for name, mode in (("dev", 0o755), ("proc", 0o555), ("sys", 0o555), ("data", 0o755),
                       ("tmp", 0o1777), ("sandbench", 0o755),
                       # The io workload's root-filesystem target, the same path in every sandbox.
                       ("var/tmp", 0o1777), ("var/tmp/sandbench", 0o1777)):
        path = rootfs / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)  # mkdir's mode is filtered by the umask, chmod's is not
    # mmdebstrap copies the build host's hostname and resolver; neither belongs in an image.
    (rootfs / "etc" / "hostname").write_text("sandbench\n")
    (rootfs / "etc" / "resolv.conf").unlink(missing_ok=True)
    sh = rootfs / "bin" / "sh"
    if not sh.exists() and not sh.is_symlink():
        sh.symlink_to("busybox")


def _compile_probe(rootfs: Path, log_path: Path) -> None:
    target = _inside(rootfs, inputs.PROBE_IN_IMAGE)
    command = ["gcc", *inputs.CFLAGS, "-Wall", "-Wextra", "-o", str(target),
               str(inputs.probe_source())]
    _run_logged(command, log_path, "compiling the probe")
    target.chmod(0o755)


def _smoke_test(rootfs: Path, log_path: Path) -> None:
    """Run the probe and fio inside the tree so a broken image fails here, not in a run."""
    for args in ([inputs.PROBE_IN_IMAGE, "start"], ["/usr/bin/fio", "--version"],
                 ["/usr/bin/iperf3", "--version"]):
        _run_logged(["chroot", str(rootfs), *args], log_path, "smoke test")


def _run_logged(command: list[str], log_path: Path, step: str) -> None:
    with log_path.open("a") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise ImageBuildError(
            f"{step} failed: {' '.join(command)!r} exited with {result.returncode}; "
            f"output in {str(log_path)!r}"
        )
