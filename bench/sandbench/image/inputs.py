"""What the workload image is made of, and the hash that names it.

Everything that changes the bytes of the image is listed here and goes into the hash, so a
cached image is reused exactly when rebuilding would produce the same thing. What the hash
cannot see: the Debian archive moving on under the same suite name (a point release) and the
host's gcc. Bump IMAGE_FORMAT_VERSION when the recipe in rootfs.py, oci.py, guest.py or
initramfs.py changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sandbench import resources

#: Bumped whenever the build steps change in a way the other inputs do not show.
IMAGE_FORMAT_VERSION = 3

#: Debian release the rootfs comes from; the host is bookworm, so its gcc matches its libc.
SUITE = "bookworm"

#: The mirror the host's own apt sources use (deb.debian.org), reachable from here.
MIRROR = "http://deb.debian.org/debian"

#: fio and its libraries, iperf3 (the net workload's throughput client), and a shell for
#: debugging (`kubectl exec ... sh`); nothing else.
PACKAGES: tuple[str, ...] = ("fio", "iperf3", "busybox-static")

#: Files dropped while unpacking. fio drags in python3 (its helper scripts) and perl via its
#: dependency chain; neither runs in a sandbox, and dropping them and the docs takes the
#: rootfs from about 224 MB to 130 MB, which is image import time on every node.
PATH_EXCLUDES: tuple[str, ...] = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
    "/usr/lib/python3*",
    "/usr/share/perl/*",
    "/usr/lib/x86_64-linux-gnu/perl/*",
)

#: Static, so the probe needs no loader and runs in any rootfs or initramfs.
CFLAGS: tuple[str, ...] = ("-O2", "-static")

#: Repository part of the image name; "localhost/" keeps runtimes from trying to pull it.
IMAGE_REPOSITORY = "localhost/sandbench/workload"

#: Where the inputs live inside workloads_dir(), and where they go in the image.
PROBE_SOURCE = Path("probe/probe.c")
#: The net workload's probe modes, #included by probe.c.
PROBE_NET_SOURCE = Path("probe/net.c")
FIO_JOB = Path("io/sandbench.fio")
#: The image's own directory: sandbench's files in the image, nothing else.
IMAGE_DIR = "/sandbench"
PROBE_IN_IMAGE = f"{IMAGE_DIR}/probe"
FIO_JOB_IN_IMAGE = f"{IMAGE_DIR}/sandbench.fio"


#: The guest a VM boots (image/guest.py): Debian's cloud kernel, fetched as a package with
#: apt-get download (the version apt resolves is recorded in guest.json; like the rootfs
#: packages, a newer one under the same name is not seen by the hash).
GUEST_KERNEL_PACKAGE = "linux-image-cloud-amd64"
#: Modules the guest init loads, with their dependencies from modules.dep; ones the kernel
#: has built in (ext4, the 8250 serial console in Debian's cloud flavour) are skipped.
GUEST_MODULES: tuple[str, ...] = ("virtio_pci", "virtio_blk", "ext4")
#: Modules the guest init loads only for a VM with a network device (the net workload), so
#: every other VM boots exactly as before.
GUEST_NET_MODULES: tuple[str, ...] = ("virtio_net",)
#: busybox applets the guest init calls (workloads/guest/init), as symlinks in the initramfs.
GUEST_APPLETS: tuple[str, ...] = (
    "base64", "cat", "chroot", "dmesg", "env", "insmod", "ip", "mkdir", "mount", "poweroff",
    "reboot", "sh", "usleep",
)
#: Sizes of the workload disk and of the data disk, MiB. Both are sparse files: only what is
#: written takes space. They bound the io workload's size_mib on each target.
GUEST_ROOT_DISK_MIB = 4096
GUEST_DATA_DISK_MIB = 4096
#: Inodes of each disk's ext4: few, so that mke2fs writes the inode tables itself rather than
#: leaving the guest kernel's ext4lazyinit thread to zero them in the middle of a measurement.
GUEST_ROOT_INODES = 65536
GUEST_DATA_INODES = 16384
GUEST_INIT = Path("guest/init")


def guest_init() -> Path:
    return resources.workloads_dir() / GUEST_INIT


def probe_source() -> Path:
    return resources.workloads_dir() / PROBE_SOURCE


def fio_job() -> Path:
    return resources.workloads_dir() / FIO_JOB


def input_hash() -> str:
    """Hex sha256 of every input that decides the image's content."""
    recipe = {
        "format": IMAGE_FORMAT_VERSION,
        "suite": SUITE,
        "mirror": MIRROR,
        "packages": list(PACKAGES),
        "path_excludes": list(PATH_EXCLUDES),
        "cflags": list(CFLAGS),
        "probe.c": hashlib.sha256(probe_source().read_bytes()).hexdigest(),
        "net.c": hashlib.sha256(
            (resources.workloads_dir() / PROBE_NET_SOURCE).read_bytes()).hexdigest(),
        "sandbench.fio": hashlib.sha256(fio_job().read_bytes()).hexdigest(),
        "guest": {
            "kernel_package": GUEST_KERNEL_PACKAGE,
            "modules": list(GUEST_MODULES),
            "net_modules": list(GUEST_NET_MODULES),
            "applets": list(GUEST_APPLETS),
            "disks_mib": [GUEST_ROOT_DISK_MIB, GUEST_DATA_DISK_MIB],
            "inodes": [GUEST_ROOT_INODES, GUEST_DATA_INODES],
            "init": hashlib.sha256(guest_init().read_bytes()).hexdigest(),
        },
    }
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def image_tag(digest_hex: str) -> str:
    """The tag of the image built from inputs with this hash: short enough to read."""
    return digest_hex[:12]


def image_name(digest_hex: str) -> str:
    return f"{IMAGE_REPOSITORY}:{image_tag(digest_hex)}"
