"""The guest's initramfs: busybox, the guest init and the few kernel modules it needs.

Debian's cloud kernel has ext4 and the 8250 serial console built in but virtio_pci and
virtio_blk as modules, so a guest cannot reach its disks without an initramfs that loads them.
Debian's own initramfs-tools image carries hundreds of modules and udev; this one carries the
modules the guest uses and their dependencies, nothing else, so the kernel has less to unpack
and the init less to do.

The archive is written here rather than with cpio(1): it needs a device node (/dev/console,
which the kernel opens for init's stdio before anything is mounted) that only root could
mknod, and writing it directly makes it deterministic (sorted, mtime 0, owner 0:0). It is not
compressed: the kernel would decompress it on every boot, which under emulation is time that
shows in the start phases, and it is only a few MiB.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sandbench.image.rootfs import ImageBuildError

#: Directories the init expects to exist before it mounts anything.
DIRECTORIES = ("bin", "dev", "etc", "etc/sandbench", "lib", "lib/modules", "mnt", "proc", "sys",
               "tmp")
#: Where the init reads the modules to load, in order, one file name per line.
MODULE_LIST = "etc/sandbench/modules"
#: The modules a VM with a network device loads after those, in load order.
NET_MODULE_LIST = "etc/sandbench/net-modules"
#: /dev/console: character device 5:1.
CONSOLE = (5, 1)


@dataclass(frozen=True)
class Entry:
    """One file of the archive."""

    path: str
    """Path inside the archive, without the leading slash."""
    mode: int
    """Full st_mode: the file type bits and the permissions."""
    data: bytes = b""
    """File content, or a symlink's target."""
    rdev: tuple[int, int] = (0, 0)
    """(major, minor) of a device node."""


def _header(ino: int, entry: Entry, name: bytes) -> bytes:
    fields = (ino, entry.mode, 0, 0, 1, 0, len(entry.data), 0, 0, *entry.rdev, len(name) + 1, 0)
    return b"070701" + b"".join(b"%08X" % value for value in fields)


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def write_newc(entries: Iterable[Entry], dest: Path) -> None:
    """Write entries as a cpio "newc" archive, the format the kernel unpacks."""
    with dest.open("wb") as out:
        trailer = Entry("TRAILER!!!", 0)
        for ino, entry in enumerate([*sorted(entries, key=lambda e: e.path), trailer], start=1):
            name = entry.path.encode()
            header = _header(0 if entry is trailer else ino, entry, name)
            out.write(header + name + b"\0" + _pad(len(header) + len(name) + 1))
            out.write(entry.data + _pad(len(entry.data)))


def module_name(path: str) -> str:
    """The name modprobe knows a module file by: its base name, '-' read as '_'."""
    base = path.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


def _read_dep(modules_dir: Path) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        if ":" in line:
            module, deps = line.split(":", 1)
            table[module.strip()] = deps.split()
    return table


def module_closure(modules_dir: Path, wanted: Sequence[str]) -> list[str]:
    """Paths (relative to modules_dir) of the wanted modules and everything they depend on,
    each after its dependencies; modules built into the kernel are left out."""
    deps = _read_dep(modules_dir)
    by_name = {module_name(path): path for path in deps}
    builtin_file = modules_dir / "modules.builtin"
    listed = builtin_file.read_text().split() if builtin_file.is_file() else []
    builtin = {module_name(path) for path in listed}
    order: list[str] = []

    def visit(path: str) -> None:
        for dep in deps.get(path, []):
            visit(dep)
        if path not in order:
            order.append(path)

    for name in wanted:
        key = name.replace("-", "_")
        if key in builtin:
            continue
        if key not in by_name:
            raise ImageBuildError(f"kernel module {name!r} is neither built in nor in "
                                  f"{str(modules_dir)!r}; the guest cannot reach its disks "
                                  "without it")
        visit(by_name[key])
    compressed = [p for p in order if not p.endswith(".ko")]
    if compressed:
        raise ImageBuildError(f"kernel modules {compressed} are compressed; busybox insmod in "
                              "the guest loads only plain .ko files")
    return order


def _file(path: str, source: Path, mode: int) -> Entry:
    return Entry(path, stat.S_IFREG | mode, source.read_bytes())


def entries(*, init: Path, busybox: Path, applets: Sequence[str], modules_dir: Path,
            modules: Sequence[str], net_modules: Sequence[str] = ()) -> list[Entry]:
    """Everything the initramfs holds. ``modules`` come from module_closure, in load order;
    ``net_modules`` too, less those already in ``modules``."""
    net_modules = [path for path in net_modules if path not in modules]
    all_modules = [*modules, *net_modules]
    found = [Entry(d, stat.S_IFDIR | 0o755) for d in DIRECTORIES]
    found.append(Entry("dev/console", stat.S_IFCHR | 0o600, rdev=CONSOLE))
    found.append(_file("init", init, 0o755))
    found.append(_file("bin/busybox", busybox, 0o755))
    found += [Entry(f"bin/{applet}", stat.S_IFLNK | 0o777, b"busybox") for applet in applets]
    names = [path.rsplit("/", 1)[-1] for path in all_modules]
    if len(set(names)) != len(names):
        raise ImageBuildError(f"two kernel modules share a file name: {sorted(names)}")
    found += [_file(f"lib/modules/{name}", modules_dir / path, 0o644)
              for name, path in zip(names, all_modules)]
    for list_path, count in ((MODULE_LIST, slice(0, len(modules))),
                             (NET_MODULE_LIST, slice(len(modules), None))):
        listing = "".join(f"{name}\n" for name in names[count]).encode()
        found.append(Entry(list_path, stat.S_IFREG | 0o644, listing))
    return found
