"""The local backend: sandboxes on this host, no cluster.

Runtimes come from runtimeclasses/local.yaml; each names a driver (``process``, ``oci`` or
``vm``).
Every sandbox starts from the unpacked workload image built by ``sandbench image build``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from sandbench import image, owner
from sandbench.backends.base import Backend, BackendError, BackendInputError, Finding, Progress
from sandbench.backends.local import cgroups, gvisor, mounts, qemu, qemu_vm
from sandbench.backends.local.native import NativeRuntime
from sandbench.backends.local.oci import SAME_KERNEL, STATE_ROOT, OciRuntime
from sandbench.facts import host as hostfacts
from sandbench.model import Case, Clock, ClockOffset, Execution
from sandbench.resources import runtimeclasses_dir
from sandbench.spec import Resources

Driver = NativeRuntime | OciRuntime | qemu.QemuRuntime
#: Seconds a cgroup with no container is left alone by gc: a `create` in flight makes the
#: cgroup before the runtime records the container (it takes well under a second).
CGROUP_GRACE_S = 60.0

#: How to get a runtime that is not installed, where apt-get is not the answer.
FIXES = {"runsc": "make demo builds it with Go >= 1.26.3 (tests/cluster/build-gvisor.sh), or put "
                  "gVisor's release runsc on PATH: https://gvisor.dev/docs/user_guide/install/"}


def runtime_table() -> dict[str, dict[str, Any]]:
    """runtimeclasses/local.yaml, the only place local runtime names are written."""
    data = yaml.safe_load((runtimeclasses_dir() / "local.yaml").read_text())
    table: dict[str, dict[str, Any]] = data["runtimes"]
    return table


def find_binary(entry: dict[str, Any], cache_dir: Path) -> str | None:
    """A runtime's binary: on PATH (what the user installed, used as is), else built into
    the cache by `make demo` (``built`` in local.yaml, a glob under the cache dir)."""
    on_path = shutil.which(str(entry["binary"]))
    if on_path or not entry.get("built"):
        return on_path
    built = sorted(cache_dir.glob(str(entry["built"])), reverse=True)
    return str(built[0]) if built and os.access(built[0], os.X_OK) else None


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
        self.run_id = run_id
        self.scratch = cache_dir / "scratch" / run_id
        self.table = runtime_table()
        self._image: image.WorkloadImage | None = None
        self._drivers: dict[str, Driver] = {}
        self._live: set[tuple[str, str]] = set()
        self._owner: owner.OwnerLock | None = None

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
        binary = find_binary(entry, self.cache_dir)
        if binary is None:
            return Finding(runtime, False, f"{entry['binary']!r} is not on PATH"
                           + (f" nor built under {self.cache_dir}" if entry.get("built") else ""),
                           fix=FIXES.get(str(entry["binary"]),
                                         f"apt-get install {entry['binary']}"))
        if os.geteuid() != 0:
            return Finding(runtime, False, "OCI containers with cgroups need root",
                                fix="run sandbench as root")
        if entry["binary"] == "crun":
            blocked = cgroups.crun_blockers()
            if blocked:
                return Finding(runtime, False, blocked, fix=cgroups.CRUN_FIX)
        return Finding(runtime, True, binary, facts={"binary": binary})

    def prepare(self, runtimes: list[str], progress: Progress | None = None) -> None:
        self._claim()
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
                self._drivers[runtime] = self._oci_driver(runtime, entry, wrapper)
        return self._drivers[runtime]

    def _oci_driver(self, runtime: str, entry: dict[str, Any],
                    wrapper: tuple[str, ...]) -> OciRuntime:
        assert self._image is not None
        binary = find_binary(entry, self.cache_dir) or str(entry["binary"])
        clock = (ClockOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, 0, 0,
                             str(entry["sandbox_clock"])) if entry.get("sandbox_clock")
                 else SAME_KERNEL)
        return OciRuntime(runtime, binary, self._image.rootfs, self.scratch, self.resources,
                          wrapper, str(entry.get("variant_of", "")),
                          tuple(str(f) for f in entry.get("flags") or ()),
                          {str(k): str(v) for k, v in (entry.get("labels") or {}).items()},
                          clock,
                          {target: t.label for target, t in _io_targets(entry, binary)[1].items()})

    def _vm_driver(self, runtime: str, entry: dict[str, Any], wrapper: tuple[str, ...],
                   progress: Progress | None) -> qemu.QemuRuntime:
        assert self._image is not None
        if self._image.guest is None:
            raise BackendError("the workload image has no VM guest; run `sandbench image build`")
        binary = shutil.which(entry["binary"]) or entry["binary"]
        config = qemu_vm.vm_config(entry, binary, self.resources, self.scratch, wrapper)
        return qemu.QemuRuntime.create(runtime, config, self._image.guest, self.cache_dir,
                                       self.scratch, str(entry.get("accel", "auto")), progress)

    def _claim(self) -> None:
        """Make the run's scratch directory and hold its owner file for the run's life, so
        `gc` (in this process or any other) never touches what this run uses."""
        if self._owner is not None:
            return
        self.scratch.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.scratch.mkdir()
        except FileExistsError:
            if owner.owned_by_live_process(self.scratch):
                raise BackendError(f"the scratch directory {str(self.scratch)!r} belongs to "
                                   "another live run with the same id; start again") from None
        self._owner = owner.OwnerLock(self.scratch, {"run_id": self.run_id})

    def execute(self, runtime: str, case: Case, sandbox_id: str, timeout_s: float) -> Execution:
        driver = self._driver(runtime)
        self._live.add((runtime, sandbox_id))
        # Live until deleted: when a signal cuts execute short, cleanup() deletes it.
        execution = driver.execute(case, sandbox_id, timeout_s)
        self._live.discard((runtime, sandbox_id))
        if self._owner is not None and not self._owner.intact():
            execution.error = (f"destroyed from outside the run: the run's scratch directory "
                               f"{str(self.scratch)!r} was deleted while the sandbox ran"
                               + (f" ({execution.error})" if execution.error else ""))
        return execution

    def interference(self) -> list[str]:
        if self._owner is not None and not self._owner.intact():
            return [f"the run's scratch directory {str(self.scratch)!r} was deleted while it "
                    "ran (an older `sandbench gc`?): sandboxes may have been destroyed under it"]
        return []

    def cleanup(self) -> list[str]:
        deleted = []
        for runtime, sandbox_id in sorted(self._live):
            self._drivers[runtime].delete(sandbox_id)
            self._live.discard((runtime, sandbox_id))
            deleted.append(sandbox_id)
        for driver in self._drivers.values():
            # runsc keeps a shared empty network namespace bind-mounted in its --root.
            if isinstance(driver, OciRuntime):
                deleted += [f"mount {p}" for p in mounts.unmount_all(driver.state_root)]
        deleted += qemu_vm.kill_leftovers(self.scratch)
        for attempt in range(3):
            # A runtime that was stopped mid-create may still hold a mount for a moment.
            mounts.unmount_all(self.scratch)
            shutil.rmtree(self.scratch, ignore_errors=True)
            if not self.scratch.exists():
                break
            time.sleep(0.2)
        if self._owner is not None:
            self._owner.release()
            self._owner = None
        return deleted

    def gc(self) -> list[str]:
        """Delete what runs whose owner is dead left behind; a live run's containers, cgroups,
        mounts and scratch are never touched (see sandbench.owner)."""
        scratch_root = self.cache_dir / "scratch"
        runs = sorted(p for p in scratch_root.iterdir() if p.is_dir()) if scratch_root.is_dir() else []
        live = [run for run in runs if owner.owned_by_live_process(run)]
        dead = [run for run in runs if run not in live]
        kept = _Ownership(live)
        deleted, containers = [], set()
        for name, entry in self.table.items():
            binary = find_binary(entry, self.cache_dir) if entry["kind"] == "oci" else None
            if binary is None:
                continue
            driver = OciRuntime(name, binary, Path("/"), scratch_root, self.resources,
                                variant_of=str(entry.get("variant_of", "")),
                                flags=tuple(str(f) for f in entry.get("flags") or ()))
            for sandbox_id, bundle in driver.leftovers().items():
                if kept.owns(sandbox_id, bundle):
                    containers.add(sandbox_id)
                else:
                    driver.delete(sandbox_id)
                    deleted.append(f"{name} container {sandbox_id}")
        for run in dead:
            deleted += qemu_vm.kill_leftovers(run)
            deleted += [f"mount {p}" for p in mounts.unmount_all(run)]
            shutil.rmtree(run, ignore_errors=True)
            deleted.append(f"scratch {run}")
        # A live container's cgroup is its container's (whatever cache its run used); one
        # without a container is a create cut short, once it is older than any create takes.
        for name in sorted(cgroups.children("sandbench")):
            relative = f"/sandbench/{name}"
            if name in containers or kept.owns(name) or cgroups.age_s(relative) < CGROUP_GRACE_S:
                continue
            deleted += [f"cgroup {p}" for p in cgroups.remove(relative)]
        return deleted

    def environment(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"host": hostfacts.host_facts(), "runtimes": {}}
        for name, entry in self.table.items():
            runtime: dict[str, Any] = {"kind": entry["kind"], "description": entry.get("description")}
            binary = find_binary(entry, self.cache_dir) if entry["kind"] == "oci" else None
            if binary is not None:
                runtime["binary"] = binary
                runtime["version"] = hostfacts.tool_version(binary)
                runtime.update({k: entry[k] for k in ("flags", "labels", "sandbox_clock")
                                if k in entry})
                settings, targets = _io_targets(entry, binary)
                if settings:
                    runtime["storage_flags"] = settings
                runtime["io_targets"] = {name: {"label": t.label, "description": t.description}
                                         for name, t in targets.items()}
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


def _io_targets(entry: dict[str, Any], binary: str
                ) -> tuple[dict[str, str], dict[str, gvisor.Target]]:
    """What io's targets are under an OCI runtime: gVisor's from the flags its runsc runs with
    (its defaults, then local.yaml's), runc's and crun's the host kernel's own."""
    if entry["binary"] != "runsc":
        return {}, gvisor.HOST
    return gvisor.runsc_targets(binary, tuple(str(f) for f in entry.get("flags") or ()))


class _Ownership:
    """Which sandboxes live runs own. A container's bundle lies in the scratch directory of
    the run that made it, whatever cache that run used: its owner file says. Otherwise (a
    cgroup, a runtime that does not say) by this cache's live runs: ids starting with a live
    run's sandbox prefix, and any with a directory in a live run's scratch directory (ids of
    doctor and the pytest plugin, older sandbench runs)."""

    def __init__(self, live_runs: list[Path]) -> None:
        self.prefixes = tuple(f"{owner.sandbox_prefix(run.name)}-" for run in live_runs)
        self.names = {child.name for run in live_runs for child in _subdirs(run)}

    def owns(self, sandbox_id: str, bundle: Path | None = None) -> bool:
        if bundle is not None and bundle.parent.is_dir() \
                and owner.owned_by_live_process(bundle.parent):
            return True
        return sandbox_id in self.names or sandbox_id.startswith(self.prefixes)


def _subdirs(directory: Path) -> list[Path]:
    try:
        return [child for child in directory.iterdir() if child.is_dir()]
    except OSError:
        return []
