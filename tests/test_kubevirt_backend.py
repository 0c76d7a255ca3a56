"""The KubeVirt backend's parts that need no cluster: the serial console log as virt-launcher's
guest-console-log container gives it (timestamps on the node's clock), the phases computed
from it with and without a measured offset, the VMI's phase machine, the no-controller
message, and what doctor concludes from what the cluster says about KubeVirt."""

from __future__ import annotations

import re

import pytest

from conftest import golden
from sandbench import workloads
from sandbench.backends.guest_protocol import parse_annotated, read_console
from sandbench.backends.kubernetes.kubevirt import (apply_console, console, install,
                                                    node_offset)
from sandbench.backends.kubernetes import pull
from sandbench.backends.kubernetes.kubevirt.backend import VmSandboxes
from sandbench.backends.kubernetes.kubevirt.lifecycle import (PLANNED, VmiFailed, VmiProgress,
                                                              observe_event, observe_vmi,
                                                              unprocessed_message)
from sandbench.backends.kubernetes.watcher import Seen
from sandbench.model import Clock, ClockOffset, Execution

#: 2026-01-01T00:00:00Z, the instant the test logs start at.
EPOCH_2026 = 1_767_225_600 * 1_000_000_000


def test_rfc3339_nano() -> None:
    assert console.rfc3339_ns("2026-01-01T00:00:00Z") == EPOCH_2026
    assert console.rfc3339_ns("2026-01-01T00:00:00.123456789Z") == EPOCH_2026 + 123_456_789
    assert console.rfc3339_ns("2026-01-01T00:00:00.5Z") == EPOCH_2026 + 500_000_000
    assert console.rfc3339_ns("2026-01-01T01:00:00.000000001+01:00") == EPOCH_2026 + 1
    with pytest.raises(ValueError, match="not an RFC 3339"):
        console.rfc3339_ns("yesterday")


def stamp(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    import datetime as dt

    at = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{at}.{fraction:09d}Z"


def launcher_log(name: str, start_ns: int = EPOCH_2026) -> tuple[str, str]:
    """A real QEMU console of the local runtime (tests/data/golden), laid out as the
    guest-console-log container's log read with timestamps=True: RFC3339Nano, \\r\\n kept."""
    text = golden(name)
    nonce = re.search(r"sandbench_nonce=(\w+)", text)
    assert nonce is not None
    lines = parse_annotated(text)
    return "".join(f"{stamp(start_ns + line.ns)} {line.text}\r\n" for line in lines), nonce.group(1)


def test_the_launcher_log_reads_as_the_console_on_the_node_clock() -> None:
    text, nonce = launcher_log("qemu_console_start.txt")
    lines = console.parse_log(text)
    assert not any(line.text.endswith("\r") for line in lines)
    said = read_console(lines, nonce)
    assert said.exit_code == 0 and said.error is None
    assert said.kernel_ns == EPOCH_2026 + 468_676_000
    assert said.init_ns == EPOCH_2026 + 2_003_878_000
    assert said.workload_ns == EPOCH_2026 + 2_268_098_000
    assert said.stdout.startswith('{"probe":"start"')


def vm_execution(created_realtime: int, offset: ClockOffset | None) -> Execution:
    text, nonce = launcher_log("qemu_console_start.txt")
    execution = Execution(planned=PLANNED, offsets=[offset] if offset else [])
    execution.mark("create", Clock.HOST_MONOTONIC, 5_000_000_000)
    execution.mark("create", Clock.HOST_REALTIME, created_realtime)
    execution.mark("scheduled", Clock.HOST_MONOTONIC, 5_300_000_000)
    execution.mark("running", Clock.HOST_MONOTONIC, 5_400_000_000)
    apply_console(execution, console.parse_log(text), nonce, boot_marks=True)
    return execution


def test_boot_phases_through_a_measured_node_offset() -> None:
    # The node's clock runs 250 ms behind the harness's: node + 250 ms = harness.
    offset = node_offset(ClockOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, 250_000_000,
                                     40_000, "min-RTT exchange with a clock pod of the same "
                                     "RuntimeClass over port-forward (best of 20)"))
    assert offset.source == Clock.NODE_REALTIME
    assert offset.method.startswith("min-RTT exchange with a clock pod of the node's default")
    assert "stamps the VMI's serial console" in offset.method
    created = EPOCH_2026 + 250_000_000 - 100_000_000  # 100 ms before the first console line
    execution = vm_execution(created, offset)
    assert execution.error is None and execution.exit_code == 0
    start = workloads.get("start")
    case = start.cases(start.params({}))[0]
    values = {v.metric.name: v for v in start.parse(case, execution)}
    assert values["create_to_scheduled"].value == pytest.approx(300.0)
    assert values["create_to_running"].value == pytest.approx(400.0)
    assert values["create_to_kernel"].value == pytest.approx(100.0 + 468.676)
    assert values["create_to_init"].value == pytest.approx(100.0 + 2003.878)
    assert values["create_to_workload"].value == pytest.approx(100.0 + 2268.098)
    assert "node_realtime" in str(values["create_to_kernel"].clock)


