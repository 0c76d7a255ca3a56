"""The native runtime: the probe as a plain host process, no isolation at all.

It is the floor every sandbox is compared with. Paths inside the sandbox are mapped to the
host by what every sandbox has, never by workload: the image's own directory to the unpacked
image, the directories a case writes on its root filesystem (Case.rootfs_dirs) to a scratch
directory on the same host filesystem, the volume to another one. fio is the host's own (the
same Debian package the image holds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sandbench.backends.base import NOT_STARTED, Finding, Gate, Progress
from sandbench.backends.local import footprint, proc
from sandbench.backends.local.driver import Driver, Kind, Place, RuntimeEntry
from sandbench.facts import host as hostfacts
from sandbench.image import WorkloadImage
from sandbench.image.inputs import IMAGE_DIR
from sandbench.model import VOLUME, Case, Clock, ClockOffset, Execution, Observe

SAME_CLOCK = ClockOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, 0, 0, "same process clock")
PLANNED = ("request", "workload", "exit")


@dataclass
class NativeRuntime:
    name: str
    image_rootfs: Path
    scratch: Path
    #: A command prefix the probe runs under (a spec variant's wrapper).
    wrapper: tuple[str, ...] = ()
    #: Probes not yet reaped, by sandbox id; each leads its own process group.
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    def _host_paths(self, case: Case, sandbox: Path) -> dict[str, Path]:
        """Each directory inside the sandbox the case may name, and where it is on the host;
        the writable ones are made fresh."""
        writable = {VOLUME: sandbox / "volume",
                    **{inside: sandbox / "rootfs" / inside.strip("/") for inside in case.rootfs_dirs}}
        for outside in writable.values():
            outside.mkdir(parents=True)
        return {IMAGE_DIR: self.image_rootfs / IMAGE_DIR.strip("/"), **writable}

    def execute(self, case: Case, sandbox_id: str, timeout_s: float,
                netns: str | None = None, gate: Gate | None = None) -> Execution:
        execution = Execution(planned=PLANNED, offsets=[SAME_CLOCK])
        sandbox = self.scratch / sandbox_id
        sandbox.mkdir(parents=True, exist_ok=True)
        paths = self._host_paths(case, sandbox)
        # In a network namespace the process is the floor of the same veth path the
        # sandboxes take; `ip netns exec` execs it there, with no process of its own between.
        enter = ["ip", "netns", "exec", netns] if netns else []
        argv = [*enter, *self.wrapper, *(_host_path(arg, paths) for arg in case.argv)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **case.env}
        try:
            if gate is None or gate():
                self._run(argv, env, sandbox, execution, timeout_s, case.observe)
            else:
                execution.error = NOT_STARTED
        except OSError as exc:
            execution.error = f"native: {exc}"
        finally:
            # First, so a Ctrl-C here never leaves the probe (or its fio) running on.
            self._end_child(sandbox_id)
            execution.stdout = proc.read_text(sandbox / "stdout")
            execution.stderr = proc.read_text(sandbox / "stderr")
            shutil.rmtree(sandbox, ignore_errors=True)
        return execution

    def hold(self, case: Case, sandbox_id: str, timeout_s: float) -> footprint.Where:
        """Start one probe and leave it running (density); ``delete`` ends it."""
        sandbox = self.scratch / sandbox_id
        sandbox.mkdir(parents=True, exist_ok=True)
        paths = self._host_paths(case, sandbox)
        argv = [*self.wrapper, *(_host_path(arg, paths) for arg in case.argv)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **case.env}
        try:
            with (open(sandbox / "stdout", "wb") as out, open(sandbox / "stderr", "wb") as err,
                  proc.signals_held()):
                child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=env, cwd=sandbox,
                                         start_new_session=True)
                self._children[sandbox_id] = child
        except OSError as exc:
            raise footprint.HoldFailed(f"native: {exc}") from exc
        return footprint.Where(frozenset({child.pid}))

    def delete(self, sandbox_id: str) -> None:
        """Kill the sandbox's whole process group if it still runs and remove its files; safe
        to call twice."""
        self._end_child(sandbox_id)
        shutil.rmtree(self.scratch / sandbox_id, ignore_errors=True)

    def close(self) -> list[str]:
        return []

    def _end_child(self, sandbox_id: str) -> None:
        child = self._children.get(sandbox_id)
        if child is not None:
            proc.end_group(child)
            del self._children[sandbox_id]

    def _run(self, argv: list[str], env: dict[str, str], sandbox: Path, execution: Execution,
             timeout_s: float, observe: Observe | None = None) -> None:
        with (open(sandbox / "stdout", "wb") as out, open(sandbox / "stderr", "wb") as err,
              proc.signals_held()):
            execution.mark_now("request")
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     env=env, cwd=sandbox, start_new_session=True)
            self._children[sandbox.name] = child
        if observe is not None:
            # The probe and what it forked, as a sandbox's processes: no cgroup of its own.
            footprint.hold_and_measure(execution, child.pid, footprint.Where(frozenset({child.pid})),
                                       observe, lambda: proc.terminate(child.pid))
        exited = proc.wait_exit(child.pid, timeout_s)
        if exited is None:
            proc.end_group(child)
            execution.error = "timed out: the process did not exit in time; killed"
            return
        execution.mark_monotonic("exit", exited)
        # Its exit ends the sandbox: whatever it left running goes with it.
        proc.kill_group(child.pid)
        execution.exit_code = child.wait()


def _host_path(arg: str, paths: dict[str, Path]) -> str:
    for inside, outside in paths.items():
        if arg == inside or arg.startswith(inside.rstrip("/") + "/"):
            return str(outside) + arg[len(inside.rstrip("/")):]
    return arg


class ProcessEntry(RuntimeEntry):
    """A runtime of kind ``process``: the probe as a plain host process."""

    kind: Literal["process"]


class Process(Kind[ProcessEntry]):
    entry_model = ProcessEntry

    def check(self, name: str, entry: ProcessEntry, place: Place) -> Finding:
        return Finding(name, True, "a plain process on this host")

    def driver(self, name: str, entry: ProcessEntry, place: Place, image: WorkloadImage,
               progress: Progress | None) -> NativeRuntime:
        return NativeRuntime(name, image.rootfs, place.scratch, entry.wrapper)

    def facts(self, entry: ProcessEntry, place: Place, driver: Driver | None) -> dict[str, Any]:
        # The io workload's fio is the host's own here.
        return {"fio": hostfacts.tool_version("fio")}
