"""Where io's two targets are under gVisor's runsc, from the flags it actually runs with.

gVisor decides where a sandbox's writes go with its own flags, not with the OCI bundle:
``--overlay2`` puts an overlay inside the sentry over the root filesystem (or over every mount),
whose upper layer lives in sentry memory, backed by a host file or not; ``--directfs`` lets the
sentry open the host's files itself instead of asking the gofer; ``--file-access-mounts`` says
whether the sentry may cache a volume (exclusive) or revalidates it against the host (shared).
Their defaults change between gVisor versions, so they are read from the runsc binary in use
(``runsc flags``), and the flags sandbench passes (runtimeclasses/local.yaml) override them.

Seen on this machine with the default ``--overlay2=root:self`` (tests/cluster/GVISOR-NOTES.md
and tests/integration/test_runsc.py): inside the sandbox ``/`` is an ``overlay`` and ``/data``
is ``9p ... directfs``; a file written under ``/`` shows up nowhere on the host, a file written
to ``/data`` shows up in the bundle's volume, and the sentry holds
``<rootfs>/.gvisor.filestore.<id>`` open (a 1 GiB sparse file in the bundle's host overlay).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache

#: runsc's flags that decide where io's writes go.
STORAGE_FLAGS = ("overlay2", "directfs", "file-access", "file-access-mounts")

#: "  -name value" or "  -name" at the start of a flag's entry in `runsc flags`.
_FLAG = re.compile(r"^  -(?P<name>[\w.-]+)(?: \S+)?$")
#: Go's flag package prints a non-zero default last: "(default true)", "(default "systrap")".
_DEFAULT = re.compile(r"\(default \"?(?P<value>[^\")]+)\"?\)\s*$")
#: Flags whose zero value is their default say so in their text only: "exclusive (default),".
_NAMED_DEFAULT = re.compile(r"(?P<value>[\w:=/-]+) \(default\)")


def flag_defaults(flags_text: str) -> dict[str, str]:
    """Each flag's default from the output of `runsc flags` (Go's flag.PrintDefaults); a
    boolean without one is false, another flag without one is left out."""
    entries: dict[str, list[str]] = {}
    name = ""
    for line in flags_text.splitlines():
        match = _FLAG.match(line)
        if match:
            name = match["name"]
            entries[name] = [line]
        elif name:
            entries[name].append(line)
    defaults = {}
    for name, lines in entries.items():
        text = " ".join(part.strip() for part in lines[1:])
        found = _DEFAULT.search(text) or _NAMED_DEFAULT.search(text)
        if found:
            defaults[name] = found["value"]
        elif lines[0].strip() == f"-{name}":
            defaults[name] = "false"  # a boolean: Go prints no default for false
    return defaults


def effective(defaults: dict[str, str], flags: tuple[str, ...]) -> dict[str, str]:
    """The storage flags as runsc will run with them: its defaults, then sandbench's flags."""
    settings = {name: defaults.get(name, "unknown") for name in STORAGE_FLAGS}
    for flag in flags:
        name, _, value = flag.lstrip("-").partition("=")
        if name in settings:
            settings[name] = value or "true"
    return settings


@dataclass(frozen=True)
class Target:
    """What one io target is under these flags."""

    #: Short, for the ``storage`` label on io samples.
    label: str
    #: One sentence for the report.
    description: str


def io_targets(settings: dict[str, str]) -> dict[str, Target]:
    """The rootfs and volume targets under runsc with these storage flags."""
    mounts, _, medium = settings["overlay2"].partition(":")
    medium = medium.split(",")[0]
    access = "directfs" if settings["directfs"] == "true" else "gofer"
    through = ("the sentry opens the host's files itself (directfs)" if access == "directfs"
               else "every file operation goes through the gofer process")
    overlay = _overlay(medium)
    rootfs = (Target(f"gvisor-overlay:{medium}",
                     f"gVisor's overlay inside the sentry (--overlay2={settings['overlay2']}): "
                     f"the bundle's root filesystem is its read-only lower layer and {overlay}; "
                     "no file written in the sandbox appears in the host's overlay, and "
                     "O_DIRECT, where it is accepted, bypasses no host page cache: the written "
                     "data is the sentry's memory")
              if mounts in ("root", "all") else
              Target(f"host-overlay:{access}",
                     f"the bundle's host overlay, as under runc (--overlay2=none): {through}"))
    volume = (Target(f"gvisor-overlay:{medium}",
                     f"gVisor's overlay over the volume too (--overlay2={settings['overlay2']}): "
                     f"{overlay}; writes never reach the host directory")
              if mounts == "all" else
              Target(f"host-bind:{access}",
                     f"the host directory bind-mounted at /data: {through}, "
                     f"--file-access-mounts={settings['file-access-mounts']} "
                     + ("(revalidated against the host on every access)"
                        if settings["file-access-mounts"] == "shared"
                        else "(the sentry caches it)")))
    return {"rootfs": rootfs, "volume": volume}


def _overlay(medium: str) -> str:
    if medium == "self":
        return ("writes go to an upper layer in sentry memory backed by the host file "
                ".gvisor.filestore.<sandbox id> at the top of the root filesystem's host "
                "directory")
    if medium == "memory":
        return "writes go to an upper layer in sentry memory, backed by no host file"
    if medium.startswith("dir="):
        return (f"writes go to an upper layer in sentry memory backed by a filestore file in "
                f"{medium.removeprefix('dir=')}")
    return f"writes go to an upper layer on medium {medium!r}"


#: runc and crun: the host kernel does the io on the bundle itself.
HOST = {"rootfs": Target("host-overlay", "the bundle's overlayfs on the host kernel (its page "
                                         "cache), over the unpacked image"),
        "volume": Target("host-bind", "the host directory bind-mounted at /data, on the host "
                                      "kernel")}


def runsc_targets(binary: str, flags: tuple[str, ...]) -> tuple[dict[str, str], dict[str, Target]]:
    """The storage flags a runsc binary runs with under ``flags``, and io's targets then."""
    settings = effective(_defaults_of(binary), flags)
    return settings, io_targets(settings)


@cache
def _defaults_of(binary: str) -> dict[str, str]:
    try:
        listed = subprocess.run([binary, "flags"], capture_output=True, text=True, timeout=30,
                                check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    # Go's flag package prints the list on stderr; this runsc prints it on stdout.
    return flag_defaults(listed.stdout or listed.stderr)
