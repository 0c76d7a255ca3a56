"""Runtimes of kind kubevirt in the kubernetes backend: each sandbox a VirtualMachineInstance.

The kubernetes backend runs a runtime declared in runtimeclasses/kubevirt as a VMI, every
other one as a pod, in the same namespace, on the same node, one sandbox at a time, so a run
can interleave runc, Kata and KubeVirt. The VMI boots the guest the local qemu runtime boots
(same kernel, initrd, command line and disks); its results and boot marks come from the serial
console log (console.py), on the node's clock, which the backend relates to its own by a clock
pod of the node's default runtime.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from pathlib import Path
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from sandbench import image
from sandbench.backends import guest_protocol
from sandbench.backends.base import BackendError, Finding
from sandbench.backends.guest_protocol import CommandLineError, ConsoleLine
from sandbench.backends.kubernetes import pull
from sandbench.backends.kubernetes.api import Apis, is_not_found
from sandbench.backends.kubernetes.cri import NodeCri
from sandbench.backends.kubernetes.kubevirt import console, guest_ssh, install, manifests
from sandbench.backends.kubernetes.kubevirt.descriptors import KubevirtRuntime, describe, runtimes
from sandbench.backends.kubernetes.kubevirt.lifecycle import (PLANNED, UNPROCESSED, VmiFailed,
                                                              VmiProgress, VmiRun)
from sandbench.backends.kubernetes.watcher import NamespaceWatch, RunWatch
from sandbench.model import Case, Clock, ClockOffset, Execution, MissingOffset
from sandbench.spec import KubernetesSettings, Resources

NODE_CLOCK_NOTE = "; the node's clock, which stamps the VMI's serial console log"

__all__ = ["KubevirtRuntime", "VmSandboxes", "apply_console", "describe", "node_offset",
           "release_leftovers", "runtimes"]


def node_offset(measured: ClockOffset) -> ClockOffset:
    """A clock pod of the node's default runtime (runc: the node's own kernel) reads the
    node's CLOCK_REALTIME, which is what stamps the serial console log."""
    method = measured.method.replace("of the same RuntimeClass", "of the node's default runtime")
    return ClockOffset(Clock.NODE_REALTIME, Clock.HOST_REALTIME, measured.offset_ns,
                       measured.uncertainty_ns, method + NODE_CLOCK_NOTE)


