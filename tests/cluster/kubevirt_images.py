"""KubeVirt's component images, built from Debian packages as OCI archives (no registry here).

usage: python3 tests/cluster/kubevirt_images.py [--version v1.7.0]

Reads the binaries build-kubevirt.sh put in ``<cache>/kubevirt/<version>/bin`` and writes one
archive per component to ``<cache>/kubevirt/<version>/images/<component>.oci.tar``, named
``localhost/sandbench/kubevirt/<component>:<version>``: the names virt-operator derives from a
KubeVirt CR with ``imageRegistry: localhost/sandbench/kubevirt`` and ``imageTag: <version>``.
Nothing is imported anywhere; up.sh (or the next step) imports them.

What goes in each image follows upstream's own image rules (cmd/*/BUILD.bazel, rpm/BUILD.bazel
of the release): the same binaries at the same paths, the same users (qemu 107, nonroot 1001),
the same libvirt configuration files taken from the module source. Only the base differs:
Debian packages instead of CentOS Stream 9 RPMs.

- virt-launcher: trixie, for libvirt 11.3 and QEMU 10.0. v1.7.0 is built and tested against
  libvirt 10.10 and QEMU 9.1 (hack/rpm-deps.sh); bookworm's 9.0 and 7.2 are older than that,
  trixie's the nearest newer. virt-launcher loads libvirt at run time (libvirt_dlopen), so the
  libvirt in this image decides which API calls work.
  Debian ships no modular daemons (no virtqemud in bookworm's or trixie's packages), only the
  monolithic libvirtd with the same QEMU driver (libvirt-daemon-driver-qemu) and the same
  configuration keys. KubeVirt execs /usr/sbin/virtqemud and connects to .../virtqemud-sock,
  so the image has a small /usr/sbin/virtqemud (VIRTQEMUD below) that points that socket name at
  libvirtd's and execs libvirtd with the same arguments.
- virt-handler: bookworm (the build host's glibc) with the tools it runs: qemu-img, findmnt,
  nft, ip, tar.
- virt-operator, virt-api, virt-controller: static Go binaries on a bookworm base-files tree.

Cache: ``images/.complete`` holds this recipe and the binaries' stamp; both must match for a
no-op. The images are built in ``images.tmp.*`` and renamed into place whole.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from sandbench.image import oci  # noqa: E402

#: Bump when what goes into an image changes, so cached images are rebuilt.
RECIPE = "kubevirt-images recipe 3"
MIRROR = "http://deb.debian.org/debian"
REPOSITORY = "localhost/sandbench/kubevirt"
#: Dropped while unpacking: nothing in a pod reads them, and they are a third of the size.
PATH_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*",
                 "/usr/share/locale/*", "/usr/share/lintian/*")
#: Upstream's passwd/group entries (cmd/virt-launcher/BUILD.bazel, the root BUILD.bazel).
PASSWD = ("root:x:0:0:root:/root:/bin/bash\n"
          "qemu:x:107:107:qemu:/home/qemu:/bin/bash\n"
          "nonroot-user:x:1001:1001:nonroot-user:/home/nonroot-user:/sbin/nologin\n"
          # Debian builds libvirt with qemu_user/qemu_group libvirt-qemu and resolves them
          # before it reads qemu.conf (which says qemu): without the entry the QEMU driver
          # fails "Failed to parse user 'libvirt-qemu'". Debian's own ids.
          "libvirt-qemu:x:64055:64055:libvirt-qemu:/var/lib/libvirt:/usr/sbin/nologin\n")
GROUP = "root:x:0:\nqemu:x:107:\nnonroot-user:x:1001:\nlibvirt-qemu:x:64055:\n"


@dataclass(frozen=True)
class Component:
    """One KubeVirt image: which Debian packages under which binaries, run how."""

    name: str
    suite: str
    """Debian release of the packages."""
    packages: tuple[str, ...]
    """Installed with their dependencies (mmdebstrap's extract variant: no maintainer scripts)."""
    binaries: tuple[str, ...]
    """From the build's bin/ to /usr/bin, the paths KubeVirt execs them by."""
    user: str = ""
    """Numeric USER; upstream's controllers run as 1001 under runAsNonRoot."""
    files: dict[str, str] = field(default_factory=dict)
    """Path in the image -> path in the KubeVirt module source."""
    scripts: dict[str, str] = field(default_factory=dict)
    """Path in the image -> name of a script defined in this file (executable)."""
    capabilities: dict[str, str] = field(default_factory=dict)
    """Path in the image -> setcap text, as upstream's xattrs rule sets them."""
    smoke: tuple[tuple[str, ...], ...] = ()
    """Commands run in a chroot of the tree; a failure fails the build, the output is kept."""


BASE = ("base-files", "netbase")

#: virtqemud for an image whose libvirt is Debian's: libvirtd under the modular daemon's name.
#: virt-launcher runs `virtqemud -f /var/run/libvirt/virtqemud.conf` (as root, or as qemu with
#: XDG_RUNTIME_DIR=/var/run) and connects to <runtime dir>/libvirt/virtqemud-sock; libvirtd
#: listens on libvirt-sock in the same directory. node-labeller.sh runs `virtqemud -d`.
VIRTQEMUD = """#!/bin/sh
# sandbench: Debian ships libvirtd but not the modular virtqemud KubeVirt runs; both load the same
# QEMU driver and read the same configuration keys. Point virtqemud's socket name at libvirtd's.
if [ "$(id -u)" = 0 ]; then dir=/run/libvirt; else dir="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/libvirt"; fi
mkdir -p "$dir" && ln -sfn libvirt-sock "$dir/virtqemud-sock"
exec /usr/sbin/libvirtd "$@"
"""
SCRIPTS = {"VIRTQEMUD": VIRTQEMUD}


def _starts(binary: str) -> tuple[str, ...]:
    """A smoke command that fails only if binary cannot start in the tree (a missing library
    exits 127): KubeVirt's commands exit 2 after printing --help (pflag's ErrHelp)."""
    return ("/bin/sh", "-c", f"{binary} --help >/dev/null 2>&1; rc=$?; "
            f"[ $rc -le 2 ] && echo '{binary} starts (--help exits '$rc')'")

COMPONENTS = (
    # virt-launcher first: the biggest and the likeliest to fail.
    Component(
        "virt-launcher", "trixie",
        (*BASE, "bash", "coreutils", "util-linux", "procps", "findutils", "tar", "iproute2",
         "nftables", "kmod", "dmidecode", "xorriso",
         "libvirt-daemon", "libvirt-daemon-driver-qemu", "libvirt-daemon-log", "libvirt-clients",
         "qemu-system-x86", "qemu-utils", "seabios", "ipxe-qemu", "passt"),
        ("virt-launcher", "virt-launcher-monitor", "virt-probe", "virt-tail", "virt-freezer",
         "container-disk"),
        files={
            "/etc/libvirt/qemu.conf": "cmd/virt-launcher/qemu.conf",
            "/etc/libvirt/virtqemud.conf": "cmd/virt-launcher/virtqemud.conf",
            "/etc/libvirt/hooks/qemu": "cmd/virt-launcher/qemu",
            "/etc/nsswitch.conf": "cmd/virt-launcher/nsswitch.conf",
            "/usr/bin/node-labeller.sh": "cmd/virt-launcher/node-labeller/node-labeller.sh",
        },
        capabilities={"/usr/bin/virt-launcher-monitor": "cap_net_bind_service=+ep"},
        scripts={"/usr/sbin/virtqemud": "VIRTQEMUD"},
        smoke=(_starts("/usr/bin/virt-launcher"), _starts("/usr/bin/virt-launcher-monitor"),
               ("/bin/sh", "-n", "/usr/sbin/virtqemud"),
               ("/usr/sbin/libvirtd", "--version"), ("/usr/sbin/virtlogd", "--version"),
               ("/usr/bin/virsh", "--version"), ("/usr/bin/qemu-system-x86_64", "--version"),
               ("/usr/bin/qemu-img", "--version"), ("/usr/bin/xorrisofs", "-version")),
    ),
    Component("virt-operator", "bookworm", BASE, ("virt-operator",), user="1001"),
    Component("virt-api", "bookworm", BASE, ("virt-api",), user="1001"),
    Component("virt-controller", "bookworm", BASE, ("virt-controller",), user="1001"),
    Component(
        "virt-handler", "bookworm",
        (*BASE, "bash", "coreutils", "util-linux", "mount", "procps", "iproute2", "nftables",
         "qemu-utils", "tar", "findutils", "kmod"),
        ("virt-handler", "virt-chroot"),
        files={"/etc/nsswitch.conf": "cmd/virt-handler/nsswitch.conf"},
        smoke=(_starts("/usr/bin/virt-handler"), _starts("/usr/bin/virt-chroot"),
               ("/usr/bin/qemu-img", "--version"),
               ("/usr/sbin/nft", "--version")),
    ),
)


class BuildError(Exception):
    """A step failed; the message names it and where its output is."""


#: The host's locale is not in the images ("setlocale: No such file or directory").
SMOKE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _run(command: list[str], log: Path, step: str, env: dict[str, str] | None = None) -> str:
    """Run command with its output appended to log; returns the output."""
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, check=False, env=env)
    with log.open("a") as out:
        out.write("$ " + " ".join(command) + "\n" + result.stdout)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-5:])
        raise BuildError(f"{step}: {' '.join(command)!r} exited with {result.returncode}; "
                         f"log {str(log)!r}; last lines:\n{tail}")
    return result.stdout


