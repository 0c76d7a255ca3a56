"""The local backend: sandboxes on this host, no cluster.

Runtimes come from runtimeclasses/local.yaml; each names a driver (``process`` or ``oci``).
Every sandbox starts from the unpacked workload image built by ``sandbench image build``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from sandbench import hostfacts, image
from sandbench.backends import cgroups, mounts
from sandbench.backends.base import Availability, Backend, BackendError, Progress
from sandbench.backends.native import NativeRuntime
from sandbench.backends.oci import STATE_ROOT, OciRuntime
from sandbench.model import Case, Execution
from sandbench.resources import runtimeclasses_dir
from sandbench.spec import Resources

Driver = NativeRuntime | OciRuntime


def runtime_table() -> dict[str, dict[str, Any]]:
    """runtimeclasses/local.yaml, the only place local runtime names are written."""
    data = yaml.safe_load((runtimeclasses_dir() / "local.yaml").read_text())
    table: dict[str, dict[str, Any]] = data["runtimes"]
    return table


class LocalBackend(Backend):
    name = "local"

    def __init__(self, cache_dir: Path, resources: Resources, run_id: str = "adhoc") -> None:
        self.cache_dir = cache_dir
        self.resources = resources
        self.scratch = cache_dir / "scratch" / run_id
        self.table = runtime_table()
        self._image: image.WorkloadImage | None = None
        self._drivers: dict[str, Driver] = {}
        self._live: set[tuple[str, str]] = set()

    def known_runtimes(self) -> dict[str, str]:
        return {name: str(entry.get("description", "")) for name, entry in self.table.items()}

    def check(self, runtime: str) -> Availability:
        entry = self.table[runtime]
        if entry["kind"] == "process":
            return Availability(runtime, True, "a plain process on this host")
        binary = shutil.which(entry["binary"])
        if binary is None:
            return Availability(runtime, False, f"{entry['binary']!r} is not on PATH",
                                fix=f"apt-get install {entry['binary']}")
        if os.geteuid() != 0:
            return Availability(runtime, False, "OCI containers with cgroups need root",
                                fix="run sandbench as root")
        if runtime == "crun":
            blocked = cgroups.crun_blockers()
            if blocked:
                return Availability(runtime, False, blocked, fix=cgroups.CRUN_FIX)
        return Availability(runtime, True, binary, facts={"binary": binary})

    def prepare(self, progress: Progress | None = None) -> None:
        self._image = image.build_image(self.cache_dir, progress=progress)

    def _driver(self, runtime: str) -> Driver:
        if runtime not in self._drivers:
            if self._image is None:
                raise BackendError("the workload image is not prepared; call prepare() first")
            entry = self.table[runtime]
            if entry["kind"] == "process":
                self._drivers[runtime] = NativeRuntime(runtime, self._image.rootfs, self.scratch)
            else:
                binary = shutil.which(entry["binary"]) or entry["binary"]
                self._drivers[runtime] = OciRuntime(
                    runtime, binary, self._image.rootfs, self.scratch, self.resources)
        return self._drivers[runtime]

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
            if isinstance(driver, OciRuntime):
                driver.delete(sandbox_id)
            deleted.append(sandbox_id)
        self._live.clear()
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
            facts["runtimes"][name] = runtime
        if self._image is not None:
            facts["image"] = {"name": self._image.name, "digest": self._image.manifest_digest,
                              "input_hash": self._image.input_hash}
        facts["state_root"] = str(STATE_ROOT)
        return facts