class VmSandboxes:
    """The VMIs of one run."""

    def __init__(self, apis: Apis, settings: KubernetesSettings, resources: Resources,
                 run_id: str, namespace: str, cache_dir: Path) -> None:
        self.apis = apis
        self.settings = settings
        self.resources = resources
        self.run_id = run_id
        self.namespace = namespace
        self.cache_dir = cache_dir
        self.runtimes = runtimes()
        self._installation: install.Installation | None = None
        self._images: manifests.VmImages | None = None
        #: The state of each of the VMI's images (containerdisk, datadisk, kernelboot) on the
        #: node, set and verified around every start VMI as pull.PullStates does for a pod's.
        self._pulls: dict[str, pull.PullStates] = {}
        self._watch: NamespaceWatch | None = None
        self._node = ""
        self._live: dict[str, VmiRun] = {}
        self.transitions: dict[str, dict[str, str]] = {}
        #: QEMU machine types and virt-launcher images the VMIs' statuses named.
        self.machines: set[str] = set()
        self.launcher_images: set[str] = set()
        #: libvirt and QEMU as the first launcher that said (console.launcher_versions).
        self.launcher_versions: dict[str, str] | None = None

    @property
    def installation(self) -> install.Installation:
        if self._installation is None:
            self._installation = install.inspect(self.apis)
        return self._installation

    @property
    def accel(self) -> str:
        """How KubeVirt's QEMU runs: TCG when the cluster turned useEmulation on."""
        if self.installation.cr is None:
            return "unknown"
        return "tcg" if self.installation.use_emulation else "kvm"

    def check(self, runtime: str) -> Finding:
        usable, detail, fix = self.installation.verdict()
        return Finding(runtime, usable, detail, fix=fix,
                            facts={"image_volume": self.installation.image_volume})

    def prepare(self, node_hostname: str, cri: NodeCri | None = None) -> str:
        """The node and the images (their state kept through the node's CRI when there is
        one); returns a line for the progress display."""
        self._node = node_hostname
        self._images = self._resolve_images()
        self._pulls = {kind: pull.PullStates(ref, cri, self.namespace)
                       for kind, ref in dataclasses.asdict(self._images).items()}
        return f"KubeVirt images {self._images.containerdisk}, {self._images.kernelboot}"

    def start_watch(self) -> None:
        """Watch the run's namespace for VMIs, established before the first one exists (as
        the pod watch is)."""
        watch = NamespaceWatch("vmi", self._list_vmis, self.namespace)
        watch.start()
        self._watch = watch

    def _list_vmis(self, namespace: str, **kwargs: Any) -> Any:
        return self.apis.custom.list_namespaced_custom_object(
            manifests.GROUP, manifests.VERSION, namespace, manifests.PLURAL, **kwargs)

    def _resolve_images(self) -> manifests.VmImages:
        given = self.settings.kubevirt
        names: dict[str, str] = {}
        if not (given.containerdisk_image and given.datadisk_image and given.kernelboot_image):
            built = image.load_cached(self.cache_dir)
            if built is None or built.guest is None:
                raise BackendError("no KubeVirt images given (kubernetes.kubevirt.*_image) and "
                                   "no guest built here; run `sandbench image build`, then "
                                   "push or import its containerdisk, datadisk and kernelboot "
                                   "archives")
            names = built.guest.names
        return manifests.VmImages(
            containerdisk=given.containerdisk_image or names["containerdisk"],
            datadisk=given.datadisk_image or names["datadisk"],
            kernelboot=given.kernelboot_image or names["kernelboot"])

    # -- one sandbox ----------------------------------------------------------------------

    def manifest(self, runtime: str, case: Case, sandbox_id: str, nonce: str) -> dict[str, Any]:
        if self._images is None:
            raise BackendError("the backend is not prepared; call prepare() first")
        return manifests.vmi(
            name=sandbox_id, run_id=self.run_id, runtime=self.runtimes[runtime], case=case,
            images=self._images, kernel_args=guest_protocol.kernel_cmdline(case.argv, case.env,
                                                                            nonce),
            pull_policy=self.settings.pull_policy, node=self._node, resources=self.resources,
            network=self.settings.kubevirt.guest_ssh is not None)

    def execute(self, runtime: str, case: Case, sandbox_id: str, timeout_s: float,
                watch: RunWatch, offset: ClockOffset | MissingOffset) -> Execution:
        execution = Execution(planned=PLANNED, labels={"accel": self.accel})
        execution.relate(offset)
        if case.pull is not None:
            execution.labels["pull"] = case.pull
            try:
                execution.labels.update(self._pull_before(case.pull))
            except pull.StateNotReached as exc:
                # Failed with the reason, never run: the VMI would not be what it says.
                execution.error = f"image state {case.pull!r} not reached before the VMI: {exc}"
                return execution
        nonce = secrets.token_hex(8)
        try:
            manifest = self.manifest(runtime, case, sandbox_id, nonce)
        except CommandLineError as exc:
            execution.error = f"{runtime}: {exc}"
            return execution
        run = VmiRun(self.apis, self.namespace, manifest, runtime,
                     self.settings.kubevirt.controller_timeout_s)
        progress = VmiProgress(execution)
        events = watch.subscribe(run.name)
        assert self._watch is not None
        self._watch.subscribe(run.name, events)
        self._live[run.name] = run
        try:
            self._run(run, progress, events, nonce, time.monotonic() + timeout_s)
            if case.pull is not None:
                execution.labels.update(self._pull_after(case.pull))
            self._note_versions(run)
        except pull.StateNotReached as exc:
            execution.error = str(exc)
        except (VmiFailed, console.ConsoleUnavailable) as exc:
            execution.error = str(exc)
            self._diagnose(run, nonce, execution)
        finally:
            self._watch.unsubscribe(run.name)
            watch.unsubscribe(run.name)
            self.transitions[run.name] = dict(progress.transitions)
            self.machines.update({progress.machine} - {""})
            self.launcher_images.update({progress.launcher_image} - {""})
            run.delete(never_processed=progress.phase in UNPROCESSED)
            self._live.pop(run.name, None)
        execution.stderr += _transitions_text(progress.transitions)
        return execution

    def _run(self, run: VmiRun, progress: VmiProgress, events: Any, nonce: str,
             deadline: float) -> None:
        run.create(progress)
        target = self.settings.kubevirt.guest_ssh
        if target is not None:
            run.follow(events, progress, deadline, until_running=True)
            pod = console.launcher_pod(self.apis.core, self.namespace, run.uid)
            if pod is not None and not console.has_console_log(pod):
                opener = guest_ssh.port_forward(self.apis.core, self.namespace,
                                                pod["metadata"]["name"], target.port)
                lines = guest_ssh.read_console(opener, target, nonce, deadline)
                apply_console(progress.execution, lines, nonce, boot_marks=False)
                return
        run.follow(events, progress, deadline)
        apply_console(progress.execution, self._console(run), nonce, boot_marks=True)

    def _pull_before(self, state: str) -> dict[str, str]:
        """Every image the VMI boots from put in ``state`` and verified (cold: all three
        absent, so its launcher pod pulls each); the labels that say so, their sizes and
        layers summed."""
        labels = {"pull": state, "pull_images": ",".join(self._pulls)}
        found = [states.before(state) for states in self._pulls.values()]
        labels["pull_check"] = found[0]["pull_check"]  # the same CRI (or none) for all three
        labels.update(_summed(found))
        return labels

    def _pull_after(self, state: str) -> dict[str, str]:
        """The VMI ran: each of its images must be on the node now (cold: pulled for it);
        their sizes and layers summed, as labels."""
        return _summed([states.after(state) for states in self._pulls.values()])

    def _console(self, run: VmiRun) -> list[ConsoleLine]:
        pod = console.launcher_pod(self.apis.core, self.namespace, run.uid)
        if pod is None:
            raise console.ConsoleUnavailable(f"VMI {run.name} has no virt-launcher pod")
        return console.read(self.apis.core, self.namespace, pod)

    def _note_versions(self, run: VmiRun) -> None:
        """The libvirt and QEMU its launcher ran, from the first VMI whose log says (all of
        a cluster's launchers run the image its KubeVirt CR names)."""
        if self.launcher_versions is not None or not run.uid:
            return
        try:
            pod = console.launcher_pod(self.apis.core, self.namespace, run.uid)
            if pod is not None:
                self.launcher_versions = console.read_versions(self.apis.core, self.namespace,
                                                               pod)
        except (ApiException, OSError, urllib3.exceptions.HTTPError):
            return  # a fact about the run, never a reason to fail its sample

    def _diagnose(self, run: VmiRun, nonce: str, execution: Execution) -> None:
        """After a failure, whatever the console said (a guest init error, a kernel panic)."""
        if not run.uid:
            return
        try:
            lines = self._console(run)
        except console.ConsoleUnavailable:
            return
        said = guest_protocol.read_console(lines, nonce)
        execution.stdout = said.stdout
        execution.stderr = guest_protocol.annotate(lines, lines[0].ns if lines else 0)
        if said.error:
            execution.error = f"{execution.error} (guest init: {said.error})"

    # -- cleanup and facts ----------------------------------------------------------------

    def cleanup(self) -> list[str]:
        deleted = []
        for run in list(self._live.values()):
            run.delete(never_processed=True)
            deleted.append(f"VMI {run.name}")
        self._live.clear()
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        return deleted

    def facts(self, runtime: str) -> dict[str, Any]:
        descriptor = self.runtimes[runtime]
        found = self.installation
        return {"kind": "kubevirt", "installed": found.verdict()[0], "machine": descriptor.machine,
                "disk_bus": descriptor.disk_bus, "cpu_model": descriptor.cpu_model,
                "image_volume": found.image_volume,
                "accel": self.accel,
                "emulated": found.use_emulation,
                "images": dataclasses.asdict(self._images) if self._images else None,
                "kubevirt": found.facts(), "console": "guest-console-log container log, "
                "timestamps on the node's clock"}

    def final_facts(self) -> dict[str, Any]:
        versions = self.launcher_versions
        if versions is not None:
            versions = {**versions, "source": "the virt-launcher pod's compute container log: "
                        "libvirt's first line of the domain's QEMU log"}
        final = {"phase_transitions": self.transitions, "machine_types": sorted(self.machines),
                 "launcher_images": sorted(self.launcher_images),
                 "launcher_versions": versions or "not seen: no launcher log said"}
        verified = {states.image: dict(states.verified) for states in self._pulls.values()
                    if states.cri is not None}
        if verified:
            final["image_state"] = {
                "vmis_verified": verified,
                "how": "before every start VMI, each image it boots from (containerdisk, "
                       "datadisk, kernelboot) was put in the state asked for and checked "
                       "through the node's CRI as a pod's image is (image_state); after it, "
                       "each was found present. Samples carry pull, pull_check and pull_images, "
                       "image_size and image_layers summed over the three"}
        return final


