"""One measured pod: create, follow it through its phases, collect its log, delete it.

Marks (harness monotonic clock, watch receive times): ``create`` when the create call
returns (also on the harness wall clock, for the in-sandbox stamp), or when the watch
delivered the pod's first event if that was received earlier (Execution.not_after), ``scheduled`` at the first
pod update with spec.nodeName, ``running`` at the first one whose container has started,
``ready`` at the first with condition Ready=True. A pod the cluster cannot run fails with
the cluster's own words as soon as it says them: a refused create, FailedCreatePodSandBox,
ErrImageNeverPull and other image errors; an unschedulable pod after a bounded wait with
the scheduler's reason.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kubernetes.client.exceptions import ApiException

from sandbench.backends.kubernetes import api
from sandbench.backends.kubernetes.api import api_message
from sandbench.backends.kubernetes.watcher import RunWatch, Seen
from sandbench.errors import SandboxFailed
from sandbench.model import Clock, Execution

PLANNED = ("create", "scheduled", "running", "ready", "workload")

#: Event reasons that mean the pod will not run; failing at once beats waiting for a timeout.
FATAL_EVENTS = ("FailedCreatePodSandBox", "ErrImageNeverPull", "InspectFailed", "Failed")
#: Container waiting reasons that mean the same.
FATAL_WAITING = ("ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                 "CreateContainerConfigError", "CreateContainerError", "RunContainerError")


class PodFailed(SandboxFailed):
    pass


@dataclass
class PodProgress:
    """What has been seen of a pod so far."""

    execution: Execution
    unschedulable: str | None = None
    unschedulable_since: float | None = None
    finished: bool = False
    phase: str = "Pending"
    seen: set[str] = field(default_factory=set)

    def mark_once(self, name: str, received_ns: int) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.execution.mark(name, Clock.HOST_MONOTONIC, received_ns)


def _started(pod: dict[str, Any]) -> bool:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def _waiting_failure(pod: dict[str, Any]) -> str | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            return f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
    return None


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _unschedulable(pod: dict[str, Any]) -> str | None:
    """The scheduler's reason as the pod's own status says it (condition PodScheduled False,
    Unschedulable): there even when the FailedScheduling Event was dropped under load."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (condition.get("type") == "PodScheduled" and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"):
            return f"Unschedulable: {condition.get('message', '')}".strip(": ")
    return None


def observe_pod(progress: PodProgress, seen: Seen) -> None:
    pod = seen.object
    progress.execution.not_after("create", seen.received_ns)
    if seen.type == "DELETED":
        raise PodFailed("the pod was deleted before it finished")
    if (pod.get("spec") or {}).get("nodeName"):
        progress.mark_once("scheduled", seen.received_ns)
    elif (reason := _unschedulable(pod)) is not None:
        progress.unschedulable = progress.unschedulable or reason
        if progress.unschedulable_since is None:
            progress.unschedulable_since = time.monotonic()
    if _started(pod):
        progress.mark_once("running", seen.received_ns)
    if _ready(pod):
        progress.mark_once("ready", seen.received_ns)
    failure = _waiting_failure(pod)
    if failure:
        raise PodFailed(failure)
    progress.phase = (pod.get("status") or {}).get("phase") or progress.phase
    progress.finished = progress.phase in ("Succeeded", "Failed")


def observe_event(progress: PodProgress, seen: Seen) -> None:
    event = seen.object
    reason, message = event.get("reason", ""), event.get("message", "")
    if reason == "FailedScheduling":
        progress.unschedulable = f"FailedScheduling: {message}"
        if progress.unschedulable_since is None:
            progress.unschedulable_since = time.monotonic()
    elif event.get("type") == "Warning" and reason in FATAL_EVENTS:
        raise PodFailed(f"{reason}: {message}")


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return dict(terminated)
    return None


def exit_code(pod: dict[str, Any]) -> int | None:
    terminated = _terminated(pod)
    if terminated is None:
        return None
    code = int(terminated.get("exitCode", 0))
    # A signal shows as 128 + N, as a shell would say it; the kubelet adds the signal when
    # it knows it.
    signal_number = terminated.get("signal")
    return -int(signal_number) if signal_number else code


