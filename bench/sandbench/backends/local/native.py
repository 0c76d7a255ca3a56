"""The native runtime: the probe as a plain host process, no isolation at all.

It is the floor every sandbox is compared with. Paths the workloads name inside the image are
mapped to the host: the probe and job file to the unpacked image, the root filesystem target
to a scratch directory on the same host filesystem, /data to another one. fio is the host's
own (the same Debian package the image holds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sandbench.backends.local import proc
from sandbench.model import Case, Clock, ClockOffset, Execution

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

    def _host_path(self, arg: str, sandbox: Path) -> str:
        mapping = {
            "/sandbench/": str(self.image_rootfs / "sandbench") + "/",
            "/var/tmp/sandbench": str(sandbox / "rootfs"),
            "/data": str(sandbox / "volume"),
        }
        for inside, outside in mapping.items():
            if arg == inside.rstrip("/") or arg.startswith(inside):
                return outside + arg[len(inside):]
        return arg

    def execute(self, case: Case, sandbox_id: str, timeout_s: float) -> Execution:
        execution = Execution(planned=PLANNED, offsets=[SAME_CLOCK])
        sandbox = self.scratch / sandbox_id
        (sandbox / "rootfs").mkdir(parents=True)
        (sandbox / "volume").mkdir()
        argv = [*self.wrapper, *(self._host_path(arg, sandbox) for arg in case.argv)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **case.env}
        try:
            self._run(argv, env, sandbox, execution, timeout_s)
        except OSError as exc:
            execution.error = f"native: {exc}"
        finally:
            # First, so a Ctrl-C here never leaves the probe (or its fio) running on.
            self._end_child(sandbox_id)
            execution.stdout = proc.read_text(sandbox / "stdout")
            execution.stderr = proc.read_text(sandbox / "stderr")
            shutil.rmtree(sandbox, ignore_errors=True)
        return execution

    def delete(self, sandbox_id: str) -> None:
        """Kill the sandbox's whole process group if it still runs and remove its files; safe
        to call twice."""
        self._end_child(sandbox_id)
        shutil.rmtree(self.scratch / sandbox_id, ignore_errors=True)

    def _end_child(self, sandbox_id: str) -> None:
        child = self._children.get(sandbox_id)
        if child is not None:
            proc.end_group(child)
            del self._children[sandbox_id]

    def _run(self, argv: list[str], env: dict[str, str], sandbox: Path, execution: Execution,
             timeout_s: float) -> None:
        with (open(sandbox / "stdout", "wb") as out, open(sandbox / "stderr", "wb") as err,
              proc.signals_held()):
            execution.mark_now("request")
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     env=env, cwd=sandbox, start_new_session=True)
            self._children[sandbox.name] = child
        exited = proc.wait_exit(child.pid, timeout_s)
        if exited is None:
            proc.end_group(child)
            execution.error = "timed out: the process did not exit in time; killed"
            return
        execution.mark_monotonic("exit", exited)
        # Its exit ends the sandbox: whatever it left running goes with it.
        proc.kill_group(child.pid)
        execution.exit_code = child.wait()