def _rootfs(component: Component, dest: Path, log: Path, pristine: dict[str, Path]) -> None:
    """Unpack the packages into dest; an identical package set is copied, not unpacked again
    (the three controllers share one tree, and most of mmdebstrap's time is apt-get update)."""
    key = component.suite + ":" + ",".join(component.packages)
    if key in pristine:
        shutil.copytree(pristine[key], dest, symlinks=True)
        return
    _run(["mmdebstrap", "--mode=root", "--variant=extract",
          "--include=" + ",".join(component.packages),
          *(f"--dpkgopt=path-exclude={p}" for p in PATH_EXCLUDES),
          f'--extract-hook=ls "$1"/var/cache/apt/archives > "$1"/{DEB_LIST}',
          component.suite, str(dest), MIRROR], log, f"mmdebstrap {component.name}")
    # mmdebstrap leaves device nodes in /dev (copying /dev/zero never ends); runtimes mount
    # their own /dev, and device nodes cannot go into a layer anyway.
    shutil.rmtree(dest / "dev", ignore_errors=True)
    if sum(c.suite + ":" + ",".join(c.packages) == key for c in COMPONENTS) > 1:
        pristine[key] = dest.with_name(dest.name + ".pristine")
        shutil.copytree(dest, pristine[key], symlinks=True)


