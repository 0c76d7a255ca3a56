"""A burst on a cluster: the burst's pods on every selected node at once, timed by the run's
one watch.

A burst of N (a concurrency level) on k nodes is N x k pods, N pinned to each node, all
created together: one thread per pod (a pool sized to the burst), each waiting at the burst's
gate (backends/burst.py's Schedule) until every thread is up, then creating its pod at its
scheduled arrival, so the requests are not spread by the threads' start. Each pod goes through
what a lone measured pod goes through, but deletion: its phases mean what a lone pod's mean.

Timing comes from the run's one watch (watcher.RunWatch), never from a creating thread (issue
9, item 8: under a burst the creating threads are the ones delayed). ``create`` is the receive
time of the pod's first event on the watch, on the harness's monotonic clock (subscribed before
the pod exists, so that event is its ADDED); ``scheduled``, ``running`` and ``ready`` are the
first updates whose status fields say so (lifecycle.observe_pod). Events are not relied on: they
are dropped under load (kube-burner #1189); a Warning event only fails a pod sooner, and an
unschedulable pod is read from its PodScheduled condition as well.

The client is never the throttle. The official Python client has no client-side rate limiter
(client-go's default QPS 5 and burst 10 have no counterpart in it: every request goes out when
its thread makes it), and its connection pool is sized (api.POOL_SIZE) so concurrent creates
neither wait for a connection nor open a fresh TLS one each. The API server's own flow control
can still answer 429; that is retried (api.retry_policy) and shows as harness_lateness. What was
used is in run.json (environment.cluster.client).

Every pod of a burst is measured (ClusterLoader2 keeps measurement pods apart from load pods;
here there are no load pods) and labelled with its burst and concurrency (manifests.BURST,
manifests.CONCURRENCY) beside the run's labels, so `kubectl get pods -l sandbench.io/burst=ID`
shows one burst. No pod is deleted while the burst runs (a kubelet's teardown is load on its
node); all go together at its end. Every pod is in the backend's live pods before it is created:
a Ctrl-C stops the burst (pods not yet created are not, those created stop being followed
within a second) and the backend's cleanup deletes them, as it does a lone pod.

A pod on a KWOK fake node (nodes.is_fake) runs nothing: kwok writes its status, no kubelet
starts a container. Its API-side phase (created -> scheduled, from the same watch) is real and
recorded; every runtime-side one (running, ready, the workload's stamp) is not applicable and
recorded as skipped with why (Execution.not_applicable), never as a number or a failure. It is
followed until it is bound to its node, and then done: no log is read (there is no kubelet to
serve one) and no end is waited for. Its creating thread is one of the burst's like any other,
so a burst across fake nodes drives the same creates, watch and threads as a real one.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from sandbench.backends.base import NOT_STARTED
from sandbench.backends.burst import Schedule, harness_cpu_s
from sandbench.backends.kubernetes import api, manifests
from sandbench.backends.kubernetes.lifecycle import (PLANNED, PodFailed, PodProgress, PodRun,
                                                     exit_code, terminated_reason)
from sandbench.backends.kubernetes.nodes import NOTHING_RUNS, is_fake
from sandbench.backends.kubernetes.watcher import RunWatch, Seen
from sandbench.model import Burst, Case, ClockOffset, Execution, MissingOffset

#: How long the end of a burst waits for its pods to be gone before leaving them to cleanup.
DELETE_WAIT_S = 120.0
#: What run.json says of the client (environment.cluster.client).
CLIENT = {
    "library": "kubernetes (official Python client)",
    "rate_limiter": "none: the Python client has no client-side QPS or burst limit "
                    "(client-go's QPS 5 / burst 10 do not apply)",
    "connection_pool_maxsize": api.POOL_SIZE,
    "creating_threads": "one per pod of the burst (N per node x nodes)",
    "retries": "429 and 5xx retried with exponential back-off, Retry-After honoured",
}

#: What a pod on a KWOK fake node is followed for: its create and its binding (API side).
FAKE_PLANNED = ("create", "scheduled")
#: The marks that never happen there (runtime side), each skipped with why.
FAKE_NOT_APPLICABLE = {mark: NOTHING_RUNS for mark in PLANNED if mark not in FAKE_PLANNED}

#: The label of a burst's pod the scheduler found no room for at first (its message): it
#: waited for others of the burst to end, so it did not start with them (model.CONTEXT_LABELS).
SCHEDULER_WAIT = "scheduler_wait"

#: Makes a pod: (name, runtime, case, node, extra labels) -> its PodRun, pinned to the node.
MakePod = Callable[[str, str, Case, dict[str, Any], dict[str, str]], PodRun]


@dataclass(frozen=True)
class Cluster:
    """What the backend lends a burst."""

    core: Any
    namespace: str
    watch: RunWatch
    #: The backend's live pods, by name: its cleanup deletes what is here.
    live: dict[str, PodRun]
    make_pod: MakePod
    #: The memory limit of every pod, in MiB (an OOM kill's reason names it).
    memory_mib: int


@dataclass
class _Pod:
    run: PodRun
    execution: Execution
    offset_s: float
    #: On a KWOK fake node: followed until scheduled, nothing runtime-side read.
    fake: bool = False
    progress: PodProgress = field(init=False)
    #: When its thread asked the API server to create it (monotonic ns): its lateness only.
    requested_ns: int | None = None

    def __post_init__(self) -> None:
        self.progress = PodProgress(self.execution)


def pod_names(sandbox_ids: list[str], nodes: list[str]) -> list[tuple[str, str]]:
    """(pod name, node) of every pod of a burst, in arrival order: each id once per node. On
    one node a pod is named by its sandbox id, as a lone pod is; on more, the node's number
    is appended (names stay short, whatever the nodes are called)."""
    if len(nodes) == 1:
        return [(sandbox_id, nodes[0]) for sandbox_id in sandbox_ids]
    return [(f"{sandbox_id}-{number}", node) for sandbox_id in sandbox_ids
            for number, node in enumerate(nodes)]


def burst_id(sandbox_ids: list[str]) -> str:
    """The burst's own id, for its pods' label: its sandboxes' ids without the position."""
    return sandbox_ids[0].rsplit("-", 1)[0]


