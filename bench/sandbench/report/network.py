"""What the report's Network section says before its charts: which path the net workload's
traffic took, what ran at the other end, and which runtimes put a network stack of their own
on that path.

All of it is read from the samples' labels (``net_path``, ``peer_runtime``, ``direction``,
``path``) and from run.json (each runtime's ``network_flags``; a cluster's ``net``, which says
where the peers ran and why a path was not measured), never assumed from runtime names.
"""

from __future__ import annotations

import pandas as pd

from sandbench.formats import RunMeta
from sandbench.report.labels import Runtimes

WORKLOAD = "net"
#: What each path label means, in words.
PATHS = {"veth": "a veth pair between two network namespaces the run made, on this host, with "
                 "no default route in either: nothing left the machine",
         "tap+bridge+veth": "the VM's virtio-net device on a tap, bridged in the sandbox's "
                            "namespace to the same veth pair (the guest holds the address)",
         "pod-network": "the cluster's pod network, pod to pod as the CNI connects them (on "
                        "sandbench's test cluster a Linux bridge with no default route: nothing "
                        "left the machine)"}
#: What each peer_runtime label means, where it is not a runtime's own name.
PEERS = {"node-default": "under the node's default handler (no runtimeClassName; runc on the "
                         "test cluster), the same peer for every runtime",
         "same-as-sandbox": "under the same RuntimeClass as the pod it talks to"}
#: What a cluster's ``path`` label means.
NODE_PATHS = {"same-node": "the peer pod on the measured pod's node",
              "cross-node": "the peer pod on another node"}
DIRECTIONS = {"sandbox_to_peer": "the sandbox sends: iperf3's client in the sandbox; for round "
                                 "trips, the sandbox sends each message and waits for the "
                                 "peer's echo, timed in the sandbox",
              "peer_to_sandbox": "the peer sends: iperf3 -R; for round trips, the echo runs in "
                                 "the sandbox and the peer times its messages to it"}


def network_notes(samples: pd.DataFrame, meta: RunMeta, runtimes: Runtimes) -> list[str]:
    """Sentences that open the Network section; none when the run has no net samples."""
    net = samples[samples["workload"] == WORKLOAD]
    if net.empty:
        return []
    notes = [_path_note(net, runtimes), *_node_path_notes(net, meta)]
    directions = sorted({str(labels.get("direction")) for labels in net["labels"]
                         if labels and labels.get("direction")})
    notes.append("Directions: " + "; ".join(f"{d}: {DIRECTIONS.get(d, d)}"
                                            for d in directions)
                 + ". Round trips are of one small message each way over one TCP connection, "
                   "TCP_NODELAY on both ends.")
    for name in runtimes.order:
        flags = meta.runtime_facts(name).get("network_flags")
        if flags and name in set(net["runtime"]):
            notes.append(f"{runtimes.name(name)} ran its sandboxes on this path with "
                         f"{' '.join(flags)}: its own network stack on the veth, not the host "
                         "kernel's.")
    return notes


def _path_note(net: pd.DataFrame, runtimes: Runtimes) -> str:
    """Which path and which peer, by runtime when runtimes differ."""
    by_path: dict[tuple[str, str], list[str]] = {}
    for runtime, labels in zip(net["runtime"], net["labels"]):
        labels = labels or {}
        key = (str(labels.get("net_path", "unknown")), str(labels.get("peer_runtime", "unknown")))
        names = by_path.setdefault(key, [])
        if runtime not in names:
            names.append(runtime)
    parts = []
    for (path, peer), names in by_path.items():
        who = "" if len(by_path) == 1 else f" (under {', '.join(runtimes.name(n) for n in names)})"
        running = PEERS.get(peer, f"running {peer}")
        parts.append(f"over {PATHS.get(path, path)} (net_path={path}), to a peer {running} "
                     f"(peer_runtime={peer}){who}")
    return "Each sandbox reached its peer " + "; ".join(parts) + "."


def _node_path_notes(net: pd.DataFrame, meta: RunMeta) -> list[str]:
    """On a cluster: which node paths were measured, and why one was not (a single-node
    cluster has no cross-node path: not applicable, so no sample, never a failed one)."""
    measured = sorted({str(labels["path"]) for labels in net["labels"]
                       if labels and labels.get("path")})
    facts = meta.environment.get("net")
    if not measured and not isinstance(facts, dict):
        return []
    notes = []
    if measured:
        notes.append("Paths: " + "; ".join(f"{p}: {NODE_PATHS.get(p, p)}" for p in measured)
                     + ".")
    nodes = facts.get("nodes") if isinstance(facts, dict) else None
    if isinstance(nodes, dict):
        for path, where in nodes.items():
            if path not in measured and isinstance(where, str):
                notes.append(f"{path}: {where}; no {path} sample was taken.")
    return notes