def test_without_an_offset_the_boot_phases_fail_honestly() -> None:
    execution = vm_execution(EPOCH_2026, None)
    start = workloads.get("start")
    case = start.cases(start.params({}))[0]
    values = {v.metric.name: v for v in start.parse(case, execution)}
    for name in ("create_to_kernel", "create_to_init", "create_to_workload"):
        assert values[name].value is None
        assert "no measured offset" in str(values[name].reason)
    assert values["create_to_running"].value == pytest.approx(400.0)  # one clock: fine


def test_a_failed_vm_names_the_phases_it_would_have_measured() -> None:
    start = workloads.get("start")
    case = start.cases(start.params({}))[0]
    names = {m.name for m, _ in start.unmeasured(case, Execution(planned=PLANNED))}
    assert names == {"create_to_scheduled", "scheduled_to_running", "create_to_running",
                     "create_to_workload", "create_to_kernel", "create_to_init"}


def test_a_console_that_stops_early_is_an_error() -> None:
    text, nonce = launcher_log("qemu_console_start.txt")
    cut = text[:text.index("SANDBENCH-END")]
    execution = Execution()
    apply_console(execution, console.parse_log(cut), nonce, boot_marks=True)
    assert execution.exit_code is None
    assert "stopped before the workload finished" in str(execution.error)


def seen(kind: str, obj: dict[str, object], ns: int, kind_of: str = "MODIFIED") -> Seen:
    return Seen(kind, kind_of, ns, obj)


def vmi(phase: str | None, **status: object) -> dict[str, object]:
    body: dict[str, object] = {"metadata": {"name": "vm", "uid": "u-1"}}
    if phase is not None:
        body["status"] = {"phase": phase, **status}
    return body


def test_vmi_phases_become_marks_and_transitions() -> None:
    progress = VmiProgress(Execution())
    for ns, phase in ((1, "Pending"), (2, "Scheduling"), (3, "Scheduled"), (4, "Running"),
                      (5, "Running"), (6, "Succeeded")):
        stamps = [{"phase": phase, "phaseTransitionTimestamp": f"2026-01-01T00:00:0{ns}Z"}]
        observe_vmi(progress, seen("vmi", vmi(phase, phaseTransitionTimestamps=stamps), ns))
    marks = {(m.name, m.ns) for m in progress.execution.marks}
    assert marks == {("scheduled", 3), ("running", 4)}
    assert progress.finished and progress.uid == "u-1"
    assert progress.transitions["Running"] == "2026-01-01T00:00:04Z"


def test_what_ran_the_vm_is_kept_from_its_status() -> None:
    progress = VmiProgress(Execution())
    observe_vmi(progress, seen("vmi", vmi("Running", machine={"type": "pc-q35-10.0"},
                                          launcherContainerImageVersion="kv/virt-launcher:1"), 1))
    observe_vmi(progress, seen("vmi", vmi("Succeeded"), 2))  # a later status without them
    assert (progress.machine, progress.launcher_image) == ("pc-q35-10.0", "kv/virt-launcher:1")


