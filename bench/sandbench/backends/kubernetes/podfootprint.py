"""Footprint and density on a cluster: pods held Ready while the kubelet's stats are read.

A footprint pod is followed until Ready, then the kubelet's summary is read until it holds
stats taken after the settle time (podstats); its probe idles, so it is deleted afterwards
rather than waited for. Density creates the case's pods one after another, each Ready before
the next, stops once the node's available memory would fall below the floor (backends.floor)
or a pod does not become Ready (the scheduler's reason, e.g. "Insufficient cpu", is the
case's), reads them as one and deletes them all; every pod is in ``live`` from its creation,
so the backend's cleanup deletes it on Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from dataclasses import dataclass
from typing import Any, Callable

import urllib3
from kubernetes.client.exceptions import ApiException

from sandbench.backends.floor import stop_reason
from sandbench.backends.kubernetes import api, podstats
from sandbench.backends.kubernetes.lifecycle import PodFailed, PodProgress, PodRun
from sandbench.backends.kubernetes.watcher import RunWatch, Seen
from sandbench.model import Case, Execution, Observe

#: Seconds a footprint waits for the kubelet's stats of a settled pod: its housekeeping runs
#: about every 10 s (15 s at most), so two periods are plenty.
STATS_WAIT_S = 40.0
#: What reading the kubelet can fail with, each turned into a footprint error.
READ_ERRORS = (podstats.NoStats, ApiException, OSError, ValueError, urllib3.exceptions.HTTPError)


@dataclass(frozen=True)
class Held:
    """What the backend lends for holding pods: where they go and how they are read."""

    core: Any
    node: str
    namespace: str
    #: The kubelet's /stats/summary URL when it is read directly; None: the node proxy.
    summary_url: str | None
    watch: RunWatch
    #: The backend's live pods, by name: cleanup deletes what is here.
    live: dict[str, PodRun]
    #: Makes a pod of (name, runtime, case).
    make_pod: Callable[[str, str, Case], PodRun]

    def available_kib(self) -> int:
        return podstats.node_available_kib(
            podstats.read_summary(self.core, self.node, self.summary_url))

    def stats(self, name: str, not_before: float, deadline: float) -> Any:
        return podstats.wait_for(self.core, self.node, self.namespace, name, not_before,
                                 deadline, self.summary_url)


def _reason(exc: BaseException) -> str:
    return api.api_message(exc) if isinstance(exc, ApiException) else str(exc)


def observe(held: Held, run: PodRun, events: queue.Queue[Seen], progress: PodProgress,
            settle: Observe, execution: Execution, timeout_s: float) -> None:
    """Footprint of one pod: Ready, then the kubelet's stats of it after the settle time;
    the probe's output kept. The caller deletes the pod."""
    deadline = time.monotonic() + timeout_s
    run.follow(events, progress, deadline, until_ready=True)
    not_before = time.time() + settle.settle_s
    try:
        execution.pod_footprint = held.stats(run.name, not_before,
                                             min(deadline, time.monotonic() + STATS_WAIT_S))
    except READ_ERRORS as exc:
        execution.footprint_error = f"pod stats not read: {_reason(exc)}"
    execution.stdout = run.log()


def together(held: Held, runtime: str, case: Case, sandbox_id: str,
             timeout_s: float) -> Execution:
    """Density: the case's pods held Ready together, read as one, then deleted."""
    assert case.together is not None and case.observe is not None
    wanted, settle = case.together, case.observe
    execution = Execution(labels={"sandboxes": str(wanted)})
    deadline = time.monotonic() + timeout_s
    runs: list[PodRun] = []
    try:
        before = held.available_kib()
        for number in range(wanted):
            why = stop_reason(number, wanted, held.available_kib(), before,
                              settle.floor_mib * 1024)
            if why is not None:
                execution.error = why.replace("host's MemAvailable", "node's available memory")
                return execution
            _start(held, runtime, case, f"{sandbox_id}-{number:03d}", deadline, runs)
        not_before = time.time() + settle.settle_s
        stats_deadline = min(deadline, time.monotonic() + STATS_WAIT_S)
        found = [held.stats(run.name, not_before, stats_deadline) for run in runs]
        execution.pod_footprint = dataclasses.replace(
            podstats.together(found), available_drop_kib=before - held.available_kib())
        execution.stdout = runs[0].log()
    except PodFailed as exc:
        execution.error = f"pod {len(runs)} of {wanted} did not become Ready: {exc}"
    except READ_ERRORS as exc:
        execution.footprint_error = f"pod stats not read: {_reason(exc)}"
        execution.stdout = runs[0].log() if runs else ""
    finally:
        for run in runs:
            run.delete()
            held.live.pop(run.name, None)
    return execution


def _start(held: Held, runtime: str, case: Case, name: str, deadline: float,
           runs: list[PodRun]) -> None:
    """Create one pod and follow it until Ready; in ``live`` and ``runs`` from before its
    creation, so one that never gets Ready is deleted too."""
    run = held.make_pod(name, runtime, case)
    events = held.watch.subscribe(run.name)
    held.live[run.name] = run
    runs.append(run)
    try:
        run.create(Execution())
        run.follow(events, PodProgress(Execution()), deadline, until_ready=True)
    finally:
        held.watch.unsubscribe(run.name)
