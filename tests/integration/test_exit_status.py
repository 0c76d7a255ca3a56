"""Every runtime collects its sandbox's exit status: a workload that exits 7, is killed by a
signal or by the OOM killer fails with that as its reason, under native, runc, crun and qemu.
Before this, runc and crun never reaped their container (the harness was not its subreaper)
and a killed workload read "no fio JSON in the output"."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbench import workloads
from sandbench.backends.local import LocalBackend
from sandbench.image import WorkloadImage
from sandbench.model import Case, Execution
from sandbench.runner import Step, _values
from sandbench.spec import Resources

pytestmark = pytest.mark.integration

SHELL = ["/bin/busybox", "sh", "-c"]
#: Holds 64 MB in a shell variable: far past a 24 MiB limit.
HOG_MEMORY = 'x=$(/bin/busybox head -c 64000000 /dev/zero | /bin/busybox tr "\\000" a); echo ${#x}'


@pytest.fixture(scope="module")
def backend(workload_image: WorkloadImage, sandbench_cache: Path) -> LocalBackend:
    local = LocalBackend(sandbench_cache, Resources(cpus=1, memory_mib=24), run_id="exitstatus")
    local.prepare(["native", "runc", "crun"])
    yield local  # type: ignore[misc]
    local.cleanup()


def run(backend: LocalBackend, runtime: str, script: str, name: str) -> Execution:
    case = Case("start", "start", [*SHELL, script])
    return backend.execute(runtime, case, f"sandbench-exit-{runtime}-{name}", 120)


def reason_of(execution: Execution) -> str:
    workload = workloads.get("start")
    step = Step(workload, Case("start", "start", []), "runc", 1, False)
    values, reason = _values(step, execution)
    assert values and all(v.value is None for v in values)
    return str(reason)


@pytest.mark.parametrize("runtime", ["native", "runc", "crun"])
def test_a_nonzero_exit_fails_with_its_code(backend: LocalBackend, runtime: str) -> None:
    execution = run(backend, runtime, "exit 7", "seven")
    assert execution.exit_code == 7, execution.raw()
    assert reason_of(execution) == "the workload exited with code 7"


@pytest.mark.parametrize("runtime", ["native", "runc", "crun"])
def test_a_killed_child_is_passed_on(backend: LocalBackend, runtime: str) -> None:
    # A container's PID 1 cannot be SIGKILLed from inside its own namespace, so a child shell
    # kills itself and the outer shell passes that on as 128 + 9, on every runtime alike.
    execution = run(backend, runtime, "/bin/busybox sh -c 'kill -9 $$'; exit $?", "signal")
    assert execution.exit_code == 137, execution.raw()
    assert reason_of(execution) == "the workload exited with code 137"


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_the_oom_killer_is_named_with_the_limit(backend: LocalBackend, runtime: str) -> None:
    execution = run(backend, runtime, HOG_MEMORY, "oom")
    assert execution.oom == "memory limit 24 MiB", execution.raw()
    assert reason_of(execution) == "killed by the OOM killer (memory limit 24 MiB)"


def test_a_sigkilled_native_process_is_named(backend: LocalBackend) -> None:
    execution = run(backend, "native", "kill -9 $$", "sigkill")
    assert execution.exit_code == -9
    assert reason_of(execution) == "killed by signal 9 (SIGKILL)"


def test_qemu_guest_exit_code_fails_the_sample(workload_image: WorkloadImage,
                                               sandbench_cache: Path) -> None:
    local = LocalBackend(sandbench_cache, Resources(cpus=1, memory_mib=256), run_id="exitqemu")
    try:
        local.prepare(["qemu"])
        execution = local.execute("qemu", Case("start", "start", [*SHELL, "exit 7"]),
                                  "sandbench-exit-qemu", 120)
    finally:
        local.cleanup()
    assert execution.exit_code == 7, execution.raw()
    assert reason_of(execution) == "the workload exited with code 7"