def pod_execution(node: dict[str, Any], offset: ClockOffset | MissingOffset) -> Execution:
    """A fresh execution for a pod of the burst on ``node``: what a real node's pod is timed
    for, with its node's clock offset; on a fake node the API side only, the rest skipped."""
    name = str(node["metadata"]["name"])
    if is_fake(node):
        return Execution(planned=FAKE_PLANNED, labels={"node": name},
                         not_applicable=dict(FAKE_NOT_APPLICABLE))
    execution = Execution(planned=PLANNED, labels={"node": name})
    execution.relate(offset)
    return execution


def waited(burst: Burst) -> str | None:
    """What run.json's notes say of a burst some of whose pods waited for room on their node
    (SCHEDULER_WAIT), or None when every pod was scheduled at once."""
    late = [e.labels[SCHEDULER_WAIT] for e in burst.executions if SCHEDULER_WAIT in e.labels]
    if not late:
        return None
    return (f"{len(late)} of {len(burst.executions)} pods of a burst of "
            f"{len(burst.executions)} waited for room on their node ({late[0]}): they did not "
            "start together with the others, and their create_to_scheduled holds that wait "
            "(labelled scheduler_wait); lower resources.cpus or memory_mib, or the concurrency, "
            "to start them all at once")


def _first_event(progress: PodProgress, seen: Seen) -> None:
    """The pod's first event on the watch is its creation, as the harness learnt of it."""
    if "create" not in progress.seen:
        progress.seen.add("create")
        progress.execution.mark_monotonic("create", seen.received_ns)


def run_fanout(cluster: Cluster, nodes: list[dict[str, Any]], runtime: str, case: Case,
               sandbox_ids: list[str], timeout_s: float, offsets_s: list[float],
               offsets: dict[str, ClockOffset | MissingOffset]) -> Burst:
    """One burst: every id on every node, the i-th id's pods requested ``offsets_s[i]`` after
    the gate opens; ``offsets`` is each node's clock offset for ``runtime``, by node name.
    Returns the executions in pod_names' order, with their ids."""
    names = [str(n["metadata"]["name"]) for n in nodes]
    by_name = dict(zip(names, nodes))
    labels = {manifests.BURST: burst_id(sandbox_ids),
              manifests.CONCURRENCY: str(len(sandbox_ids))}
    schedule_s = [offset for offset in offsets_s for _ in names]
    pods = []
    for (name, node), offset_s in zip(pod_names(sandbox_ids, names), schedule_s):
        execution = pod_execution(by_name[node], offsets[node])
        pods.append(_Pod(cluster.make_pod(name, runtime, case, by_name[node], labels),
                         execution, offset_s, is_fake(by_name[node])))
    cpu_before, wall_before = harness_cpu_s(), time.monotonic_ns()
    schedule = _run(cluster, pods, timeout_s)
    _delete_all(cluster, pods, labels[manifests.BURST])
    begun = schedule.begun_ns if schedule.begun_ns is not None else wall_before
    return Burst([pod.execution for pod in pods], harness_cpu_s() - cpu_before,
                 (time.monotonic_ns() - wall_before) / 1e9,
                 [None if pod.requested_ns is None
                  else (pod.requested_ns - begun) / 1e9 - pod.offset_s for pod in pods],
                 [pod.run.name for pod in pods])


