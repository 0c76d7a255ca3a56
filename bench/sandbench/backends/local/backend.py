"""The local backend: sandboxes on this host, no cluster.

Runtimes come from runtimeclasses/local.yaml; each names a driver (``process``, ``oci`` or
``vm``).
Every sandbox starts from the unpacked workload image built by ``sandbench image build``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from sandbench import image
from sandbench.backends.base import Backend, BackendError, BackendInputError, Finding, Progress
from sandbench.backends.local import cgroups, mounts, qemu, qemu_vm
from sandbench.backends.local.native import NativeRuntime
from sandbench.backends.local.oci import STATE_ROOT, OciRuntime
from sandbench.facts import host as hostfacts
from sandbench.model import Case, Execution
from sandbench.resources import runtimeclasses_dir
from sandbench.spec import Resources

Driver = NativeRuntime | OciRuntime | qemu.QemuRuntime


def runtime_table() -> dict[str, dict[str, Any]]:
    """runtimeclasses/local.yaml, the only place local runtime names are written."""
    data = yaml.safe_load((runtimeclasses_dir() / "local.yaml").read_text())
    table: dict[str, dict[str, Any]] = data["runtimes"]
    return table


class LocalBackend(Backend):
    name = "local"

    def __init__(self, cache_dir: Path, resources: Resources, run_id: str = "adhoc") -> None:
        breaker = mounts.option_breaker(cache_dir)
        if breaker:
            # Refused before the image is built there: containers' overlays could not mount.
            raise BackendInputError(
                f"cache directory {str(cache_dir)!r} has {breaker} in its path, which breaks "
                f"overlay mount options; choose a path without , : \" \\ or control "
                f"characters (--cache-dir or $SANDBENCH_CACHE)")
        self.cache_dir = cache_dir
        self.resources = resources
        self.scratch = cache_dir / "scratch" / run_id
        self.table = runtime_table()
        self._image: image.WorkloadImage | None = None
        self._drivers: dict[str, Driver] = {}
        self._live: set[tuple[str, str]] = set()

    def known_runtimes(self) -> dict[str, str]:
        return {name: str(entry.get("description", "")) for name, entry in self.table.items()}

    def add_variant(self, name: str, runtime: str, wrapper: list[str], description: str) -> None:
        if name in self.table:
            raise BackendInputError(f"variant {name!r} has the name of a runtime; choose another")
        if runtime not in self.table:
            raise BackendInputError(f"variant {name!r} is of unknown runtime {runtime!r}; known "
                                    f"runtimes: {', '.join(self.table)}")
        what = description or f"{runtime} under {' '.join(wrapper) or 'no wrapper'}"
        self.table[name] = {**self.table[runtime], "variant_of": runtime,
                            "wrapper": list(wrapper), "description": what}

    def check(self, runtime: str) -> Finding:
        entry = self.table[runtime]
        wrapper = entry.get("wrapper") or []
        if wrapper and shutil.which(wrapper[0]) is None:
            return Finding(runtime, False, f"its wrapper {wrapper[0]!r} is not an "
                                "executable on PATH", fix="give the wrapper's absolute path")
        if entry["kind"] == "process":
            return Finding(runtime, True, "a plain process on this host")
        if entry["kind"] == "vm":
            return qemu.check(runtime, entry)
        binary = shutil.which(entry["binary"])
        if binary is None:
            return Finding(runtime, False, f"{entry['binary']!r} is not on PATH",
                                fix=f"apt-get install {entry['binary']}")
        if os.geteuid() != 0:
            return Finding(runtime, False, "OCI containers with cgroups need root",
                                fix="run sandbench as root")
        if entry["binary"] == "crun":
            blocked = cgroups.crun_blockers()
            if blocked:
                return Finding(runtime, False, blocked, fix=cgroups.CRUN_FIX)
        return Finding(runtime, True, binary, facts={"binary": binary})

    def prepare(self, runtimes: list[str], progress: Progress | None = None) -> None:
        self._image = image.build_image(self.cache_dir, progress=progress)
        for runtime in runtimes:
            if self.table[runtime]["kind"] == "vm":
                self._driver(runtime, progress)  # decides KVM or TCG, with progress shown

    def _driver(self, runtime: str, progress: Progress | None = None) -> Driver:
        if runtime not in self._drivers:
            if self._image is None:
                raise BackendError("the workload image is not prepared; call prepare() first")
            entry = self.table[runtime]
            wrapper = tuple(entry.get("wrapper") or ())
            if entry["kind"] == "process":
                self._drivers[runtime] = NativeRuntime(runtime, self._image.rootfs, self.scratch,
                                                       wrapper)
            elif entry["kind"] == "vm":
                self._drivers[runtime] = self._vm_driver(runtime, entry, wrapper, progress)
            else:
                binary = shutil.which(entry["binary"]) or entry["binary"]
                self._drivers[runtime] = OciRuntime(
                    runtime, binary, self._image.rootfs, self.scratch, self.resources, wrapper,
                    entry.get("variant_of", ""))
        return self._drivers[runtime]

    def _vm_driver(self, runtime: str, entry: dict[str, Any], wrapper: tuple[str, ...],
                   progress: Progress | None) -> qemu.QemuRuntime:
        assert self._image is not None
        if self._image.guest is None:
            raise BackendError("the workload image has no VM guest; run `sandbench image build`")
        binary = shutil.which(entry["binary"]) or entry["binary"]
        config = qemu_vm.vm_config(entry, binary, self.resources, self.scratch, wrapper)
        return qemu.QemuRuntime.create(runtime, config, self._image.guest, self.cache_dir,
                                       self.scratch, str(entry.get("accel", "auto")), progress)

    def execute(self, runtime: str, case: Case, sandbox_id: str, timeout_s: float) -> Execution:
        driver = self._driver(runtime)
        self._live.add((runtime, sandbox_id))
        try:
            return driver.execute(case, sandbox_id, timeout_s)
        finally:
            self._live.discard((runtime, sandbox_id))

    def cleanup(self) -> list[str]:
        deleted = []
        for runtime, sandbox_id in sorted(self._live):
            driver = self._drivers[runtime]
            if isinstance(driver, (OciRuntime, qemu.QemuRuntime)):
                driver.delete(sandbox_id)
            deleted.append(sandbox_id)
        self._live.clear()
        deleted += qemu_vm.kill_leftovers(self.scratch)
        mounts.unmount_all(self.scratch)
        shutil.rmtree(self.scratch, ignore_errors=True)
        return deleted

    def gc(self) -> list[str]:
        deleted = []
        scratch_root = self.cache_dir / "scratch"
        for name, entry in self.table.items():
            if entry["kind"] != "oci" or shutil.which(entry["binary"]) is None:
                continue
            driver = OciRuntime(name, shutil.which(entry["binary"]) or "", Path("/"),
                                scratch_root, self.resources)
            for sandbox_id in driver.leftovers():
                driver.delete(sandbox_id)
                deleted.append(f"{name} container {sandbox_id}")
        deleted += qemu_vm.kill_leftovers(scratch_root)
        deleted += [f"mount {p}" for p in mounts.unmount_all(scratch_root)]
        if scratch_root.is_dir():
            for leftover in sorted(scratch_root.iterdir()):
                shutil.rmtree(leftover, ignore_errors=True)
                deleted.append(f"scratch {leftover}")
        deleted += [f"cgroup {p}" for p in cgroups.remove_empty("sandbench")]
        return deleted

    def environment(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"host": hostfacts.host_facts(), "runtimes": {}}
        for name, entry in self.table.items():
            runtime: dict[str, Any] = {"kind": entry["kind"], "description": entry.get("description")}
            if entry["kind"] == "oci" and shutil.which(entry["binary"]):
                runtime["binary"] = shutil.which(entry["binary"])
                runtime["version"] = hostfacts.tool_version(entry["binary"])
            elif entry["kind"] == "process":
                runtime["fio"] = hostfacts.tool_version("fio")
            elif entry["kind"] == "vm":
                driver = self._drivers.get(name)
                runtime.update(driver.facts() if isinstance(driver, qemu.QemuRuntime) else
                               {"accel": "undecided (a test boot decides it when a run uses it)"})
            runtime.update({k: entry[k] for k in ("variant_of", "wrapper") if k in entry})
            facts["runtimes"][name] = runtime
        if self._image is not None:
            facts["image"] = {"name": self._image.name, "digest": self._image.manifest_digest,
                              "input_hash": self._image.input_hash}
        facts["state_root"] = str(STATE_ROOT)
        return facts