def _shape(rootfs: Path) -> None:
    for name, mode in (("dev", 0o755), ("proc", 0o555), ("sys", 0o555), ("tmp", 0o1777),
                       ("run", 0o755), ("root", 0o700), ("home/qemu", 0o755),
                       ("var/lib/kubevirt-node-labeller", 0o755)):
        path = rootfs / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
    # Owned by root in the image all the same: the layer writer records every entry as 0:0.
    # The extract variant runs no maintainer scripts: no users exist until written here.
    # base-files' maintainer script makes /var/run and /var/lock links into /run; the extract
    # variant runs none, and libvirt's clients look for /var/run/libvirt/libvirt-sock.
    for name, target in (("var/run", "/run"), ("var/lock", "/run/lock")):
        path = rootfs / name
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
        if not os.path.lexists(path):
            path.symlink_to(target)
    (rootfs / "etc/passwd").write_text(PASSWD)
    (rootfs / "etc/group").write_text(GROUP)
    # /bin/sh is dash's, an Essential package the extract variant leaves out; KubeVirt's
    # scripts and this file's wrapper need a /bin/sh, and bash is there to be one.
    for bindir in ("bin", "usr/bin"):
        sh, bash = rootfs / bindir / "sh", rootfs / bindir / "bash"
        if (rootfs / bindir).is_dir() and not (rootfs / bindir).is_symlink() \
                and os.path.lexists(bash) and not os.path.lexists(sh):
            sh.symlink_to("bash")
    (rootfs / "etc/hostname").unlink(missing_ok=True)
    (rootfs / "etc/resolv.conf").unlink(missing_ok=True)


def _install(component: Component, rootfs: Path, bindir: Path, source: Path) -> None:
    for binary in component.binaries:
        target = rootfs / "usr/bin" / binary
        shutil.copyfile(bindir / binary, target)
        target.chmod(0o755)
    for inside, relative in component.files.items():
        target = rootfs / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, target)
        target.chmod(0o755 if inside.startswith(("/usr/bin/", "/etc/libvirt/hooks/")) else 0o644)


def _install_scripts(component: Component, rootfs: Path) -> None:
    for inside, script in component.scripts.items():
        target = rootfs / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(SCRIPTS[script])
        target.chmod(0o755)


def _set_capabilities(component: Component, rootfs: Path, log: Path) -> None:
    for inside, caps in component.capabilities.items():
        _run(["setcap", caps, str(rootfs / inside.lstrip("/"))], log, "setcap")


def _smoke(component: Component, rootfs: Path, log: Path) -> dict[str, str]:
    """Each smoke command's first output line: the versions the image really has."""
    versions: dict[str, str] = {}
    for command in component.smoke:
        output = _run(["chroot", str(rootfs), *command], log, f"smoke test {component.name}",
                      env=SMOKE_ENV)
        versions[" ".join(command)] = output.strip().splitlines()[0] if output.strip() else ""
    return versions


#: Where the extract hook lists the .deb files mmdebstrap unpacked (the extract variant records
#: nothing in dpkg's status file); read and removed before the layer is written.
DEB_LIST = "sandbench-debs.txt"


def _debian_versions(rootfs: Path) -> dict[str, str]:
    """Package -> version of every .deb unpacked into rootfs: what to record as the image's."""
    listing = rootfs / DEB_LIST
    found: dict[str, str] = {}
    for line in listing.read_text().split() if listing.exists() else []:
        parts = line.removesuffix(".deb").split("_")
        if len(parts) == 3:
            found[parts[0]] = parts[1].replace("%3a", ":")
    listing.unlink(missing_ok=True)
    return found


