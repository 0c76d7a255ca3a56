"""An OCI image archive of a root filesystem, written with the standard library only.

No Docker or registry exists here, and skopeo/umoci would add a dependency for what is one
gzip layer and three small JSON documents. The layer is deterministic (sorted entries, mtime
0, owner 0:0) so the same rootfs always gives the same digests, and it is streamed through
the hashes to disk: a rootfs is far bigger than it is worth holding in memory.

Layout (OCI image-layout 1.0.0, as a plain tar): oci-layout, index.json, blobs/sha256/*.
``ctr images import`` names the image from the ``io.containerd.image.name`` annotation;
skopeo and podman read ``org.opencontainers.image.ref.name``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

#: zlib's default: level 9 costs twice the time for about 2% smaller layers.
GZIP_LEVEL = 6
#: The epoch as the creation time, so that the config (and so the digests) are reproducible.
EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class ImageConfig:
    """What the image says about how to run it (the OCI config's ``config`` object)."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    architecture: str = "amd64"
    user: str = ""
    """``USER``: numeric uid[:gid] or empty for root. Kubernetes checks ``runAsNonRoot`` against
    it, so images run non-root by a pod that sets no ``runAsUser`` need a number here."""


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int

    def descriptor(self, media_type: str, **extra: Any) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": self.digest, "size": self.size, **extra}


class _Digesting:
    """A write-only stream that hashes and counts what passes through to ``sink``."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._sink.write(data)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def _walk(root: Path) -> Iterator[Path]:
    """Every path under root (not root itself), parents before children, sorted by name."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = Path(entry.path)
        yield path
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)


def _layer_entries(tar: tarfile.TarFile, root: Path) -> None:
    first_link: dict[tuple[int, int], str] = {}
    for path in _walk(root):
        st = path.lstat()
        info = tarfile.TarInfo(path.relative_to(root).as_posix())
        info.mode = stat.S_IMODE(st.st_mode)
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in first_link:
                # Later names of a hard-linked file point at the first, as tar(1) does.
                info.type, info.linkname = tarfile.LNKTYPE, first_link[key]
            else:
                first_link[key] = info.name
                info.size = st.st_size
                _add_file_capabilities(info, path)
                with path.open("rb") as content:
                    tar.addfile(info, content)
                continue
        else:
            continue  # device nodes, fifos, sockets: runtimes create what they need
        tar.addfile(info)


def _add_file_capabilities(info: tarfile.TarInfo, path: Path) -> None:
    """Keep a file capability (``setcap``), as container runtimes apply it from the layer.

    Only ``security.capability``: the other xattrs of a build tree (SELinux labels of the build
    host, say) do not belong in an image. Written the way GNU tar and Go's archive/tar do, as a
    binary PAX record.
    """
    try:
        value = os.getxattr(path, "security.capability", follow_symlinks=False)
    except OSError:
        return
    info.pax_headers = {"SCHILY.xattr.security.capability":
                        value.decode("utf-8", "surrogateescape")}


def write_layer(rootfs: Path, dest: Path) -> tuple[Blob, str]:
    """Write rootfs as a gzip layer to dest; returns the blob and the uncompressed diff_id."""
    with dest.open("wb") as raw:
        compressed = _Digesting(raw)
        # filename="" and mtime=0 keep the build path and time out of the gzip header.
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed,
                           compresslevel=GZIP_LEVEL, mtime=0) as gz:
            uncompressed = _Digesting(gz)
            # Stream mode ("w|") only ever calls write(), which is all _Digesting has.
            with tarfile.open(fileobj=cast(IO[bytes], uncompressed), mode="w|",
                              format=tarfile.PAX_FORMAT) as tar:
                _layer_entries(tar, rootfs)
    return Blob(compressed.digest, compressed.size), uncompressed.digest


def _json_blob(document: dict[str, Any]) -> tuple[bytes, Blob]:
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return data, Blob("sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def _config_document(config: ImageConfig, diff_id: str) -> dict[str, Any]:
    run: dict[str, Any] = {"Entrypoint": list(config.entrypoint), "Env": list(config.env),
                           "WorkingDir": "/"}
    if config.cmd:
        run["Cmd"] = list(config.cmd)
    if config.user:
        run["User"] = config.user  # absent when empty, so root images keep their digests
    return {
        "architecture": config.architecture,
        "os": "linux",
        "created": EPOCH,
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": EPOCH, "created_by": "sandbench image build"}],
    }


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)


def write_archive(rootfs: Path, archive: Path, *, name: str, tag: str,
                  config: ImageConfig) -> str:
    """Write the OCI archive of rootfs to archive; returns the manifest digest.

    The layer goes to a file beside the archive first (its digest names it inside the
    archive, and it is known only at the end) and is removed afterwards.
    """
    layer_path = archive.with_name(archive.name + ".layer.tmp")
    try:
        layer, diff_id = write_layer(rootfs, layer_path)
        config_bytes, config_blob = _json_blob(_config_document(config, diff_id))
        manifest_bytes, manifest_blob = _json_blob({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config_blob.descriptor(MEDIA_CONFIG),
            "layers": [layer.descriptor(MEDIA_LAYER)],
        })
        annotations = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}
        platform = {"architecture": config.architecture, "os": "linux"}
        index_bytes, _ = _json_blob({
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [manifest_blob.descriptor(MEDIA_MANIFEST, platform=platform,
                                                   annotations=annotations)],
        })
        with tarfile.open(archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            _add_bytes(tar, "index.json", index_bytes)
            _add_dir(tar, "blobs")
            _add_dir(tar, "blobs/sha256")
            for blob, data in ((config_blob, config_bytes), (manifest_blob, manifest_bytes)):
                _add_bytes(tar, _blob_name(blob), data)
            info = tarfile.TarInfo(_blob_name(layer))
            info.size, info.mode, info.mtime = layer.size, 0o644, 0
            with layer_path.open("rb") as content:
                tar.addfile(info, content)
        return manifest_blob.digest
    finally:
        layer_path.unlink(missing_ok=True)


def _blob_name(blob: Blob) -> str:
    algorithm, hex_digest = blob.digest.split(":", 1)
    return f"blobs/{algorithm}/{hex_digest}"
