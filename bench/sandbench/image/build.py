"""The workload image, built once per set of inputs and kept in the cache.

Cache layout, one directory per input hash::

    cache_dir/images/<hash>/rootfs/             unpacked tree, for local runtimes (runc, crun, VMs)
    cache_dir/images/<hash>/workload.oci.tar    the same tree as an OCI archive (ctr import)
    cache_dir/images/<hash>/build.log           mmdebstrap, gcc and smoke-test output
    cache_dir/images/<hash>/guest/              the VM guest: kernel, initrd, disks (guest.py)
    cache_dir/images/<hash>/image.json          written last: its presence means complete
    cache_dir/images/<hash>.lock                held while building

A directory without image.json is the leftover of an interrupted build and is rebuilt.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sandbench.image import inputs, oci
from sandbench.image.guest import GuestImage, build_guest, load_guest
from sandbench.image.inputs import input_hash
from sandbench.image.rootfs import ImageBuildError, build_rootfs

__all__ = ["WorkloadImage", "build_image", "load_cached", "input_hash", "ImageBuildError"]

MARKER = "image.json"
ARCHIVE = "workload.oci.tar"
ROOTFS = "rootfs"
LOG = "build.log"


@dataclass(frozen=True)
class WorkloadImage:
    """One built workload image, as a directory tree and as an OCI archive."""

    name: str
    """Full reference, ``localhost/sandbench/workload:<first 12 hex of input_hash>``."""
    input_hash: str
    """Hex sha256 of the inputs (see sandbench.image.inputs); names the cache entry."""
    rootfs: Path
    """Unpacked root filesystem; treat as read-only (put an overlay on top to write)."""
    oci_archive: Path
    """OCI image-layout tar of the same tree, for ``ctr images import``."""
    manifest_digest: str
    """``sha256:...`` of the image manifest: what a runtime reports as the image id."""
    built: bool
    """False when this came from the cache, True when this call built it."""
    guest: GuestImage | None = None
    """The same tree as a VM guest (kernel, initrd, disks, KubeVirt archives)."""


def _entry_dir(cache_dir: Path, digest_hex: str) -> Path:
    return cache_dir / "images" / digest_hex


def load_cached(cache_dir: Path) -> WorkloadImage | None:
    """The complete cached image for the current inputs, or None."""
    digest_hex = input_hash()
    entry = _entry_dir(cache_dir, digest_hex)
    try:
        recorded = json.loads((entry / MARKER).read_text())
    except FileNotFoundError:
        return None
    image = WorkloadImage(
        name=recorded["name"],
        input_hash=digest_hex,
        rootfs=entry / ROOTFS,
        oci_archive=entry / ARCHIVE,
        manifest_digest=recorded["manifest_digest"],
        built=False,
        guest=load_guest(entry),
    )
    if recorded.get("format") != inputs.IMAGE_FORMAT_VERSION or recorded.get(
        "input_hash"
    ) != digest_hex or not (image.rootfs.is_dir() and image.oci_archive.is_file()):
        return None
    if image.guest is None:
        return None
    return image


def build_image(
    cache_dir: Path, *, force: bool = False, progress: Callable[[str], None] | None = None
) -> WorkloadImage:
    """The workload image for the current inputs, built unless the cache has it (or force)."""
    report = progress or (lambda message: None)
    digest_hex = input_hash()
    entry = _entry_dir(cache_dir, digest_hex)
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _locked(entry.with_name(digest_hex + ".lock")):
        # Checked under the lock: another process may have finished the build meanwhile.
        cached = None if force else load_cached(cache_dir)
        if cached is not None:
            report(f"image {cached.name} cached in {entry}")
            return cached
        return _build(entry, digest_hex, report)


def _build(entry: Path, digest_hex: str, report: Callable[[str], None]) -> WorkloadImage:
    name, started = inputs.image_name(digest_hex), time.monotonic()
    if entry.exists():
        report(f"removing incomplete or forced build in {entry}")
        _remove_tree(entry)
    entry.mkdir()
    build_rootfs(entry / ROOTFS, entry / LOG, report)
    report(f"writing OCI archive {entry / ARCHIVE}")
    manifest_digest = oci.write_archive(
        entry / ROOTFS,
        entry / ARCHIVE,
        name=name,
        tag=inputs.image_tag(digest_hex),
        config=oci.ImageConfig(entrypoint=(inputs.PROBE_IN_IMAGE,), cmd=("start",)),
    )
    image = WorkloadImage(name, digest_hex, entry / ROOTFS, entry / ARCHIVE, manifest_digest, True)
    image = dataclasses.replace(image, guest=build_guest(entry, image, entry / LOG, report))
    seconds = time.monotonic() - started
    marker = {
        "format": inputs.IMAGE_FORMAT_VERSION,
        "name": name,
        "input_hash": digest_hex,
        "manifest_digest": manifest_digest,
        "build_seconds": round(seconds, 3),
    }
    # Renamed into place so that a crash cannot leave a half-written marker.
    partial = entry / (MARKER + ".tmp")
    partial.write_text(json.dumps(marker, indent=2) + "\n")
    partial.rename(entry / MARKER)
    report(f"image {name} built in {seconds:.1f} s")
    return image


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive flock so that two harnesses never build into one directory."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_tree(path: Path) -> None:
    # A crashed run could have left something mounted inside (a bind-mounted host directory
    # under rootfs/data); deleting through the mount would delete the host's files.
    resolved = os.path.realpath(path)
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount_point = line.split()[4].replace("\\040", " ")
            if mount_point == resolved or mount_point.startswith(resolved + "/"):
                raise ImageBuildError(
                    f"refusing to remove {resolved!r}: {mount_point!r} is mounted inside it; "
                    "unmount it and retry"
                )
    shutil.rmtree(path)