def _run(cluster: Cluster, pods: list[_Pod], timeout_s: float) -> Schedule:
    """Create and follow every pod, each in its own thread; returns the burst's schedule.
    A Ctrl-C (raised here, in the main thread) stops the burst and is raised again once no
    thread is left creating a pod, with every pod still in the backend's live pods."""
    schedule = Schedule([pod.offset_s for pod in pods])
    stop = threading.Event()
    events = {}
    for pod in pods:
        # Before any pod exists: its first event on the watch is then its creation.
        events[pod.run.name] = cluster.watch.subscribe(pod.run.name)
        cluster.live[pod.run.name] = pod.run
    pool = ThreadPoolExecutor(max_workers=len(pods), thread_name_prefix="fanout")
    try:
        futures = [pool.submit(_one, pod, events[pod.run.name], index, schedule, stop,
                               cluster.memory_mib, timeout_s)
                   for index, pod in enumerate(pods)]
        for future in futures:
            future.result()
    except BaseException:
        schedule.halt()
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)
        for pod in pods:
            cluster.watch.unsubscribe(pod.run.name)
    return schedule


def _one(pod: _Pod, events: Any, index: int, schedule: Schedule, stop: threading.Event,
         memory_mib: int, timeout_s: float) -> None:
    """One pod of the burst: created at its turn, followed until it ends, its log read."""
    execution = pod.execution
    try:
        if not schedule.gate(index):
            execution.error = NOT_STARTED
            return
        pod.requested_ns = time.monotonic_ns()
        pod.run.create(None)
        pod.run.follow(events, pod.progress, time.monotonic() + timeout_s, until_ready=False,
                       stop=stop, observe=_first_event, until_scheduled=pod.fake)
        if pod.fake:
            return  # bound to its node: all the API side did; nothing ran to read
        status = pod.run.status()
        execution.exit_code = exit_code(status)
        if terminated_reason(status) == "OOMKilled":
            execution.oom = f"memory limit {memory_mib} MiB, as the pod's"
        execution.stdout = pod.run.log()
    except PodFailed as exc:
        execution.error = str(exc)
        if "create" in pod.progress.seen and not stop.is_set() and not pod.fake:
            execution.stdout = pod.run.log()
    except Exception as exc:  # a harness bug in one thread fails its pod, not the run
        execution.error = f"the harness failed: {type(exc).__name__}: {exc}"
    finally:
        if pod.progress.unschedulable:
            execution.labels[SCHEDULER_WAIT] = pod.progress.unschedulable[:200]
        # One that ended before its gate must not hold the others back.
        schedule.ready(index)


def _delete_all(cluster: Cluster, pods: list[_Pod], burst: str) -> None:
    """Delete every pod of the burst at once (grace 0) and wait until none is left, so the
    next burst never overlaps this one; what is still there stays in the live pods."""
    core, namespace = cluster.core, cluster.namespace

    def delete(pod: _Pod) -> None:
        try:
            api.delete(lambda: core.delete_namespaced_pod(pod.run.name, namespace,
                                                          grace_period_seconds=0))
        except Exception:
            pass  # refused (a flaky server): the wait below, then cleanup, see to it

    with ThreadPoolExecutor(max_workers=len(pods), thread_name_prefix="fanout-delete") as pool:
        list(pool.map(delete, pods))
    selector = f"{manifests.BURST}={burst}"

    def gone() -> bool:
        try:
            return not core.list_namespaced_pod(namespace, label_selector=selector).items
        except Exception:
            return False  # a flaky answer is no proof of anything: ask again

    if api.wait_gone(gone, DELETE_WAIT_S, 0.2):
        for pod in pods:
            cluster.live.pop(pod.run.name, None)
