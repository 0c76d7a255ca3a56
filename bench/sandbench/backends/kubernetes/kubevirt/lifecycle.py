"""One measured VMI: create it, follow it through KubeVirt's phases, delete it.

Marks (harness monotonic clock, watch receive times, as for pods): ``create`` when the create
call returns (also on the harness wall clock), ``scheduled`` at the first VMI update in phase
Scheduled or later (the launcher pod runs and virt-handler has the VMI), ``running`` at the
first in Running or Succeeded (QEMU started the domain; not that the guest booted: the guest's
own marks come from its console). The one-second phaseTransitionTimestamps are kept beside
them as a cross-check.

A VMI nothing processes stays without a phase (no KubeVirt webhook) or Pending (no
virt-controller) forever; that is said, as such, after a bounded wait.
"""

from __future__ import annotations

import json
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from sandbench.backends.kubernetes import api
from sandbench.backends.kubernetes.api import Apis, api_message
from sandbench.backends.kubernetes.kubevirt.manifests import CREATED_BY, GROUP, PLURAL, VERSION
from sandbench.backends.kubernetes.lifecycle import FATAL_WAITING
from sandbench.backends.kubernetes.watcher import Seen
from sandbench.errors import SandboxFailed
from sandbench.model import Clock, Execution

PLANNED = ("create", "scheduled", "running", "kernel", "init", "workload")
SCHEDULED_OR_LATER = ("Scheduled", "Running", "Succeeded")
RUNNING_OR_LATER = ("Running", "Succeeded")
UNPROCESSED = ("", "Pending")


class VmiFailed(SandboxFailed):
    pass


@dataclass
class VmiProgress:
    """What has been seen of a VMI so far."""

    execution: Execution
    phase: str = ""
    uid: str = ""
    seen: set[str] = field(default_factory=set)
    transitions: dict[str, str] = field(default_factory=dict)
    """phaseTransitionTimestamps: phase -> RFC 3339 time (one-second precision)."""
    last_warning: str | None = None
    #: What actually ran the VM, as its status says: QEMU's machine type (its version names
    #: the QEMU release, pc-q35-10.0) and the virt-launcher image (libvirt and QEMU's).
    machine: str = ""
    launcher_image: str = ""

    @property
    def finished(self) -> bool:
        return self.phase == "Succeeded"

    def mark_once(self, name: str, received_ns: int) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.execution.mark(name, Clock.HOST_MONOTONIC, received_ns)


def _failure(status: dict[str, Any]) -> str:
    """Why a Failed VMI failed, in KubeVirt's words."""
    reasons = [f"{c.get('reason', '')}: {c.get('message', '')}".strip(": ")
               for c in status.get("conditions") or [] if c.get("status") == "False"]
    said = "; ".join(r for r in [status.get("reason", ""), *reasons] if r)
    return f"the VMI failed: {said or 'KubeVirt gave no reason'}"


def _fatal_condition(status: dict[str, Any]) -> str | None:
    # KubeVirt copies the launcher pod's image errors (ErrImagePull...) into its conditions.
    for condition in status.get("conditions") or []:
        if condition.get("reason") in FATAL_WAITING:
            return f"{condition['reason']}: {condition.get('message', '')}".strip(": ")
    return None


def observe_vmi(progress: VmiProgress, seen: Seen) -> None:
    progress.execution.not_after("create", seen.received_ns)
    if seen.type == "DELETED":
        raise VmiFailed("the VMI was deleted before it finished")
    vmi = seen.object
    status = vmi.get("status") or {}
    progress.uid = str((vmi.get("metadata") or {}).get("uid") or progress.uid)
    progress.phase = str(status.get("phase") or "")
    progress.machine = str((status.get("machine") or {}).get("type") or progress.machine)
    progress.launcher_image = str(status.get("launcherContainerImageVersion")
                                  or progress.launcher_image)
    for item in status.get("phaseTransitionTimestamps") or []:
        progress.transitions.setdefault(str(item.get("phase")),
                                        str(item.get("phaseTransitionTimestamp")))
    if progress.phase in SCHEDULED_OR_LATER:
        progress.mark_once("scheduled", seen.received_ns)
    if progress.phase in RUNNING_OR_LATER:
        progress.mark_once("running", seen.received_ns)
    fatal = _fatal_condition(status)
    if fatal:
        raise VmiFailed(fatal)
    if progress.phase == "Failed":
        raise VmiFailed(_failure(status))


