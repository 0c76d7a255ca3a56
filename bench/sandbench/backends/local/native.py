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
from dataclasses import dataclass
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
            execution.stdout = proc.read_text(sandbox / "stdout")
            execution.stderr = proc.read_text(sandbox / "stderr")
            shutil.rmtree(sandbox, ignore_errors=True)
        return execution

    def _run(self, argv: list[str], env: dict[str, str], sandbox: Path, execution: Execution,
             timeout_s: float) -> None:
        with open(sandbox / "stdout", "wb") as out, open(sandbox / "stderr", "wb") as err:
            execution.mark_now("request")
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     env=env, cwd=sandbox, start_new_session=True)
        exited = proc.wait_exit(child.pid, timeout_s)
        if exited is None:
            child.kill()
            child.wait()
            execution.error = "timed out: the process did not exit in time; killed"
            return
        execution.mark_monotonic("exit", exited)
        execution.exit_code = child.wait()
