#!/usr/bin/env bash
# Add KWOK fake nodes to the running test cluster (up.sh): the `kwok` controller (build-kwok.sh,
# v0.8.0) against its API server, and SANDBENCH_KWOK_NODES (default 100) fake nodes it keeps
# Ready, so the harness's fan-out can be driven at a scale this machine could not run.
#
# What is fake: a pod bound to one of these nodes runs nothing. kwok's pod stages (upstream's
# "fast" ones, from the same module version as the binary) write its status Running and Ready
# at once, and finish its deletion. sandbench recognises such a node by KWOK's own annotation,
# kwok.x-k8s.io/node=fake (backends/kubernetes/nodes.py), and records only what the API side
# did with its pods.
#
# kwok manages only the nodes carrying that annotation (--manage-nodes-with-annotation-selector),
# never the cluster's real node. The fake nodes carry no taint (the fan-out refuses tainted
# nodes), so they are selected explicitly: `--nodes sandbench.io/kwok=fake`. Left out of
# `--nodes all` and of the run's automatic node choice by the harness, so tests that pick a
# node themselves never land on one.
#
# kwok's pid goes into $DIR/pids ("kwok <pid>"); down.sh stops it before the API server. The
# fake nodes live only in this cluster's etcd, which up.sh starts afresh. Safe to run twice:
# a kwok still running is reused and the nodes are applied again.
#
# Prints progress, then "kwok: N fake nodes Ready" last.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR="${SANDBENCH_CLUSTER_DIR:-/var/tmp/sandbench-cluster}"
FAKE_NODES="${SANDBENCH_KWOK_NODES:-100}"
TIMEOUT="${SANDBENCH_KWOK_TIMEOUT:-120}"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
K8S_BIN="${SANDBENCH_K8S_BIN:-${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/k8s/$K8S_VERSION/bin}"
# What the harness and kwok both go by (nodes.py KWOK_ANNOTATION), and the selector a run uses.
ANNOTATION=kwok.x-k8s.io/node
LABEL=sandbench.io/kwok
PREFIX=kwok-node

t0=$(date +%s)
log() { echo "[kwok-up $(( $(date +%s) - t0 ))s] $*"; }
die() { echo "kwok-up.sh: $*" >&2; exit 1; }

[[ "$FAKE_NODES" =~ ^[0-9]+$ ]] && (( FAKE_NODES >= 1 && FAKE_NODES <= 4096 )) ||
    die "SANDBENCH_KWOK_NODES=$FAKE_NODES: give a whole number from 1 to 4096 (one /24 of pod addresses each)"
[[ -f "$DIR/admin.kubeconfig" && -f "$DIR/pids" && -d "$DIR/logs" ]] ||
    die "no running test cluster in $DIR (admin.kubeconfig, pids and logs/ expected: run up.sh first)"
# What up.sh actually used wins over our defaults.
# shellcheck source=/dev/null
[[ -f "$DIR/cluster.env" ]] && source "$DIR/cluster.env"
KUBECTL="$K8S_BIN/kubectl"
[[ -x "$KUBECTL" ]] || die "no kubectl at $KUBECTL (build-k8s.sh)"
export KUBECONFIG="$DIR/admin.kubeconfig"
k() { "$KUBECTL" --request-timeout=30s "$@"; }
k get --raw /readyz >/dev/null 2>&1 || die "the API server of $DIR does not answer /readyz"

BIN=$(bash "$HERE/build-kwok.sh" | tail -n 1)
[[ -x "$BIN/kwok" && -f "$BIN/../stages.yaml" ]] || die "build-kwok.sh left no kwok and stages in $BIN/.."
STAGES=$(cd "$BIN/.." && pwd)/stages.yaml

# ---------------------------------------------------------------- the controller
ours() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$DIR/"; }
pid=$(awk '$1 == "kwok" { p = $2 } END { if (p) print p }' "$DIR/pids")
if [[ -n "$pid" ]] && ours "$pid"; then
    log "kwok already running (pid $pid)"
else
    mkdir -p "$DIR/kwok"
    # Its own copy of the stages under $DIR, so its command line names $DIR (down.sh stops
    # only processes that do).
    cp -f "$STAGES" "$DIR/kwok/stages.yaml"
    # --node-ip: the address kwok writes into a fake node's status. The API server would dial
    # it for logs or exec of a fake pod (the harness never asks); on loopback, where nothing
    # of the cluster listens, so such a call fails here instead of leaving the machine.
    # --node-lease-duration-seconds: kwok renews each node's Lease, as a kubelet does, so the
    # node lifecycle controller keeps them Ready (kwokctl's default, with its lease stage).
    # setsid: its own session, so a Ctrl-C aimed at a test run does not stop it.
    setsid "$BIN/kwok" \
        --kubeconfig="$DIR/admin.kubeconfig" \
        --config="$DIR/kwok/stages.yaml" \
        --manage-all-nodes=false \
        --manage-nodes-with-annotation-selector="$ANNOTATION=fake" \
        --node-ip=127.0.0.2 \
        --node-lease-duration-seconds=40 \
        >"$DIR/logs/kwok.log" 2>&1 </dev/null &
    pid=$!
    echo "kwok $pid" >>"$DIR/pids"
    log "started kwok (pid $pid), log $DIR/logs/kwok.log"
fi

# ---------------------------------------------------------------- the fake nodes
# Capacity for far more than the 10 pods of a burst each (requests equal limits: 1 CPU and
# 1 GiB a pod by default). A node's status is taken as given on create; kwok fills in the rest
# (conditions, addresses, nodeInfo). Pod addresses: a /24 per node from 10.240.0.0/12, which
# only ever appear in pod status (nothing routes or dials them).
manifest() {
    local i name cidr
    for ((i = 0; i < FAKE_NODES; i++)); do
        name="$PREFIX-$i"
        cidr="10.$((240 + i / 256)).$((i % 256)).0/24"
        cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    $ANNOTATION: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    $LABEL: fake
    type: kwok
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
spec:
  podCIDR: $cidr
  podCIDRs: [$cidr]
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
EOF
    done
}
manifest | k apply -f - >>"$DIR/logs/kwok-nodes.log" 2>&1 ||
    die "creating the fake nodes failed (see $DIR/logs/kwok-nodes.log)"
log "applied $FAKE_NODES fake nodes ($PREFIX-0 .. $PREFIX-$((FAKE_NODES - 1))), labelled $LABEL=fake, type=kwok"

# Ready and untainted: a new node carries node.kubernetes.io/not-ready:NoSchedule until the node
# lifecycle controller has seen it Ready, and the fan-out (rightly) leaves tainted nodes out.
ready_count() {
    k get nodes -l "$LABEL=fake" \
        -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{.spec.taints}{"\n"}{end}' |
        grep -cx 'True ' || true
}
deadline=$(( $(date +%s) + TIMEOUT ))
last=-1
while :; do
    ready=$(ready_count)
    if [[ "$ready" != "$last" ]]; then log "$ready of $FAKE_NODES fake nodes Ready and untainted"; last=$ready; fi
    (( ready >= FAKE_NODES )) && break
    kill -0 "$pid" 2>/dev/null || die "kwok exited (see $DIR/logs/kwok.log)"
    (( $(date +%s) < deadline )) ||
        die "only $ready of $FAKE_NODES fake nodes Ready and untainted after ${TIMEOUT}s (see $DIR/logs/kwok.log)"
    sleep 0.5
done
echo "kwok: $FAKE_NODES fake nodes Ready"
