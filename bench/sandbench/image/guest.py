"""The guest a VM boots: Debian's cloud kernel, a small initramfs, and the workload image as a disk.

A VM must run the same bytes a container runs, so its root filesystem is the workload image's
tree itself, copied into an ext4 disk with ``mke2fs -d``: same probe, same fio, same job file.
The initramfs holds busybox (the image's own static one), the guest init from
workloads/guest/init and the modules to reach virtio disks; the init mounts the disk and runs
the workload chrooted into it (see that script for the console protocol).

The kernel comes from Debian's package, fetched with ``apt-get download`` and unpacked here,
not copied from the host's /boot: the host need not install a kernel package (which on a real
machine adds a boot entry and runs initramfs hooks), the kernel and its modules come from one
named package version (recorded in guest.json), and nothing the host's own boot setup does to
/boot changes the guest.

Layout, inside the image's cache entry (cache_dir/images/<hash>/)::

    guest/vmlinuz                 the kernel (QEMU -kernel)
    guest/initrd.img              the initramfs, an uncompressed newc cpio (QEMU -initrd)
    guest/rootfs.raw              the workload disk: ext4, sparse; VMs write to an overlay of it
    guest/data.raw                an empty ext4 data disk; each VM gets a copy as its /data
    guest/containerdisk.oci.tar   KubeVirt containerDisk: /disk/rootfs.qcow2, readable by uid 107
    guest/datadisk.oci.tar        the empty data disk the same way (/disk/data.qcow2): a VMI's
                                  /data as the same ext4 a local VM gets (an emptyDisk is blank)
    guest/kernelboot.oci.tar      KubeVirt kernel boot: /boot/vmlinuz and /boot/initrd.img
    guest/guest.json              written last: what was built from which package version
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbench.image import initramfs, inputs, oci
from sandbench.image.rootfs import ImageBuildError

if TYPE_CHECKING:
    from sandbench.image.build import WorkloadImage

Progress = Callable[[str], None]

GUEST_DIR = "guest"
MARKER = "guest.json"
KERNEL, INITRD, ROOT_DISK, DATA_DISK = "vmlinuz", "initrd.img", "rootfs.raw", "data.raw"
CONTAINERDISK, DATADISK = "containerdisk.oci.tar", "datadisk.oci.tar"
KERNELBOOT = "kernelboot.oci.tar"
REPOSITORIES = {"containerdisk": "localhost/sandbench/containerdisk",
                "datadisk": "localhost/sandbench/datadisk",
                "kernelboot": "localhost/sandbench/kernelboot"}
#: Where KubeVirt looks: a containerDisk's one file under /disk, a kernel boot image's paths.
DISK_IN_IMAGE, DATA_IN_IMAGE = "disk/rootfs.qcow2", "disk/data.qcow2"
KERNEL_IN_IMAGE, INITRD_IN_IMAGE = "boot/vmlinuz", "boot/initrd.img"


@dataclass(frozen=True)
class GuestImage:
    """The built guest, for QEMU locally and as OCI archives for KubeVirt."""

    kernel: Path
    initrd: Path
    rootfs_disk: Path
    """The workload image as a raw ext4 disk; never written: each VM gets a qcow2 overlay."""
    data_disk: Path
    """An empty raw ext4 disk; each VM gets its own copy, mounted at /data."""
    containerdisk_archive: Path
    """KubeVirt containerDisk of the workload disk (qcow2)."""
    datadisk_archive: Path
    """KubeVirt containerDisk of the empty data disk (qcow2), for /data."""
    kernelboot_archive: Path
    """KubeVirt kernel boot image: /boot/vmlinuz and /boot/initrd.img."""
    names: dict[str, str]
    """Image references of the archives, keyed ``containerdisk``, ``datadisk`` and
    ``kernelboot``."""
    kernel_release: str
    """``uname -r`` of the guest kernel, e.g. ``6.1.0-56-cloud-amd64``."""
    kernel_package: str
    """The Debian package and version the kernel came from."""
    kernel_sha256: str


def guest_dir(entry: Path) -> Path:
    return entry / GUEST_DIR


def load_guest(entry: Path) -> GuestImage | None:
    """The complete guest in an image's cache entry, or None."""
    dest = guest_dir(entry)
    try:
        recorded = json.loads((dest / MARKER).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    guest = _from_record(dest, recorded)
    files = (guest.kernel, guest.initrd, guest.rootfs_disk, guest.data_disk,
             guest.containerdisk_archive, guest.datadisk_archive, guest.kernelboot_archive)
    return guest if all(path.is_file() for path in files) else None


def _from_record(dest: Path, recorded: dict[str, Any]) -> GuestImage:
    return GuestImage(
        kernel=dest / KERNEL, initrd=dest / INITRD, rootfs_disk=dest / ROOT_DISK,
        data_disk=dest / DATA_DISK, containerdisk_archive=dest / CONTAINERDISK,
        datadisk_archive=dest / DATADISK, kernelboot_archive=dest / KERNELBOOT,
        names=dict(recorded["names"]),
        kernel_release=recorded["kernel_release"], kernel_package=recorded["kernel_package"],
        kernel_sha256=recorded["kernel_sha256"])


def build_guest(entry: Path, image: WorkloadImage, log_path: Path,
                progress: Progress) -> GuestImage:
    """Build the guest of ``image`` into its cache entry (``entry/guest``, which must not exist)."""
    for tool, package in (("apt-get", "apt"), ("dpkg-deb", "dpkg"), ("depmod", "kmod"),
                          ("mke2fs", "e2fsprogs"), ("qemu-img", "qemu-utils")):
        if shutil.which(tool) is None:
            raise ImageBuildError(f"building the VM guest needs {tool!r}: "
                                  f"apt-get install {package}")
    dest = guest_dir(entry)
    work = dest / "work"
    work.mkdir(parents=True)
    kernel = _fetch_kernel(work, log_path, progress)
    shutil.copyfile(kernel.vmlinuz, dest / KERNEL)
    modules = _write_initramfs(image.rootfs, kernel, dest / INITRD)
    progress(f"initramfs {dest / INITRD}: busybox and modules {', '.join(modules) or 'none'}")
    _make_disks(image.rootfs, dest, log_path, progress)
    tag = inputs.image_tag(image.input_hash)
    names = {kind: f"{repository}:{tag}" for kind, repository in REPOSITORIES.items()}
    digests = _write_archives(dest, work, names, tag, log_path, progress)
    shutil.rmtree(work)
    record = {
        "kernel_package": kernel.package, "kernel_release": kernel.release,
        "kernel_sha256": _sha256(dest / KERNEL), "initrd_sha256": _sha256(dest / INITRD),
        "modules": modules, "names": names, "manifest_digests": digests,
    }
    (dest / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    return _from_record(dest, record)


@dataclass(frozen=True)
class _Kernel:
    vmlinuz: Path
    modules_dir: Path
    release: str
    package: str


def _fetch_kernel(work: Path, log_path: Path, progress: Progress) -> _Kernel:
    meta = _download(inputs.GUEST_KERNEL_PACKAGE, work / "meta", log_path)
    # The meta package (linux-image-cloud-amd64) only depends on the current ABI's package.
    depends = _run(["dpkg-deb", "--field", str(meta), "Depends"], log_path, "reading Depends")
    real = [d.strip() for d in depends.split(",") if d.strip().startswith("linux-image-")]
    deb = meta
    if real:
        name, _, version = real[0].partition(" ")
        wanted = f"{name}={version.strip('()= ')}" if version else name
        deb = _download(wanted, work / "kernel-deb", log_path)
    package = _run(["dpkg-deb", "--show", str(deb)], log_path, "reading the package").strip()
    progress(f"guest kernel: {package.replace(chr(9), ' ')} (apt-get download)")
    tree = work / "kernel"
    _run(["dpkg-deb", "--extract", str(deb), str(tree)], log_path, "unpacking the kernel")
    found = sorted((tree / "boot").glob("vmlinuz-*"))
    if len(found) != 1:
        raise ImageBuildError(f"{deb.name} holds {len(found)} kernels in /boot, expected one")
    release = found[0].name.removeprefix("vmlinuz-")
    base = tree if (tree / "lib" / "modules" / release).is_dir() else tree / "usr"
    # The package ships no modules.dep (its postinst runs depmod); make it for this tree.
    _run(["depmod", "--basedir", str(base), release], log_path, "depmod")
    return _Kernel(found[0], base / "lib" / "modules" / release, release,
                   package.replace("\t", " "))


def _download(package: str, into: Path, log_path: Path) -> Path:
    into.mkdir(parents=True)
    # _apt cannot write into a root-only build directory; the download is still checked
    # against the archive's signed lists.
    command = ["apt-get", "download", "-o", "APT::Sandbox::User=root", package]
    try:
        _run(command, log_path, f"apt-get download {package}", cwd=into)
    except ImageBuildError as exc:
        raise ImageBuildError(f"{exc} (is the package list current? try "
                              "`apt-get update`)") from None
    debs = list(into.glob("*.deb"))
    if len(debs) != 1:
        raise ImageBuildError(f"apt-get download {package} left {len(debs)} .deb files in {into}")
    return debs[0]


def _write_initramfs(rootfs: Path, kernel: _Kernel, dest: Path) -> list[str]:
    modules = initramfs.module_closure(kernel.modules_dir, inputs.GUEST_MODULES)
    net_modules = initramfs.module_closure(kernel.modules_dir, inputs.GUEST_NET_MODULES)
    busybox = rootfs / "bin" / "busybox"
    if not busybox.is_file():
        raise ImageBuildError(f"the workload image has no {str(busybox)!r} for the guest's init")
    initramfs.write_newc(initramfs.entries(
        init=inputs.guest_init(), busybox=busybox, applets=inputs.GUEST_APPLETS,
        modules_dir=kernel.modules_dir, modules=modules, net_modules=net_modules), dest)
    return [initramfs.module_name(path) for path in modules]


def mkfs_command(disk: Path, size_mib: int, inodes: int, label: str,
                 content: Path | None = None) -> list[str]:
    """mke2fs for a guest disk. lazy_itable_init=0: the inode tables are written now, not by
    the guest's ext4lazyinit thread while it is being measured. The journal may stay lazy:
    on a new sparse file its blocks already read as zeros."""
    command = ["mke2fs", "-q", "-F", "-t", "ext4", "-L", label, "-N", str(inodes),
               "-E", "lazy_itable_init=0,lazy_journal_init=1"]
    if content is not None:
        command += ["-d", str(content)]
    return [*command, str(disk), f"{size_mib}M"]


def _make_disks(rootfs: Path, dest: Path, log_path: Path, progress: Progress) -> None:
    progress(f"workload disk {dest / ROOT_DISK} (mke2fs -d from the image rootfs)")
    _run(mkfs_command(dest / ROOT_DISK, inputs.GUEST_ROOT_DISK_MIB, inputs.GUEST_ROOT_INODES,
                      "sandbench-root", rootfs), log_path, "making the workload disk")
    _run(mkfs_command(dest / DATA_DISK, inputs.GUEST_DATA_DISK_MIB, inputs.GUEST_DATA_INODES,
                      "sandbench-data"), log_path, "making the data disk")


def _write_archives(dest: Path, work: Path, names: dict[str, str], tag: str, log_path: Path,
                    progress: Progress) -> dict[str, str]:
    disk_tree, data_tree, boot_tree = work / "containerdisk", work / "datadisk", work / "kernelboot"
    for raw, tree, inside in ((ROOT_DISK, disk_tree, DISK_IN_IMAGE),
                              (DATA_DISK, data_tree, DATA_IN_IMAGE)):
        (tree / inside).parent.mkdir(parents=True)
        # qcow2 keeps the archive to what the disk holds; a raw 4 GiB file would go in whole.
        _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(dest / raw),
              str(tree / inside)], log_path, f"converting {raw} to qcow2")
    (boot_tree / "boot").mkdir(parents=True)
    shutil.copyfile(dest / KERNEL, boot_tree / KERNEL_IN_IMAGE)
    shutil.copyfile(dest / INITRD, boot_tree / INITRD_IN_IMAGE)
    # The archive writer records every file as owned by 0:0; world-readable files and
    # searchable directories are what lets virt-launcher's qemu (uid 107) open them.
    for tree in (disk_tree, data_tree, boot_tree):
        for path in [tree, *tree.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    digests = {}
    for kind, tree, archive in (("containerdisk", disk_tree, CONTAINERDISK),
                                ("datadisk", data_tree, DATADISK),
                                ("kernelboot", boot_tree, KERNELBOOT)):
        progress(f"writing OCI archive {dest / archive}")
        digests[kind] = oci.write_archive(tree, dest / archive, name=names[kind], tag=tag,
                                          config=oci.ImageConfig(entrypoint=()))
    return digests


def _run(command: list[str], log_path: Path, step: str, cwd: Path | None = None) -> str:
    """Run a build command, its stderr into the build log; returns its stdout."""
    with log_path.open("a") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True,
                                cwd=cwd, check=False)
    if result.returncode != 0:
        raise ImageBuildError(f"{step} failed: {' '.join(command)!r} exited with "
                              f"{result.returncode}; output in {str(log_path)!r}")
    return result.stdout


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as content:
        for block in iter(lambda: content.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