def observe_event(progress: VmiProgress, seen: Seen) -> None:
    event = seen.object
    if event.get("type") == "Warning":
        progress.last_warning = f"{event.get('reason', '')}: {event.get('message', '')}"


def unprocessed_message(name: str, phase: str, waited_s: float, runtime: str) -> str:
    """What to say of a VMI that KubeVirt never acted on."""
    doctor = f"`sandbench doctor --backend kubernetes --runtimes {runtime}`"
    if not phase:
        return (f"no KubeVirt controller processed VMI {name!r} within {waited_s:.0f} s (it "
                "still has no status.phase, which KubeVirt's admission webhook sets at once): "
                f"is KubeVirt installed and running? Check with {doctor}")
    return (f"no KubeVirt controller processed VMI {name!r} within {waited_s:.0f} s (still "
            "Pending, no virt-launcher pod): is KubeVirt's virt-controller running? Check "
            f"with {doctor}")


@dataclass
class VmiRun:
    apis: Apis
    namespace: str
    manifest: dict[str, Any]
    runtime: str
    controller_timeout_s: float
    created_at: float | None = None
    uid: str = ""

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    def create(self, progress: VmiProgress) -> None:
        """Create and mark; the answer is read raw, as for pods, so the mark is not late by
        the client's decoding."""
        execution = progress.execution
        try:
            answer: Any = self.apis.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.manifest, _preload_content=False)
            execution.mark_now("create")
            self.created_at = time.monotonic()
            self.uid = str(json.loads(answer.data)["metadata"]["uid"])
            answer.release_conn()
        except ApiException as exc:
            if not api.is_conflict(exc):
                raise VmiFailed(f"the API refused the VMI: {api_message(exc)}") from exc
            execution.mark_now("create")
            self.created_at = time.monotonic()
            existing: Any = self.apis.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name)
            self.uid = str(existing["metadata"]["uid"])
        progress.uid = self.uid

    def follow(self, events: queue.Queue[Seen], progress: VmiProgress, deadline: float,
               until_running: bool = False) -> None:
        """Consume watch events until the VMI succeeds (the guest powered off) or, with
        until_running, runs."""
        while not progress.finished and not (until_running and "running" in progress.seen):
            now = time.monotonic()
            self._check_processed(progress, now)
            if now >= deadline:
                last = f"; last warning: {progress.last_warning}" if progress.last_warning else ""
                raise VmiFailed(f"timed out in phase {progress.phase or '(none)'}{last}")
            try:
                seen = events.get(timeout=min(deadline - now, 1.0))
            except queue.Empty:
                continue
            if seen.kind == "event":
                observe_event(progress, seen)
            else:
                observe_vmi(progress, seen)

    def _check_processed(self, progress: VmiProgress, now: float) -> None:
        if self.created_at is None or progress.phase not in UNPROCESSED:
            return
        waited = now - self.created_at
        if waited > self.controller_timeout_s:
            message = unprocessed_message(self.name, progress.phase, waited, self.runtime)
            if progress.last_warning:
                message += f"; last warning: {progress.last_warning}"
            raise VmiFailed(message)

    def delete(self, never_processed: bool, wait_s: float = 120.0) -> None:
        """Delete at once and wait until the VMI and its launcher pod are gone, so the next
        measured sandbox never overlaps it. Safe to call twice. A VMI no controller ever saw
        may carry KubeVirt's finalizer that nothing would remove: it is released."""
        custom = self.apis.custom
        api.delete(lambda: custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name, grace_period_seconds=0))
        if never_processed:
            self._release_finalizers()
        api.wait_gone(self._gone, wait_s, 0.2)

    def _release_finalizers(self) -> None:
        try:
            self.apis.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name,
                {"metadata": {"finalizers": None}})
        except ApiException as exc:
            if not api.is_not_found(exc):
                raise

    def _gone(self) -> bool:
        if not api.absent(lambda: self.apis.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name)):
            return False
        if not self.uid:
            return True
        return not self.apis.core.list_namespaced_pod(
            self.namespace, label_selector=f"{CREATED_BY}={self.uid}").items