def release_leftovers(apis: Apis, namespace: str) -> list[str]:
    """Delete the VMIs an earlier run left in ``namespace`` (gc), releasing the finalizer of
    those no KubeVirt controller ever processed, which would otherwise hold the namespace's
    deletion forever."""
    try:
        found: Any = apis.custom.list_namespaced_custom_object(manifests.GROUP, manifests.VERSION,
                                                          namespace, manifests.PLURAL)
    except ApiException as exc:
        if is_not_found(exc):  # KubeVirt's API is not served: there can be no VMI
            return []
        raise
    deleted = []
    for item in found.get("items", []):
        run = VmiRun(apis, namespace, item, "", 0.0, uid=str(item["metadata"].get("uid", "")))
        phase = str((item.get("status") or {}).get("phase") or "")
        run.delete(never_processed=phase in UNPROCESSED)
        deleted.append(f"VMI {namespace}/{run.name}")
    return deleted


def apply_console(execution: Execution, lines: list[ConsoleLine], nonce: str,
                  boot_marks: bool) -> None:
    """What the console said, into the execution; marks on the node's clock."""
    said = guest_protocol.read_console(lines, nonce)
    execution.stdout = said.stdout
    origin = lines[0].ns if lines else 0
    execution.stderr = guest_protocol.annotate(lines, origin)
    if boot_marks:
        for name, ns in (("kernel", said.kernel_ns), ("init", said.init_ns),
                         ("workload", said.workload_ns)):
            if ns is not None:
                execution.mark(name, Clock.NODE_REALTIME, ns)
    execution.exit_code = said.exit_code
    last = f"last console line: {said.last_line!r}" if said.last_line else "no console output"
    if said.error is not None:
        execution.error = f"guest init: {said.error}"
    elif said.exit_code is None:
        execution.error = f"the guest stopped before the workload finished ({last})"


def _summed(found: list[dict[str, str]]) -> dict[str, str]:
    """image_size and image_layers over several images' labels, when every one had them."""
    summed = {}
    for label in ("image_size", "image_layers"):
        if found and all(label in one for one in found):
            summed[label] = str(sum(int(one[label]) for one in found))
    return summed


def _transitions_text(transitions: dict[str, str]) -> str:
    if not transitions:
        return ""
    body = "".join(f"{phase}: {at}\n" for phase, at in transitions.items())
    return "--- VMI phaseTransitionTimestamps (one-second precision) ---\n" + body