#: A compute container's log as virt-launcher writes it: its own JSON lines, and libvirt's first
#: line of the domain's QEMU log forwarded with subcomponent "qemu".
COMPUTE_LOG = "\n".join([
    '{"component":"virt-launcher","level":"info","msg":"Connected to libvirt daemon",'
    '"timestamp":"2026-12-02T17:00:01.000000Z"}',
    '{"component":"virt-launcher","level":"info","msg":"2026-12-02 17:00:02.100+0000: starting '
    'up libvirt version: 11.3.0, package: 3+deb13u3 (Debian), qemu version: 10.0.13Debian '
    '1:10.0.13+ds-0+deb13u1, kernel: 6.18.0, hostname: kubevirt-vm-1","subcomponent":"qemu",'
    '"timestamp":"2026-12-02T17:00:02.200000Z"}',
    '{"component":"virt-launcher","level":"info","msg":"Domain started"}'])


def test_libvirt_and_qemu_versions_come_from_the_launcher_log() -> None:
    found = console.launcher_versions(COMPUTE_LOG)
    assert found is not None
    assert (found["libvirt"], found["libvirt_package"]) == ("11.3.0", "3+deb13u3 (Debian)")
    assert (found["qemu"], found["qemu_package"]) == ("10.0.13", "Debian 1:10.0.13+ds-0+deb13u1")
    assert found["line"].endswith("hostname: kubevirt-vm-1")
    # Older releases' wording without a package, and a plain (non-JSON) line.
    plain = console.launcher_versions("starting up libvirt version: 9.0.0, qemu version: 7.2.0")
    assert plain is not None and (plain["libvirt"], plain["qemu"]) == ("9.0.0", "7.2.0")
    assert "libvirt_package" not in plain and "qemu_package" not in plain
    assert console.launcher_versions('{"msg": "Domain started"}\nnot json {') is None


@pytest.mark.parametrize("where", ["containers", "initContainers"])
def test_the_console_logger_is_found_as_a_container_or_a_native_sidecar(where: str) -> None:
    # KubeVirt v1.7.0 adds guest-console-log as an init container with restartPolicy Always.
    pod = {"spec": {"containers": [{"name": "compute"}],
                    where: [{"name": "guest-console-log", "restartPolicy": "Always"}]}}
    assert console.has_console_log(pod)
    assert not console.has_console_log({"spec": {"containers": [{"name": "compute"}]}})


def test_a_vmi_that_goes_straight_to_succeeded_is_marked_once() -> None:
    progress = VmiProgress(Execution())
    observe_vmi(progress, seen("vmi", vmi("Succeeded"), 7))
    assert {(m.name, m.ns) for m in progress.execution.marks} == {("scheduled", 7),
                                                                  ("running", 7)}


def test_a_failed_vmi_says_why_in_kubevirts_words() -> None:
    progress = VmiProgress(Execution())
    failed = vmi("Failed", reason="PodFailed", conditions=[
        {"type": "Ready", "status": "False", "reason": "GuestNotRunning",
         "message": "Guest VM is not reported as running"}])
    with pytest.raises(VmiFailed, match="PodFailed; GuestNotRunning: Guest VM is not reported"):
        observe_vmi(progress, seen("vmi", failed, 1))


def test_an_image_error_fails_at_once() -> None:
    progress = VmiProgress(Execution())
    stuck = vmi("Scheduling", conditions=[{"type": "Synchronized", "status": "False",
                                           "reason": "ErrImageNeverPull",
                                           "message": "image not present"}])
    with pytest.raises(VmiFailed, match="ErrImageNeverPull: image not present"):
        observe_vmi(progress, seen("vmi", stuck, 1))


def test_deleted_vmi_and_warnings() -> None:
    progress = VmiProgress(Execution())
    observe_event(progress, seen("event", {"type": "Warning", "reason": "SyncFailed",
                                           "message": "boom"}, 1, "ADDED"))
    assert progress.last_warning == "SyncFailed: boom"
    with pytest.raises(VmiFailed, match="deleted"):
        observe_vmi(progress, seen("vmi", vmi("Running"), 2, "DELETED"))


def test_no_controller_message_is_clear() -> None:
    no_webhook = unprocessed_message("vm-1", "", 30.2, "kubevirt-vm")
    assert no_webhook.startswith("no KubeVirt controller processed VMI 'vm-1' within 30 s")
    assert "is KubeVirt installed and running?" in no_webhook
    assert "sandbench doctor --backend kubernetes --runtimes kubevirt-vm" in no_webhook
    stuck = unprocessed_message("vm-1", "Pending", 31.0, "kubevirt-vm")
    assert "still Pending, no virt-launcher pod" in stuck and "virt-controller" in stuck


