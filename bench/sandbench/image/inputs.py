"""What the workload image is made of, and the hash that names it.

Everything that changes the bytes of the image is listed here and goes into the hash, so a
cached image is reused exactly when rebuilding would produce the same thing. What the hash
cannot see: the Debian archive moving on under the same suite name (a point release) and the
host's gcc. Bump IMAGE_FORMAT_VERSION when the recipe in rootfs.py or oci.py changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sandbench import resources

#: Bumped whenever the build steps change in a way the other inputs do not show.
IMAGE_FORMAT_VERSION = 2

#: Debian release the rootfs comes from; the host is bookworm, so its gcc matches its libc.
SUITE = "bookworm"

#: The mirror the host's own apt sources use (deb.debian.org), reachable from here.
MIRROR = "http://deb.debian.org/debian"

#: fio and its libraries, and a shell for debugging (`kubectl exec ... sh`); nothing else.
PACKAGES: tuple[str, ...] = ("fio", "busybox-static")

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
FIO_JOB = Path("io/sandbench.fio")
PROBE_IN_IMAGE = "/sandbench/probe"
FIO_JOB_IN_IMAGE = "/sandbench/sandbench.fio"


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
        "sandbench.fio": hashlib.sha256(fio_job().read_bytes()).hexdigest(),
    }
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def image_tag(digest_hex: str) -> str:
    """The tag of the image built from inputs with this hash: short enough to read."""
    return digest_hex[:12]


def image_name(digest_hex: str) -> str:
    return f"{IMAGE_REPOSITORY}:{image_tag(digest_hex)}"
