"""The workload image: its input hash, its OCI archive and the probe inside it.

The archive tests run on the real image, built (or taken from the cache) once per session in
$SANDBENCH_CACHE or ~/.cache/sandbench, so a developer's existing cache is reused.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbench import resources
from sandbench.image import WorkloadImage, build_image, input_hash, load_cached
from sandbench.image import inputs, oci

PT_INTERP = 3


def _cache_dir() -> Path:
    configured = os.environ.get("SANDBENCH_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "sandbench"


@pytest.fixture(scope="session")
def image() -> WorkloadImage:
    cache = _cache_dir()
    cached = load_cached(cache)
    if cached is not None:
        return cached
    if os.geteuid() != 0 or shutil.which("mmdebstrap") is None:
        pytest.skip("building the workload image needs root and mmdebstrap")
    return build_image(cache)


@pytest.fixture
def workloads_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "workloads"
    shutil.copytree(resources.workloads_dir(), copy)
    monkeypatch.setattr(resources, "workloads_dir", lambda: copy)
    return copy


# --- input hash ---------------------------------------------------------------------------


def test_input_hash_is_stable_hex() -> None:
    first = input_hash()
    assert first == input_hash()
    assert len(first) == 64 and int(first, 16) >= 0


def test_input_hash_depends_on_content_not_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = input_hash()
    copy = tmp_path / "elsewhere"
    shutil.copytree(resources.workloads_dir(), copy)
    monkeypatch.setattr(resources, "workloads_dir", lambda: copy)
    assert input_hash() == original


@pytest.mark.parametrize("changed", [inputs.PROBE_SOURCE, inputs.FIO_JOB])
def test_input_hash_changes_with_each_source(workloads_copy: Path, changed: Path) -> None:
    before = input_hash()
    with (workloads_copy / changed).open("a") as source:
        source.write("\n")
    assert input_hash() != before


def test_load_cached_is_none_for_an_empty_cache(tmp_path: Path) -> None:
    assert load_cached(tmp_path) is None


def test_load_cached_ignores_a_build_without_marker(tmp_path: Path) -> None:
    entry = tmp_path / "images" / input_hash()
    (entry / "rootfs").mkdir(parents=True)
    (entry / "workload.oci.tar").write_bytes(b"")
    assert load_cached(tmp_path) is None


# --- OCI writer on a small tree (no root needed) ------------------------------------------


def _small_tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o4755)
    os.link(root / "bin" / "tool", root / "bin" / "tool-again")
    (root / "bin" / "sh").symlink_to("tool")
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    os.mkfifo(root / "tmp" / "fifo")
    return root


def _write(tree: Path, archive: Path) -> str:
    return oci.write_archive(tree, archive, name="localhost/x:t", tag="t",
                             config=oci.ImageConfig(entrypoint=("/bin/tool",)))


def test_oci_archive_is_reproducible(tmp_path: Path) -> None:
    tree = _small_tree(tmp_path / "tree")
    first = _write(tree, tmp_path / "a.tar")
    (tree / "bin" / "tool").touch()  # a new mtime must not change the image
    assert _write(tree, tmp_path / "b.tar") == first
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert not list(tmp_path.glob("*.layer.tmp"))


def test_oci_layer_keeps_modes_links_and_drops_special_files(tmp_path: Path) -> None:
    tree = _small_tree(tmp_path / "tree")
    _write(tree, tmp_path / "a.tar")
    with tarfile.open(tmp_path / "a.tar") as archive:
        layer = _layer_members(archive)
    assert sorted(layer) == ["bin", "bin/sh", "bin/tool", "bin/tool-again", "tmp"]
    assert layer["bin/tool"].mode == 0o4755 and layer["bin/tool"].isreg()
    assert layer["bin/tool-again"].islnk() and layer["bin/tool-again"].linkname == "bin/tool"
    assert layer["bin/sh"].issym() and layer["bin/sh"].linkname == "tool"
    assert layer["tmp"].mode == 0o1777
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in layer.values())


def _layer_members(archive: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    manifest = _blob_json(archive, _index(archive)["manifests"][0]["digest"])
    layer = _blob_file(archive, manifest["layers"][0]["digest"])
    with tarfile.open(fileobj=layer, mode="r:gz") as members:
        return {m.name.rstrip("/"): m for m in members.getmembers()}


# --- the real image -----------------------------------------------------------------------


def _index(archive: tarfile.TarFile) -> dict[str, Any]:
    member = archive.extractfile("index.json")
    assert member is not None
    result: dict[str, Any] = json.load(member)
    return result


def _blob_file(archive: tarfile.TarFile, digest: str) -> Any:
    member = archive.extractfile("blobs/" + digest.replace(":", "/"))
    assert member is not None, f"blob {digest} missing"
    return member


def _blob_json(archive: tarfile.TarFile, digest: str) -> dict[str, Any]:
    result: dict[str, Any] = json.load(_blob_file(archive, digest))
    return result


def _chunks(stream: Any) -> Iterator[bytes]:
    while chunk := stream.read(1 << 20):
        yield chunk


def _sha256(stream: Any) -> str:
    digest = hashlib.sha256()
    for chunk in _chunks(stream):
        digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@pytest.mark.integration
def test_archive_layout_and_index(image: WorkloadImage) -> None:
    with tarfile.open(image.oci_archive) as archive:
        layout = archive.extractfile("oci-layout")
        assert layout is not None and json.load(layout) == {"imageLayoutVersion": "1.0.0"}
        index = _index(archive)
    assert index["schemaVersion"] == 2 and len(index["manifests"]) == 1
    descriptor = index["manifests"][0]
    assert descriptor["mediaType"] == oci.MEDIA_MANIFEST
    assert descriptor["digest"] == image.manifest_digest
    assert descriptor["annotations"] == {
        "io.containerd.image.name": image.name,
        "org.opencontainers.image.ref.name": image.name.rsplit(":", 1)[1],
    }
    assert image.name == f"localhost/sandbench/workload:{image.input_hash[:12]}"


@pytest.mark.integration
def test_archive_blobs_match_their_digests(image: WorkloadImage) -> None:
    with tarfile.open(image.oci_archive) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith("blobs/sha256/"):
                expected = "sha256:" + member.name.rsplit("/", 1)[1]
                assert _sha256(archive.extractfile(member)) == expected, member.name
        manifest = _blob_json(archive, image.manifest_digest)
        for descriptor in [manifest["config"], *manifest["layers"]]:
            assert archive.getmember("blobs/" + descriptor["digest"].replace(":", "/")).size \
                == descriptor["size"]
        config = _blob_json(archive, manifest["config"]["digest"])
        layer = manifest["layers"][0]
        diff_id = _sha256(gzip.GzipFile(fileobj=_blob_file(archive, layer["digest"])))
    assert manifest["mediaType"] == oci.MEDIA_MANIFEST
    assert manifest["config"]["mediaType"] == oci.MEDIA_CONFIG
    assert layer["mediaType"] == oci.MEDIA_LAYER
    assert config["os"] == "linux" and config["architecture"] == "amd64"
    assert config["config"]["Entrypoint"] == ["/sandbench/probe"]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}


@pytest.mark.integration
def test_probe_in_rootfs_is_static(image: WorkloadImage) -> None:
    probe = (image.rootfs / "sandbench" / "probe").read_bytes()
    assert probe[:5] == b"\x7fELF\x02", "expected a 64-bit ELF"
    phoff, = struct.unpack_from("<Q", probe, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", probe, 0x36)
    types = [struct.unpack_from("<I", probe, phoff + i * phentsize)[0] for i in range(phnum)]
    assert PT_INTERP not in types, "the probe asks for a dynamic loader"


@pytest.mark.integration
def test_rootfs_is_shaped_for_runtimes(image: WorkloadImage) -> None:
    root = image.rootfs
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    for mount_point in ("proc", "sys", "dev", "data"):
        assert (root / mount_point).is_dir()
    assert not list((root / "dev").iterdir())
    assert os.access(root / "usr" / "bin" / "fio", os.X_OK)
    job = root / "sandbench" / "sandbench.fio"
    assert job.read_bytes() == inputs.fio_job().read_bytes()


@pytest.mark.integration
def test_second_build_comes_from_the_cache(image: WorkloadImage) -> None:
    again = build_image(_cache_dir())
    assert again.built is False
    assert (again.manifest_digest, again.rootfs) == (image.manifest_digest, image.rootfs)
