"""The local backend: sandboxes on this host, no cluster.

Runtimes come from runtimeclasses/local.yaml; each names its kind of driver (``process``,
``oci`` or ``vm``), looked up in kinds.KINDS: nothing here depends on which kind a runtime is.
Every sandbox starts from the unpacked workload image built by ``sandbench image build``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

from sandbench import image, owner
from sandbench.backends.base import (Backend, BackendError, BackendInputError, Finding, Gate,
                                     Progress)
from sandbench.backends.burst import run_burst
from sandbench.backends.local import cgroups, density, mounts, netpath, proc
from sandbench.backends.local.oci_config import CGROUP_PARENT
from sandbench.backends.local.driver import Driver, Place, RuntimeEntry
from sandbench.backends.local.kinds import KINDS, runtime_table
from sandbench.backends.local.oci import STATE_ROOT
from sandbench.facts import host as hostfacts
from sandbench.model import Burst, Case, Execution
from sandbench.spec import Resources

#: Seconds a cgroup with no container (or a network namespace pair with no peer yet) is left
#: alone by gc: a `create` in flight makes the cgroup before the runtime records the container
#: (it takes well under a second).
CGROUP_GRACE_S = 60.0


class LocalBackend(Backend):
    name = "local"
    concurrent = True

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
        self.place = Place(cache_dir, self.scratch, resources)
        self.table: dict[str, RuntimeEntry] = runtime_table()
        self._image: image.WorkloadImage | None = None
        self._drivers: dict[str, Driver] = {}
        self._live: set[tuple[str, str]] = set()
        #: Network paths of sandboxes in flight, by sandbox id: cleanup() deletes them.
        self._paths: dict[str, netpath.NetPath] = {}
        self._owner: owner.OwnerLock | None = None

    def known_runtimes(self) -> dict[str, str]:
        return {name: entry.description for name, entry in self.table.items()}

    def add_variant(self, name: str, runtime: str, wrapper: list[str], description: str) -> None:
        if name in self.table:
            raise BackendInputError(f"variant {name!r} has the name of a runtime; choose another")
        if runtime not in self.table:
            raise BackendInputError(f"variant {name!r} is of unknown runtime {runtime!r}; known "
                                    f"runtimes: {', '.join(self.table)}")
        what = description or f"{runtime} under {' '.join(wrapper) or 'no wrapper'}"
        self.table[name] = self.table[runtime].variant(runtime, wrapper, what)

    def apply_fixes(self) -> list[str]:
        # crun refuses a hybrid cgroup layout whose v1 hierarchies are missing: mount them.
        done = cgroups.fix_crun() if cgroups.crun_blockers() else None
        return [done] if done else []

    def check(self, runtime: str) -> Finding:
        entry = self.table[runtime]
        if entry.wrapper and shutil.which(entry.wrapper[0]) is None:
            return Finding(runtime, False, f"its wrapper {entry.wrapper[0]!r} is not an "
                                "executable on PATH", fix="give the wrapper's absolute path")
        return KINDS[entry.kind].check(runtime, entry, self.place)

    def prepare(self, runtimes: list[str], progress: Progress | None = None) -> None:
        self._claim()
        self._image = image.build_image(self.cache_dir, progress=progress)
        for runtime in runtimes:
            if KINDS[self.table[runtime].kind].made_in_prepare:
                self._driver(runtime, progress)

    def _driver(self, runtime: str, progress: Progress | None = None) -> Driver:
        if runtime not in self._drivers:
            if self._image is None:
                raise BackendError("the workload image is not prepared; call prepare() first")
            entry = self.table[runtime]
            self._drivers[runtime] = KINDS[entry.kind].driver(runtime, entry, self.place,
                                                              self._image, progress)
        return self._drivers[runtime]

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
        return self._execute(runtime, case, sandbox_id, timeout_s)

    def _execute(self, runtime: str, case: Case, sandbox_id: str, timeout_s: float,
                 gate: Gate | None = None) -> Execution:
        driver = self._driver(runtime)
        if case.together is not None:
            execution = self._together(runtime, driver, case, sandbox_id, timeout_s)
        else:
            self._live.add((runtime, sandbox_id))
            # Live until deleted: when a signal cuts execute short, cleanup() deletes it.
            if case.peer is None:
                execution = driver.execute(case, sandbox_id, timeout_s, gate=gate)
            else:
                execution = self._execute_networked(driver, case, sandbox_id, timeout_s)
            self._live.discard((runtime, sandbox_id))
        if self._owner is not None and not self._owner.intact():
            execution.error = (f"destroyed from outside the run: the run's scratch directory "
                               f"{str(self.scratch)!r} was deleted while the sandbox ran"
                               + (f" ({execution.error})" if execution.error else ""))
        return execution

    def execute_burst(self, runtime: str, case: Case, sandbox_ids: list[str], timeout_s: float,
                      offsets_s: list[float]) -> Burst:
        # Each sandbox takes the path a lone one takes (execute), so it is in _live, and
        # deleted by cleanup(), from its request until its own delete.
        return run_burst(lambda sandbox_id, gate: self._execute(runtime, case, sandbox_id,
                                                                timeout_s, gate),
                         sandbox_ids, offsets_s)

    def _together(self, runtime: str, driver: Driver, case: Case, sandbox_id: str,
                  timeout_s: float) -> Execution:
        """Density: the case's sandboxes held running together (native and OCI runtimes)."""
        if not isinstance(driver, density.Holding):
            return Execution(error=f"runtime {runtime!r} cannot hold sandboxes running "
                                   "together here (density runs on native, runc, crun, runsc)")
        return density.execute_together(driver, runtime, case, sandbox_id, timeout_s,
                                        self._live)

    def _execute_networked(self, driver: Driver, case: Case, sandbox_id: str,
                           timeout_s: float) -> Execution:
        """A sandbox on a network path of its own, its peer running at the far end; the path
        is deleted after the sandbox, on every way out."""
        assert case.peer is not None and self._image is not None
        path = netpath.NetPath(sandbox_id, self.scratch / f"{sandbox_id}-peer")
        self._paths[sandbox_id] = path
        try:
            path.create()
            path.start_peer(case.peer, self._image.rootfs)
            execution = driver.execute(
                dataclasses.replace(case, argv=netpath.with_addresses(case.argv)),
                sandbox_id, timeout_s, netns=path.sandbox_netns)
            if not case.peer.ports:
                # A client peer: its last lines may come just after the sandbox exited.
                execution.peer_stdout = path.wait_peer(netpath.SETUP_S)
        except netpath.NetPathError as exc:
            execution = Execution(error=f"network path: {exc}")
        finally:
            driver.delete(sandbox_id)
            peer_output = path.peer_output()
            path.delete()
            del self._paths[sandbox_id]
            shutil.rmtree(path.logs, ignore_errors=True)
        # A driver that took another path says so in its own net_path label.
        execution.labels = {**netpath.LABELS, **execution.labels}
        if execution.error and peer_output:
            execution.stderr += f"\n--- the peer's output ---\n{peer_output}"
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
        for sandbox_id, path in sorted(self._paths.items()):
            path.delete()
            deleted.append(f"network path {sandbox_id}")
        self._paths.clear()
        for driver in self._drivers.values():
            deleted += driver.close()
        for kind in KINDS.values():
            deleted += kind.sweep_scratch(self.scratch)
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
        # The parent the runtimes made, unless another run's containers are in it.
        cgroups.remove_parent(CGROUP_PARENT)
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
        everywhere = Place(self.cache_dir, scratch_root, self.resources)
        for name, entry in self.table.items():
            swept, live_ones = KINDS[entry.kind].sweep(name, entry, everywhere, kept.owns)
            deleted += swept
            containers |= live_ones
        # A pair's peer runs in its run's scratch directory, which says whose it is; a pair
        # without a peer is a sandbox being set up, unless it is older than any set-up takes
        # or its id names a run of this cache that is dead (its peer may have ended on its
        # own after the harness was killed).
        dead_prefixes = tuple(f"{owner.sandbox_prefix(run.name)}-" for run in dead)
        for sandbox_id in sorted({netpath.sandbox_of(n) for n in netpath.present()}):
            peer = netpath.peer_dir(sandbox_id)
            if kept.owns(sandbox_id, peer) \
                    or (peer is None and netpath.age_s(sandbox_id) < CGROUP_GRACE_S
                        and not sandbox_id.startswith(dead_prefixes)):
                continue
            deleted += [f"network namespace {netns}" for netns in netpath.names(sandbox_id)
                        if netpath.remove(netns)]
        # Before the scratch goes: native probes of dead runs, found by working directory
        # (also those of a dead run whose scratch an older gc deleted).
        deleted += proc.kill_dwellers(scratch_root, {run.name for run in live})
        for run in dead:
            for kind in KINDS.values():
                deleted += kind.sweep_scratch(run)
            deleted += [f"mount {p}" for p in mounts.unmount_all(run)]
            shutil.rmtree(run, ignore_errors=True)
            deleted.append(f"scratch {run}")
        # A live container's cgroup is its container's (whatever cache its run used); one
        # without a container is a create cut short, once it is older than any create takes.
        for name in sorted(cgroups.children(CGROUP_PARENT)):
            relative = f"/{CGROUP_PARENT}/{name}"
            if name in containers or kept.owns(name) or cgroups.age_s(relative) < CGROUP_GRACE_S:
                continue
            deleted += [f"cgroup {p}" for p in cgroups.remove(relative)]
        deleted += [f"cgroup {p}" for p in cgroups.remove_parent(CGROUP_PARENT)]
        return deleted

    def environment(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"host": hostfacts.host_facts(), "runtimes": {}}
        for name, entry in self.table.items():
            facts["runtimes"][name] = {
                "kind": entry.kind, "description": entry.description,
                **KINDS[entry.kind].facts(entry, self.place, self._drivers.get(name)),
                **entry.variant_facts()}
        if self._image is not None:
            facts["image"] = {"name": self._image.name, "digest": self._image.manifest_digest,
                              "input_hash": self._image.input_hash}
        facts["state_root"] = str(STATE_ROOT)
        return facts


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