def test_doctor_verdicts_from_what_the_cluster_says() -> None:
    nothing = install.Installation()
    usable, why, fix = nothing.verdict()
    assert not usable and "KubeVirt is not installed" in why and fix == install.INSTALL_FIX
    crd_only = install.Installation(served=["virtualmachineinstances"])
    usable, why, _ = crd_only.verdict()
    assert not usable and "CRD is installed but there is no KubeVirt CR" in why
    deploying = install.Installation(served=["virtualmachineinstances", "kubevirts"],
                                     cr="kubevirt/kubevirt", phase="Deploying")
    assert "not Deployed" in deploying.verdict()[1]
    ready = {"virt-api": (1, 1), "virt-controller": (2, 2), "virt-handler": (1, 1)}
    no_kvm = install.Installation(served=["virtualmachineinstances", "kubevirts"],
                                  cr="kubevirt/kubevirt", phase="Deployed", components=ready)
    assert "no node offers devices.kubevirt.io/kvm" in no_kvm.verdict()[1]
    stuck = install.Installation(served=["virtualmachineinstances", "kubevirts"],
                                 cr="kubevirt/kubevirt", phase="Deployed", use_emulation=True,
                                 components={**ready, "virt-controller": (0, 2)})
    assert "virt-controller 0/2 ready" in stuck.verdict()[1]
    good = install.Installation(served=["virtualmachineinstances", "kubevirts"],
                                cr="kubevirt/kubevirt", phase="Deployed", version="v1.9.0",
                                components=ready, kvm_nodes={"n1": "1k"},
                                feature_gates=["ImageVolume"])
    usable, why, _ = good.verdict()
    assert usable and "KubeVirt v1.9.0" in why and "ImageVolume enabled" in why


def test_image_volume_gate_as_configured() -> None:
    assert install.Installation(feature_gates=["ImageVolume"]).image_volume == "enabled"
    assert install.Installation(disabled_gates=["ImageVolume"]).image_volume == "disabled"
    assert install.Installation().image_volume.startswith("not set")


class StubStates:
    """One image's pull.PullStates, as far as VmSandboxes asks it."""

    def __init__(self, labels: dict[str, str], gone_after: bool = False) -> None:
        self.labels, self.gone_after, self.asked = labels, gone_after, []

    def before(self, state: str) -> dict[str, str]:
        self.asked.append(state)
        return {"pull": state, **self.labels}

    def after(self, state: str) -> dict[str, str]:
        if self.gone_after:
            raise pull.StateNotReached(f"{state}: ImageStatus finds no kernelboot after the pod")
        return {k: v for k, v in self.labels.items() if k.startswith("image_")}


def test_a_vmis_images_are_each_put_in_the_state_and_their_sizes_summed() -> None:
    vms = VmSandboxes.__new__(VmSandboxes)
    vms._pulls = {
        "containerdisk": StubStates({"pull_check": "cri-imagestatus", "image_size": "300",
                                     "image_layers": "1"}),
        "datadisk": StubStates({"pull_check": "cri-imagestatus", "image_size": "20",
                                "image_layers": "1"}),
        "kernelboot": StubStates({"pull_check": "cri-imagestatus", "image_size": "40",
                                  "image_layers": "2"}, gone_after=True)}
    labels = vms._pull_before("cold")
    assert labels == {"pull": "cold", "pull_images": "containerdisk,datadisk,kernelboot",
                      "pull_check": "cri-imagestatus", "image_size": "360",
                      "image_layers": "4"}
    assert all(s.asked == ["cold"] for s in vms._pulls.values())
    vms._pulls["kernelboot"].gone_after = False
    assert vms._pull_after("cold") == {"image_size": "360", "image_layers": "4"}
    vms._pulls["kernelboot"].gone_after = True
    with pytest.raises(pull.StateNotReached, match="kernelboot"):
        vms._pull_after("cold")
    # Cold removes an image (no size to tell): no sum is made of some of them.
    vms._pulls["datadisk"] = StubStates({"pull_check": "cri-imagestatus"})
    assert "image_size" not in vms._pull_before("cold")