def terminated_reason(pod: dict[str, Any]) -> str:
    """The kubelet's word for how the workload container ended: Completed, Error, OOMKilled."""
    terminated = _terminated(pod)
    return str((terminated or {}).get("reason") or "")


@dataclass
class PodRun:
    core: Any
    watch: RunWatch
    namespace: str
    manifest: dict[str, Any]
    schedule_timeout_s: float

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    def create(self, execution: Execution | None) -> None:
        """Create the pod, marking ``create`` on ``execution`` when the answer arrives; None
        marks nothing (a burst's pods take their create from the watch's first event)."""
        # The answer is taken raw and marked the moment it arrives: decoding the returned pod
        # into the client's objects takes milliseconds, long enough for the scheduler's
        # binding to be seen on the watch first.
        try:
            answer = self.core.create_namespaced_pod(self.namespace, self.manifest,
                                                     _preload_content=False)
            if execution is not None:
                execution.mark_now("create")
            answer.release_conn()
        except ApiException as exc:
            if not api.is_conflict(exc):
                raise PodFailed(f"the API refused the pod: {api_message(exc)}") from exc
            if execution is not None:
                execution.mark_now("create")

    def follow(self, events: queue.Queue[Seen], progress: PodProgress, deadline: float,
               until_ready: bool, stop: threading.Event | None = None,
               observe: Callable[[PodProgress, Seen], None] | None = None,
               until_scheduled: bool = False) -> None:
        """Consume watch events until the pod finishes (or, with until_ready, is Ready; with
        until_scheduled, is bound to a node: a pod on a KWOK fake node, whose later status
        nothing ran to earn); a ``stop`` set meanwhile (a burst stopped by Ctrl-C) fails it
        within a second. ``observe`` sees each pod event first (a burst's create mark)."""
        while not progress.finished and not (until_ready and "ready" in progress.seen) and not (
                until_scheduled and "scheduled" in progress.seen):
            if stop is not None and stop.is_set():
                raise PodFailed(f"stopped in phase {progress.phase}: the burst was stopped")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PodFailed(f"timed out in phase {progress.phase}" + (
                    f"; last scheduler message: {progress.unschedulable}"
                    if progress.unschedulable else ""))
            self._check_unschedulable(progress)
            try:
                seen = events.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if seen.kind == "pod":
                if observe is not None:
                    observe(progress, seen)
                observe_pod(progress, seen)
            else:
                observe_event(progress, seen)

    def _check_unschedulable(self, progress: PodProgress) -> None:
        since = progress.unschedulable_since
        if since is not None and "scheduled" not in progress.seen:
            if time.monotonic() - since > self.schedule_timeout_s:
                raise PodFailed(f"unschedulable for {self.schedule_timeout_s:.0f} s: "
                                f"{progress.unschedulable}")

    def log(self) -> str:
        """The workload container's log, or why there is none. Never None: the client hands
        back None for a log request the API server answered with no body (seen when the
        node's kubelet died mid-run), which a failed sample's raw output cannot hold."""
        try:
            text = self.core.read_namespaced_pod_log(self.name, self.namespace,
                                                     container="workload")
        except ApiException as exc:
            return f"(no log: {api_message(exc)})"
        if not isinstance(text, str):
            return "(no log: the API server answered the log request with no body)"
        return text

    def status(self) -> dict[str, Any]:
        try:
            pod = self.core.read_namespaced_pod(self.name, self.namespace, _preload_content=False)
            result: dict[str, Any] = json.loads(pod.data)
            return result
        except ApiException:
            return {}

    def pod_ip(self) -> str | None:
        """The pod's IP as its status says now; None before it has one."""
        ip = (self.status().get("status") or {}).get("podIP")
        return str(ip) if ip else None

    def delete(self, wait_s: float = 60.0) -> None:
        """Delete at once (grace 0) and wait until it is gone, so the next measured pod
        never overlaps it. Safe to call twice."""
        try:
            if not api.delete(lambda: self.core.delete_namespaced_pod(
                    self.name, self.namespace, grace_period_seconds=0)):
                return
        except ApiException:
            pass  # refused (a flaky server): still wait, so the next pod never overlaps it
        api.wait_gone(lambda: api.absent(lambda: self.core.read_namespaced_pod(
            self.name, self.namespace)), wait_s, 0.1)
