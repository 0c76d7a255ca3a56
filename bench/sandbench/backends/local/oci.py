"""OCI runtimes (runc, crun) on this host: one fresh container per sandbox.

Each container gets its own bundle: a config.json, an overlay root filesystem over the unpacked
workload image and a host directory bind-mounted at /data. It is driven in the two steps
Kubernetes' runtimes use, `create` then `start`, so the time to create a container and the time
from start to the workload's first instruction are measured apart. Runtime state lives under a
private --root, so `list` there finds exactly the containers sandbench made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sandbench.backends.base import NOT_STARTED, Finding, Gate, Progress
from sandbench.backends.local import cgroups, footprint, gvisor, mounts, oci_config, proc
from sandbench.backends.local.driver import Driver, Kind, Owned, Place, RuntimeEntry
from sandbench.backends.local.netpath import NETNS_DIR
from sandbench.facts import host as hostfacts
from sandbench.image import WorkloadImage
from sandbench.model import Case, Clock, ClockOffset, Execution, Observe
from sandbench.spec import Resources

#: The container shares the host's kernel and so its CLOCK_REALTIME: the offset is exactly 0.
SAME_KERNEL = ClockOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, 0, 0, "same kernel clock")

PLANNED = ("request", "created", "start", "workload", "exit")

#: Seconds allowed for housekeeping commands (delete, kill) that should take milliseconds.
HOUSEKEEPING_S = 30.0

STATE_ROOT = Path("/run/sandbench")


@dataclass
class OciRuntime:
    name: str
    binary: str
    image_rootfs: Path
    scratch: Path
    resources: Resources
    #: A command prefix the binary runs under (a spec variant's wrapper): ("/slow.sh",).
    wrapper: tuple[str, ...] = ()
    #: The runtime a variant belongs to: it shares that one's state root, so gc finds its
    #: leftovers; "" for a runtime of its own.
    variant_of: str = ""
    #: The runtime's own global flags, given before every command (runsc's --platform).
    flags: tuple[str, ...] = ()
    #: Labels on every sample of this runtime (gVisor's platform).
    labels: dict[str, str] = field(default_factory=dict)
    #: How the sandbox's CLOCK_REALTIME relates to the host's: the same kernel clock for runc
    #: and crun; gVisor's sentry keeps its own.
    clock: ClockOffset = SAME_KERNEL
    #: What each io target is in this runtime's sandboxes ("rootfs": "gvisor-overlay:self"):
    #: the ``storage`` label of a case that names its target.
    storage: dict[str, str] = field(default_factory=dict)
    #: Flags that replace the same-named ones in ``flags`` for a sandbox on a network path
    #: (runsc's --network=sandbox: its own netstack on the namespace's veth).
    network_flags: tuple[str, ...] = ()
    #: `create` commands not yet waited for, by sandbox id: delete waits for one before it
    #: deletes, or a container created after its delete would be left behind.
    _creating: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    @property
    def state_root(self) -> Path:
        return STATE_ROOT / (self.variant_of or self.name)

    def __post_init__(self) -> None:
        # A container's init is forked by `create`, which then exits: as a child subreaper
        # the harness adopts it, so its exit status (and a signal or OOM kill) can be read
        # and its zombie reaped.
        proc.become_subreaper()

    def _cmd(self, *args: str, networked: bool = False) -> list[str]:
        flags = with_network_flags(self.flags, self.network_flags) if networked else self.flags
        return [*self.wrapper, self.binary, "--root", str(self.state_root), *flags, *args]

    def execute(self, case: Case, sandbox_id: str, timeout_s: float,
                netns: str | None = None, gate: Gate | None = None) -> Execution:
        labels = dict(self.labels)
        if case.labels.get("target") in self.storage:
            labels["storage"] = self.storage[case.labels["target"]]
        execution = Execution(planned=PLANNED, offsets=[self.clock], labels=labels)
        bundle = self.scratch / sandbox_id
        try:
            self._run(case, sandbox_id, bundle, execution, timeout_s, netns, gate)
        except (mounts.MountError, OSError, subprocess.TimeoutExpired) as exc:
            execution.error = f"{self.name}: {exc}"
        finally:
            self.delete(sandbox_id)
            execution.stdout = proc.read_text(bundle / "stdout")
            execution.stderr = proc.read_text(bundle / "stderr")
            shutil.rmtree(bundle, ignore_errors=True)
        return execution

    def _bundle(self, case: Case, sandbox_id: str, bundle: Path, netns: str | None) -> None:
        rootfs = bundle / "rootfs"
        mounts.mount_overlay(self.image_rootfs, bundle / "upper", bundle / "work", rootfs)
        volume = bundle / "volume"
        volume.mkdir()
        config = oci_config.config(
            sandbox_id=sandbox_id, argv=case.argv, env=case.env, rootfs=str(rootfs),
            volume=str(volume), cpus=self.resources.cpus, memory_mib=self.resources.memory_mib,
            netns=str(NETNS_DIR / netns) if netns else None)
        (bundle / "config.json").write_text(json.dumps(config, indent=1))

    def hold(self, case: Case, sandbox_id: str, timeout_s: float) -> footprint.Where:
        """Create and start one sandbox and leave it running (density): where its processes
        are. Raises HoldFailed with the runtime's reason; ``delete`` ends it."""
        execution = Execution()
        bundle = self.scratch / sandbox_id
        pid = None
        try:
            pid = self._create(case, sandbox_id, bundle, execution, timeout_s)
            if pid is not None:
                started = proc.run_tool(self._cmd("start", sandbox_id), timeout_s)
                if started.returncode != 0:
                    execution.error = (f"{self.name} start failed (exit {started.returncode}):"
                                       f" {proc.last_line(started.stderr)}")
        except (mounts.MountError, OSError, subprocess.TimeoutExpired) as exc:
            execution.error = f"{self.name}: {exc}"
        if execution.error is not None or pid is None:
            raise footprint.HoldFailed(execution.error or f"{self.name} gave no pid")
        return footprint.Where(frozenset({pid}), oci_config.cgroups_path(sandbox_id))

    def _run(self, case: Case, sandbox_id: str, bundle: Path, execution: Execution,
             timeout_s: float, netns: str | None, gate: Gate | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        pid = self._create(case, sandbox_id, bundle, execution, timeout_s, netns, gate)
        if pid is not None:
            self._start_and_wait(sandbox_id, pid, execution, deadline, case.observe,
                                 networked=netns is not None)

    def _create(self, case: Case, sandbox_id: str, bundle: Path, execution: Execution,
                timeout_s: float, netns: str | None = None,
                gate: Gate | None = None) -> int | None:
        """`create` the container: its init's pid, or None with ``execution.error`` set."""
        bundle.mkdir(parents=True)
        self._bundle(case, sandbox_id, bundle, netns)
        if gate is not None and not gate():
            execution.error = NOT_STARTED
            return None
        pid_file = bundle / "pid"
        with (open(bundle / "stdout", "wb") as out, open(bundle / "stderr", "wb") as err,
              proc.signals_held()):
            execution.mark_now("request")
            # The container's stdio is runc's own (detached, no terminal): these files.
            created = subprocess.Popen(
                self._cmd("create", "--bundle", str(bundle), "--pid-file", str(pid_file),
                          sandbox_id, networked=netns is not None),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            self._creating[sandbox_id] = created
        # Not Popen.wait(timeout): its sleeps double up to 50 ms, so create times came out as
        # 16, 32, 64, 114 ms whatever they were. The pidfd wakes the moment create exits.
        exited = proc.wait_exit(created.pid, timeout_s)
        if exited is None:
            proc.end_group(created)
            raise subprocess.TimeoutExpired(created.args, timeout_s)
        execution.mark("created", Clock.HOST_MONOTONIC, exited)
        if created.wait() != 0:
            reason = proc.last_line(proc.read_text(bundle / "stderr"))
            execution.error = f"{self.name} create failed (exit {created.returncode}): {reason}"
            return None
        return int(pid_file.read_text().strip())

    def _start_and_wait(self, sandbox_id: str, pid: int, execution: Execution,
                        deadline: float, observe: Observe | None = None, *,
                        networked: bool = False) -> None:
        execution.mark_now("start")
        started = proc.run_tool(self._cmd("start", sandbox_id, networked=networked),
                                deadline - time.monotonic())
        if started.returncode != 0:
            proc.kill(pid)
            proc.reap(pid)
            execution.error = (f"{self.name} start failed (exit {started.returncode}): "
                               f"{proc.last_line(started.stderr)}")
            return
        if observe is not None:
            where = footprint.Where(frozenset({pid}), oci_config.cgroups_path(sandbox_id))
            footprint.hold_and_measure(execution, pid, where, observe,
                                       lambda: self._signal(sandbox_id, "TERM"))
        exited = proc.wait_exit(pid, deadline - time.monotonic())
        if exited is None:
            proc.kill(pid)
            proc.reap(pid)
            execution.error = "timed out: the sandbox did not exit in time; killed"
            return
        execution.mark_monotonic("exit", exited)
        execution.exit_code = proc.reap(pid)
        if execution.exit_code is None:
            execution.error = (f"the exit status of {self.name}'s container (pid {pid}) could "
                               "not be collected: the harness is not its subreaper")
        # Read before delete removes the cgroup.
        if cgroups.oom_kills(oci_config.cgroups_path(sandbox_id)):
            execution.oom = f"memory limit {self.resources.memory_mib} MiB"

    def _signal(self, sandbox_id: str, signal_name: str) -> None:
        """Signal the container's workload through the runtime (runsc's pid file names its
        sandbox process, not the workload inside)."""
        try:
            proc.run_tool(self._cmd("kill", sandbox_id, signal_name), HOUSEKEEPING_S)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def delete(self, sandbox_id: str) -> None:
        """Safe to call twice, on a container that never got created and on one whose
        `create` still runs (a signal came during it): that one is waited for first."""
        self._end_create(sandbox_id)
        try:
            proc.run_tool(self._cmd("delete", "--force", sandbox_id), HOUSEKEEPING_S)
        except (OSError, subprocess.TimeoutExpired):
            pass
        # `delete` removes the cgroups of a container it knows; these are those of one it
        # did not (a create killed half-way), in every v1 hierarchy.
        cgroups.remove(oci_config.cgroups_path(sandbox_id))
        mounts.unmount_all(self.scratch / sandbox_id)

    def close(self) -> list[str]:
        # runsc keeps a shared empty network namespace bind-mounted in its --root.
        return [f"mount {p}" for p in mounts.unmount_all(self.state_root)]

    def _end_create(self, sandbox_id: str) -> None:
        created = self._creating.get(sandbox_id)
        if created is None:
            return
        # A create takes tens of ms: let it finish, so `delete` finds a whole container.
        if created.poll() is None and proc.wait_exit(created.pid, HOUSEKEEPING_S) is None:
            proc.kill_group(created.pid)
        created.wait()
        del self._creating[sandbox_id]

    def leftovers(self) -> dict[str, Path | None]:
        """Containers in this runtime's sandbench state root (only sandbench creates there),
        each with its bundle directory (which lies in the scratch directory of the run that
        made it) when the runtime says."""
        if not self.state_root.is_dir():
            return {}
        result = proc.run_tool(self._cmd("list", "--format", "json"), HOUSEKEEPING_S)
        try:
            listed = json.loads(result.stdout or "null") or []
            return {str(c["id"]): Path(c["bundle"]) if c.get("bundle") else None
                    for c in listed}
        except (json.JSONDecodeError, TypeError, KeyError):
            # --quiet, not -q: runsc knows only the long form; runc and crun take both.
            quiet = proc.run_tool(self._cmd("list", "--quiet"), HOUSEKEEPING_S)
            return {line.strip(): None for line in quiet.stdout.splitlines() if line.strip()}


class OciEntry(RuntimeEntry):
    """A runtime of kind ``oci``: an OCI runtime binary driven create/start/delete."""

    kind: Literal["oci"]

    binary: str
    """The runtime's binary, looked up on PATH (runc, crun, runsc)."""

    built: str | None = None
    """Where ``make demo`` builds it when it is not on PATH: a glob under the cache directory,
    newest first by name."""

    install: str | None = None
    """How to get the binary where `apt-get install <binary>` is not the answer."""

    flags: tuple[str, ...] = ()
    """The runtime's own global flags, given before every command (runsc's --platform)."""

    network_flags: tuple[str, ...] = ()
    """Flags that replace the same-named ones in ``flags`` for a sandbox on a network path
    (the net workload's): runsc's --network=sandbox, where --network=none keeps every other
    sandbox as empty as runc's new network namespace."""

    labels: dict[str, str] = {}
    """Labels on every sample of this runtime: how the sandbox ran (model.CONTEXT_LABELS)."""

    sandbox_clock: str | None = None
    """How the sandbox's CLOCK_REALTIME relates to the host's, in words, when it is not the
    host kernel's own (gVisor's sentry keeps its own, in step); None: the same kernel clock."""


def with_network_flags(flags: tuple[str, ...], network: tuple[str, ...]) -> tuple[str, ...]:
    """``flags`` with each flag that ``network`` names again replaced by network's."""
    def name(flag: str) -> str:
        return flag.split("=", 1)[0]
    replaced = {name(flag) for flag in network}
    return (*(f for f in flags if name(f) not in replaced), *network)


def find_binary(entry: OciEntry, cache_dir: Path) -> str | None:
    """A runtime's binary: on PATH (what the user installed, used as is), else built into
    the cache by `make demo` (``built`` in local.yaml, a glob under the cache dir)."""
    on_path = shutil.which(entry.binary)
    if on_path or not entry.built:
        return on_path
    built = sorted(cache_dir.glob(entry.built), reverse=True)
    return str(built[0]) if built and os.access(built[0], os.X_OK) else None


class Oci(Kind[OciEntry]):
    entry_model = OciEntry

    def check(self, name: str, entry: OciEntry, place: Place) -> Finding:
        binary = find_binary(entry, place.cache_dir)
        if binary is None:
            return Finding(name, False, f"{entry.binary!r} is not on PATH"
                           + (f" nor built under {place.cache_dir}" if entry.built else ""),
                           fix=entry.install or f"apt-get install {entry.binary}")
        if os.geteuid() != 0:
            return Finding(name, False, "OCI containers with cgroups need root",
                           fix="run sandbench as root")
        if entry.binary == "crun":
            blocked = cgroups.crun_blockers()
            if blocked:
                return Finding(name, False, blocked, fix=cgroups.CRUN_FIX)
        return Finding(name, True, binary, facts={"binary": binary})

    def driver(self, name: str, entry: OciEntry, place: Place, image: WorkloadImage,
               progress: Progress | None) -> OciRuntime:
        binary = find_binary(entry, place.cache_dir) or entry.binary
        clock = (ClockOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, 0, 0,
                             entry.sandbox_clock) if entry.sandbox_clock else SAME_KERNEL)
        return OciRuntime(name, binary, image.rootfs, place.scratch, place.resources,
                          entry.wrapper, entry.variant_of, entry.flags, dict(entry.labels),
                          clock, {target: t.label for target, t in
                                  _io_targets(entry, binary)[1].items()},
                          entry.network_flags)

    def facts(self, entry: OciEntry, place: Place, driver: Driver | None) -> dict[str, Any]:
        binary = find_binary(entry, place.cache_dir)
        if binary is None:
            return {}
        # Only the keys local.yaml gives, as they are written there.
        given = entry.model_dump(include={"flags", "network_flags", "labels", "sandbox_clock"},
                                 exclude_unset=True)
        settings, targets = _io_targets(entry, binary)
        return {"binary": binary, "version": hostfacts.tool_version(binary),
                **{key: list(value) if isinstance(value, tuple) else value
                   for key, value in given.items()},
                **({"storage_flags": settings} if settings else {}),
                "io_targets": {target: {"label": t.label, "description": t.description}
                               for target, t in targets.items()}}


    def sweep(self, name: str, entry: OciEntry, place: Place,
              owned: Owned) -> tuple[list[str], set[str]]:
        binary = find_binary(entry, place.cache_dir)
        if binary is None:
            return [], set()
        driver = OciRuntime(name, binary, Path("/"), place.scratch, place.resources,
                            variant_of=entry.variant_of, flags=entry.flags)
        deleted, kept = [], set()
        for sandbox_id, bundle in driver.leftovers().items():
            if owned(sandbox_id, bundle):
                kept.add(sandbox_id)
            else:
                driver.delete(sandbox_id)
                deleted.append(f"{name} container {sandbox_id}")
        return deleted, kept


def _io_targets(entry: OciEntry, binary: str) -> tuple[dict[str, str], dict[str, gvisor.Target]]:
    """What io's targets are under an OCI runtime: gVisor's from the flags its runsc runs with
    (its defaults, then local.yaml's), runc's and crun's the host kernel's own."""
    if entry.binary != "runsc":
        return {}, gvisor.HOST
    return gvisor.runsc_targets(binary, entry.flags)
