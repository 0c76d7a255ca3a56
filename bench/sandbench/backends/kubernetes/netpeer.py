"""The net workload on a cluster: its peer as pods of the run, talking over the pod network.

A server peer (iperf3 -s, the probe's echo) is one pod per command and path, made the first
time a case needs it and kept for the run: Ready once it listens (a startupProbe on its
port, which stops probing once it passed, so no probe connects during a measurement), its
pod IP then written into the measured pod's command in place of model.PEER. A client peer
(the rr_peer case: the echo in the sandbox) is a pod per sandbox, made once the measured pod
is Ready and has an IP, which goes into the client's command in place of model.SANDBOX; it
retries until the echo listens, and its log is the measurement. A pod names its own address
as ``$(SANDBENCH_POD_IP)``, which the kubelet expands from the downward API's status.podIP.

Paths: ``same-node``, the peer on the measured pod's node; ``cross-node``, on another Ready,
schedulable, untainted node (that the RuntimeClasses' scheduling admits, when the peer runs
under the measured one), where the cluster has one; on a single-node cluster it is not
applicable and not run (run.json's ``net`` says why). The measured pod is always on the
run's node. Every pod is in the backend's live pods from its creation, so its cleanup (the
end, an error, Ctrl-C) deletes it; the sandbox and a client peer are deleted with their case.

Nothing is routed anywhere new: pods reach each other over whatever the CNI gives them (on
the test cluster a bridge with no default route, tests/cluster/up.sh).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kubernetes.client.exceptions import ApiException

from sandbench.backends.kubernetes import manifests
from sandbench.backends.kubernetes.api import Apis, api_message
from sandbench.backends.kubernetes.lifecycle import (PodFailed, PodProgress, PodRun, exit_code,
                                                     terminated_reason)
from sandbench.backends.kubernetes.nodes import REPELLING, is_fake
from sandbench.backends.kubernetes.watcher import RunWatch
from sandbench.errors import SandboxFailed
from sandbench.model import PEER, SANDBOX, Case, Execution, Peer

SAME_NODE, CROSS_NODE = "same-node", "cross-node"
#: The net_path label (a context label: the kind of path, not a row of its own).
NET_PATH = "pod-network"
#: The peer_runtime label per KubernetesSettings.peer_runtime: the same value for every
#: measured runtime, so their samples share rows and compare.
PEER_RUNTIMES = {"default": "node-default", "measured": "same-as-sandbox"}
#: The environment variable a pod reads its own IP from, and how its command names it.
POD_IP_ENV = "SANDBENCH_POD_IP"
OWN_IP = f"$({POD_IP_ENV})"
#: A label saying which path a peer pod serves, for `kubectl get pods -L`.
PATH_LABEL = "sandbench.io/net-path"

#: Makes a pod of (name, runtime, case, role, port): the backend's own, as every pod is.
MakePod = Callable[[str, str, Case, str, int | None], PodRun]


class PeerFailed(SandboxFailed):
    """A peer could not be had; the message says which and why."""


def labels(path: str, mode: str) -> dict[str, str]:
    """The labels every sample of a net case on a cluster carries."""
    return {"path": path, "net_path": NET_PATH, "peer_runtime": PEER_RUNTIMES[mode]}


def fill(argv: list[str] | tuple[str, ...], *, peer: str, sandbox: str) -> list[str]:
    """``argv`` with model.PEER and model.SANDBOX written as the given addresses."""
    return [arg.replace(PEER, peer).replace(SANDBOX, sandbox) for arg in argv]


def own_ip_env(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with the pod's IP in its container's environment when its command names
    it (OWN_IP): the kubelet expands $(VAR) in a command from the container's env."""
    container = manifest["spec"]["containers"][0]
    if any(OWN_IP in arg for arg in container["command"]):
        container["env"] = [*container.get("env", []), {
            "name": POD_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    return manifest


def as_peer(manifest: dict[str, Any], *, runtime_class: str | None, hostname: str,
            path: str, port: int | None, ready_s: float) -> dict[str, Any]:
    """A peer's pod from a measured pod's manifest (same image, volume, labels): on
    ``hostname``, under ``runtime_class`` (None: no runtimeClassName, the node's default
    handler), Ready once ``port`` listens (None: a client, which never listens).

    No resources: a peer is BestEffort, as the local peer runs unconfined, so what limits the
    traffic is the measured pod's path and quota, never the peer's; and it takes nothing from
    the node's allocatable, so the measured pod beside it schedules as it would alone."""
    spec = manifest["spec"]
    if runtime_class is None:
        spec.pop("runtimeClassName", None)
    spec["nodeSelector"] = {"kubernetes.io/hostname": hostname}
    meta = manifest["metadata"]["labels"]
    meta[manifests.RUNTIME] = runtime_class or PEER_RUNTIMES["default"]
    meta[manifests.ROLE] = "peer"
    meta[PATH_LABEL] = path
    container = spec["containers"][0]
    container.pop("resources", None)
    if port is not None:
        # startup, not readiness: it stops once passed, so no probe connection ever lands on
        # a server that is serving a measurement.
        container["startupProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1,
                                     "failureThreshold": max(1, int(ready_s))}
    return own_ip_env(manifest)


def _usable(node: dict[str, Any], wanted: dict[str, str]) -> str | None:
    """Why a peer cannot go on ``node``, or None when it can."""
    conditions = (node.get("status") or {}).get("conditions") or []
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return "not Ready"
    if (node.get("spec") or {}).get("unschedulable"):
        return "cordoned"
    if is_fake(node):
        return "a KWOK fake node (nothing runs there)"
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in REPELLING:
            return f"tainted {taint.get('key')}:{taint['effect']}"
    labels_ = node["metadata"].get("labels") or {}
    missing = [f"{k}={v}" for k, v in wanted.items() if labels_.get(k) != v]
    return f"lacks {missing[0]}, which the RuntimeClass asks for" if missing else None


def other_node(nodes: list[dict[str, Any]], measured: str, wanted: dict[str, str]
               ) -> tuple[dict[str, Any] | None, str]:
    """The node a cross-node peer goes on (the first usable one by name that is not
    ``measured``), and why there is none when there is none."""
    why = []
    for node in sorted(nodes, key=lambda n: str(n["metadata"]["name"])):
        name = str(node["metadata"]["name"])
        if name == measured:
            continue
        reason = _usable(node, wanted)
        if reason is None:
            return node, ""
        why.append(f"{name}: {reason}")
    return None, (f"not applicable: no node but {measured} can take a peer"
                  + (f" ({'; '.join(why)})" if why else " (the cluster has one node)"))


def hostname(node: dict[str, Any]) -> str:
    """What a pod's nodeSelector names a node by."""
    return str((node["metadata"].get("labels") or {}).get("kubernetes.io/hostname",
                                                          node["metadata"]["name"]))


@dataclass
class Peers:
    """The run's peer pods and how a net case runs against them."""

    apis: Apis
    #: KubernetesSettings.peer_runtime.
    mode: str
    #: The run's node: the measured pods' and the same-node peers'.
    node: dict[str, Any]
    watch: RunWatch
    #: The backend's live pods, by name: its cleanup deletes what is here.
    live: dict[str, PodRun]
    make_pod: MakePod
    #: The cross-node peers' node; None until paths() found one.
    cross: dict[str, Any] | None = None
    cross_reason: str = "not asked: paths() was not called"
    _servers: dict[tuple[Any, ...], PodRun] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)
    notes: list[str] = field(default_factory=list)

    def paths(self, selectors: dict[str, str]) -> tuple[str, ...]:
        """Same-node always; cross-node where another node can take the peer. ``selectors``:
        the node labels the peer's RuntimeClass needs (none under the node's default)."""
        try:
            listed = self.apis.core.list_node().items
        except ApiException as exc:
            raise PeerFailed(f"cannot list nodes for a cross-node peer: {api_message(exc)}"
                             ) from exc
        nodes = self.apis.api_client.sanitize_for_serialization(listed)
        wanted = selectors if self.mode == "measured" else {}
        self.cross, self.cross_reason = other_node(nodes, str(self.node["metadata"]["name"]),
                                                   wanted)
        return (SAME_NODE, CROSS_NODE) if self.cross is not None else (SAME_NODE,)

    def facts(self) -> dict[str, Any]:
        """run.json's ``net``: where the peers ran, and why a path was not measured."""
        cross: Any = (str(self.cross["metadata"]["name"]) if self.cross is not None
                      else self.cross_reason)
        return {"peer_runtime": PEER_RUNTIMES[self.mode], "net_path": NET_PATH,
                "nodes": {SAME_NODE: str(self.node["metadata"]["name"]), CROSS_NODE: cross},
                "peer_pods": sorted(run.name for run in self._servers.values()),
                "notes": self.notes}

    def _peer_node(self, path: str) -> dict[str, Any]:
        if path == SAME_NODE:
            return self.node
        if path == CROSS_NODE and self.cross is not None:
            return self.cross
        raise PeerFailed(f"no node for a {path} peer: {self.cross_reason}")

    def _peer_pod(self, name: str, runtime: str, argv: list[str], path: str,
                  port: int | None, ready_s: float) -> PodRun:
        run = self.make_pod(name, runtime, Case("net", "peer", argv), "peer", port)
        as_peer(run.manifest, runtime_class=runtime if self.mode == "measured" else None,
                hostname=hostname(self._peer_node(path)), path=path, port=port,
                ready_s=ready_s)
        return run

    def server(self, peer: Peer, path: str, runtime: str, timeout_s: float) -> str:
        """The pod IP of the server ``peer`` on ``path``, made and waited Ready the first
        time (again if it ended since); raises PeerFailed."""
        if len(peer.ports) != 1:
            raise PeerFailed(f"a peer pod waits on one port; this peer listens on "
                             f"{list(peer.ports)}")
        key = (peer.argv, path, runtime if self.mode == "measured" else None)
        run = self._servers.get(key)
        if run is not None:
            ip = _serving(run)
            if ip is not None:
                return ip
            self.notes.append(f"peer {run.name} was no longer Running; replaced")
            self._drop(run)
        run = self._peer_pod(f"sandbench-peer-{next(self._numbers):03d}", runtime,
                             fill(peer.argv, peer=OWN_IP, sandbox=""), path, peer.ports[0],
                             timeout_s)
        self._servers[key] = run
        self._start(run)
        events = self.watch.subscribe(run.name)
        try:
            progress = PodProgress(Execution())
            run.create(progress.execution)
            run.follow(events, progress, time.monotonic() + timeout_s, until_ready=True)
            if "ready" not in progress.seen:
                raise PeerFailed(f"peer {run.name} ended before it listened: {run.log()}")
        except (PodFailed, PeerFailed) as exc:
            self._servers.pop(key, None)
            self._drop(run)
            raise PeerFailed(f"peer {run.name} ({' '.join(peer.argv)}): {exc}") from exc
        finally:
            self.watch.unsubscribe(run.name)
        ip = run.pod_ip()
        if ip is None:
            raise PeerFailed(f"peer {run.name} is Ready but has no pod IP")
        return ip

    def _start(self, run: PodRun) -> None:
        self.live[run.name] = run

    def _drop(self, run: PodRun) -> None:
        run.delete()
        self.live.pop(run.name, None)

    def execute(self, runtime: str, case: Case, sandbox_id: str, timeout_s: float,
                sandbox_pod: Callable[[Case], PodRun], memory_mib: int) -> Execution:
        """One sandbox of a net case against its peer; never raises for what fails in the
        cluster (that is the execution's error). ``sandbox_pod`` makes the measured pod."""
        assert case.peer is not None
        path = case.peer_path or SAME_NODE
        execution = Execution(labels=labels(path, self.mode))
        deadline = time.monotonic() + timeout_s
        made: list[PodRun] = []
        try:
            peer_ip = (self.server(case.peer, path, runtime, timeout_s)
                       if case.peer.ports else "")
            run = sandbox_pod(dataclasses.replace(
                case, argv=fill(case.argv, peer=peer_ip, sandbox=OWN_IP)))
            own_ip_env(run.manifest)
            made.append(run)
            self._run(run, case, path, runtime, execution, deadline, made)
            status = run.status()
            execution.exit_code = exit_code(status)
            if terminated_reason(status) == "OOMKilled":
                execution.oom = f"memory limit {memory_mib} MiB, as the pod's"
            execution.stdout = run.log()
        except (PodFailed, PeerFailed) as exc:
            execution.error = str(exc)
            if made:
                execution.stdout = made[0].log()
        finally:
            for one in made:
                self.watch.unsubscribe(one.name)
                self._drop(one)
        return execution

    def _run(self, run: PodRun, case: Case, path: str, runtime: str, execution: Execution,
             deadline: float, made: list[PodRun]) -> None:
        """Create the measured pod and follow it to its end; for a client peer, start the
        client once the pod has an IP and keep what it printed."""
        assert case.peer is not None
        events = self.watch.subscribe(run.name)
        self._start(run)
        progress = PodProgress(execution)
        run.create(execution)
        if case.peer.ports:
            run.follow(events, progress, deadline, until_ready=False)
            return
        run.follow(events, progress, deadline, until_ready=True)
        if progress.finished:
            return  # ended before it served: its exit and log say why, no client to wait on
        sandbox_ip = run.pod_ip()
        if sandbox_ip is None:
            raise PeerFailed(f"pod {run.name} is Ready but has no pod IP")
        client = self._peer_pod(f"{run.name}-peer"[:63], runtime,
                                fill(case.peer.argv, peer="", sandbox=sandbox_ip), path, None,
                                0)
        made.append(client)
        client_events = self.watch.subscribe(client.name)
        self._start(client)
        client.create(Execution())
        # The client first: its end means the round trips are done (the echo then exits),
        # and a client that fails fails the case now, not at the echo's timeout.
        client.follow(client_events, PodProgress(Execution()), deadline, until_ready=False)
        execution.peer_stdout = client.log()
        code = exit_code(client.status())
        if code != 0:
            raise PeerFailed(f"the peer's client exited with {code}: "
                             f"{execution.peer_stdout.strip()[-300:]}")
        run.follow(events, progress, deadline, until_ready=False)


def _serving(run: PodRun) -> str | None:
    """The IP of a server peer still Running and Ready, else None."""
    pod = run.status()
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    if status.get("phase") == "Running" and ready and status.get("podIP"):
        return str(status["podIP"])
    return None