def build_one(component: Component, version: str, bindir: Path, source: Path,
              out: Path, scratch: Path, log: Path,
              pristine: dict[str, Path]) -> dict[str, object]:
    rootfs = scratch / component.name
    started = time.monotonic()
    _rootfs(component, rootfs, log, pristine)
    _shape(rootfs)
    _install(component, rootfs, bindir, source)
    _install_scripts(component, rootfs)
    _set_capabilities(component, rootfs, log)
    versions = _smoke(component, rootfs, log)
    # Without a mounted /dev the smoke tests' ">/dev/null" made a plain file there: start over.
    shutil.rmtree(rootfs / "dev")
    (rootfs / "dev").mkdir(mode=0o755)
    packages = _debian_versions(rootfs)
    name = f"{REPOSITORY}/{component.name}:{version}"
    config = oci.ImageConfig(entrypoint=(f"/usr/bin/{component.name}",), user=component.user)
    archive = out / f"{component.name}.oci.tar"
    digest = oci.write_archive(rootfs, archive, name=name, tag=version, config=config)
    shutil.rmtree(rootfs)
    return {"name": name, "archive": archive.name, "manifest_digest": digest,
            "suite": component.suite, "bytes": archive.stat().st_size,
            "seconds": round(time.monotonic() - started, 1),
            "debian_packages": packages, "smoke": versions}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=os.environ.get("KUBEVIRT_VERSION", "v1.7.0"))
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "SANDBENCH_CACHE", Path.home() / ".cache/sandbench")))
    parser.add_argument("--only", default="", help="comma-separated components (for debugging)")
    args = parser.parse_args()
    root = args.cache / "kubevirt" / args.version
    bindir, images = root / "bin", root / "images"
    bin_stamp = (bindir / ".complete").read_text().strip() if (bindir / ".complete").exists() else ""
    if not bin_stamp:
        print(f"kubevirt-images: no complete build in {bindir}; run build-kubevirt.sh first",
              file=sys.stderr)
        return 1
    stamp = f"{RECIPE} | {bin_stamp}"
    # One image build at a time per version (each deletes the other's scratch dirs otherwise);
    # the lock is released when the process exits.
    root.mkdir(parents=True, exist_ok=True)
    lock = (root / ".images.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    wanted = [c for c in COMPONENTS if not args.only or c.name in args.only.split(",")]
    if not args.only and (images / ".complete").exists() \
            and (images / ".complete").read_text().strip() == stamp:
        print(f"kubevirt-images: {args.version} already in {images} (stamp present), skipping",
              file=sys.stderr)
        print(images)
        return 0
    source = Path(subprocess.run(
        ["go", "mod", "download", "-json", f"kubevirt.io/kubevirt@{args.version}"],
        check=True, capture_output=True, text=True,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}).stdout
        .split('"Dir": "', 1)[1].split('"', 1)[0])
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob("images.tmp.*"):
        shutil.rmtree(stale)
    out = Path(tempfile.mkdtemp(prefix="images.tmp.", dir=root))
    scratch = Path(tempfile.mkdtemp(prefix="rootfs.", dir=out))
    # Logs live outside the scratch dir, so a failed build leaves them behind.
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    started = time.monotonic()
    manifest: dict[str, object] = {"recipe": RECIPE, "binaries": bin_stamp, "images": {}}
    pristine: dict[str, Path] = {}
    try:
        for component in wanted:
            log = logs / f"image-{component.name}.log"
            log.write_text("")
            print(f"kubevirt-images: {component.name} ({component.suite}, log {log})",
                  file=sys.stderr)
            built = build_one(component, args.version, bindir, source, out, scratch, log,
                              pristine)
            manifest["images"][component.name] = built  # type: ignore[index]
            print(f"kubevirt-images: {component.name}: {built['bytes']} bytes in "
                  f"{built['seconds']} s", file=sys.stderr)
        shutil.rmtree(scratch)
        manifest["seconds"] = round(time.monotonic() - started, 1)
        (out / "images.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if args.only:
            print(f"kubevirt-images: --only: left in {out}, not cached", file=sys.stderr)
            print(out)
            return 0
        (out / ".complete").write_text(stamp + "\n")
        out.chmod(0o755)
        if images.exists():
            old = Path(tempfile.mkdtemp(prefix="images.old.", dir=root))
            images.rename(old / "images")
            out.rename(images)
            shutil.rmtree(old)
        else:
            out.rename(images)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    print(f"kubevirt-images: done in {manifest['seconds']} s", file=sys.stderr)
    print(images)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BuildError as error:
        print(f"kubevirt-images: {error}", file=sys.stderr)
        sys.exit(1)
