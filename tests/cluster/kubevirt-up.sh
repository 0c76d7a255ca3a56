#!/usr/bin/env bash
# Deploy KubeVirt v1.7.0 on the running test cluster (up.sh, started with SANDBENCH_KUBEVIRT=1)
# the way users do: virt-operator's manifest rendered from the release's own templates, then a
# KubeVirt CR with useEmulation (no working KVM here: QEMU runs under TCG). Images are the ones
# kubevirt_images.py built, imported into the test containerd (no registry, pull policy Never).
#
# Prints "KubeVirt v1.7.0 ready (emulation)" when the CR reports Deployed. Tear-down is down.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=go-module.sh
source "$HERE/go-module.sh"
DIR="${SANDBENCH_CLUSTER_DIR:-/var/tmp/sandbench-cluster}"
CACHE="${SANDBENCH_CACHE:-$HOME/.cache/sandbench}"
KV_VERSION=v1.7.0
KV="$CACHE/kubevirt/$KV_VERSION"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
TIMEOUT="${SANDBENCH_KUBEVIRT_TIMEOUT:-900}"
PREFIX=localhost/sandbench/kubevirt

t0=$(date +%s)
log() { echo "[kubevirt-up $(( $(date +%s) - t0 ))s] $*"; }
die() { echo "kubevirt-up.sh: $*" >&2; exit 1; }

[[ -f "$DIR/cluster.env" ]] || die "no test cluster in $DIR (run up.sh with SANDBENCH_KUBEVIRT=1 first)"
# shellcheck source=/dev/null
source "$DIR/cluster.env"
[[ "${KUBEVIRT:-}" == 1 ]] || die "the cluster in $DIR was not started with SANDBENCH_KUBEVIRT=1"
[[ "${NODE_NS:-}" == 1 ]] || die "the cluster in $DIR has no node namespace (an older up.sh?); run down.sh and up.sh again"
KUBECTL="$K8S_BIN/kubectl"
export KUBECONFIG="$DIR/admin.kubeconfig"
[[ -f "$KV/bin/.complete" && -f "$KV/images/images.json" ]] ||
    die "KubeVirt $KV_VERSION is not built in $KV (make kubevirt)"

# ---------------------------------------------------------------- the API from pods
# KubeVirt's components are in-cluster clients: they dial the "kubernetes" Service,
# $SERVICE_IP:443. There is no kube-proxy and the API server listens on 127.0.0.1 only, so a
# DNAT rule on our bridge sends that one address and port to 127.0.0.1:6443; route_localnet
# (on this bridge only) lets the kernel deliver it. Nothing leaves the machine. The API
# server's certificate already names $SERVICE_IP. down.sh removes the rule.
SERVICE_IP=10.96.0.1
RULE=(PREROUTING -i "$BRIDGE" -d "$SERVICE_IP/32" -p tcp --dport 443 -m comment
      --comment "sandbench: in-cluster API" -j DNAT --to-destination 127.0.0.1:6443)
# The CNI bridge plugin takes over a bridge that already exists.
ip link show "$BRIDGE" >/dev/null 2>&1 || { ip link add "$BRIDGE" type bridge && ip link set "$BRIDGE" up; }
sysctl -qw "net.ipv4.conf.$BRIDGE.route_localnet=1"
iptables -w -t nat -C "${RULE[@]}" 2>/dev/null || iptables -w -t nat -I "${RULE[@]}"
echo "dnat-api" >>"$DIR/iptables.added"
log "pods reach the API server at $SERVICE_IP:443"

# ---------------------------------------------------------------- images
for archive in "$KV"/images/*.oci.tar; do
    ctr --address "$SOCK" -n k8s.io images import "$archive" >>"$DIR/logs/images.log" 2>&1 ||
        die "importing $archive failed (see $DIR/logs/images.log)"
done
log "imported $(ctr --address "$SOCK" -n k8s.io images ls -q | grep -c "^$PREFIX/") KubeVirt images"

# ---------------------------------------------------------------- manifests
# The release's templates, rendered as hack/build-manifests.sh does, by the built templator.
src=$(module_dir "kubevirt.io/kubevirt@$KV_VERSION")
[[ -d "$src/manifests/release" ]] || die "no module source for kubevirt.io/kubevirt@$KV_VERSION"
out="$DIR/kubevirt"
mkdir -p "$out"
render() { # template output
    (cd "$src" &&
     "$KV/bin/manifest-templator" --process-files --generated-manifests-dir=manifests/generated/ \
         --input-file="manifests/release/$1" >"$out/$1.stage1" &&
     "$KV/bin/manifest-templator" --process-vars --namespace=kubevirt \
         --container-prefix="$PREFIX" --container-tag="$KV_VERSION" --image-pull-policy=Never \
         --feature-gates= --verbosity=2 --kubevirt-logo-path=assets/kubevirt_logo.png \
         --input-file="$out/$1.stage1" >"$out/$2") 2>>"$DIR/logs/kubevirt-manifests.log" ||
        die "rendering $1 failed (see $DIR/logs/kubevirt-manifests.log)"
}
render kubevirt-operator.yaml.in operator.yaml
render kubevirt-cr.yaml.in cr.yaml
# No KVM that works: QEMU runs under TCG, and the launcher asks for no /dev/kvm.
sed -i 's/^    developerConfiguration:$/    developerConfiguration:\n      useEmulation: true/' "$out/cr.yaml"
grep -q 'useEmulation: true' "$out/cr.yaml" || die "could not set useEmulation in $out/cr.yaml"

# ---------------------------------------------------------------- operator, then the CR
# virt-operator (and the control-plane components it deploys) require a control-plane node, as
# kubeadm labels a single-node cluster's one node.
"$KUBECTL" label node --overwrite "$("$KUBECTL" get nodes -o jsonpath='{.items[0].metadata.name}')" \
    node-role.kubernetes.io/control-plane= >>"$DIR/logs/kubectl.log" 2>&1 ||
    die "labelling the node control-plane failed (see $DIR/logs/kubectl.log)"

"$KUBECTL" apply --server-side -f "$out/operator.yaml" >>"$DIR/logs/kubectl.log" 2>&1 ||
    die "applying the operator failed (see $DIR/logs/kubectl.log)"
# virt-handler reads /proc/1/root and enters /proc/1/ns/mnt. up.sh runs containerd and the
# kubelet in the node namespace, whose PID 1 (node-init) is the one a hostPID pod sees, so
# KubeVirt's defaults hold as on a kind node; no VIRT_IN_CONTAINER. (This machine's own PID 1
# refuses both even to root: KUBEVIRT-NOTES.md.)
log "virt-operator applied; waiting for it"
"$KUBECTL" -n kubevirt rollout status deployment/virt-operator --timeout="${TIMEOUT}s" ||
    die "virt-operator did not become available"
"$KUBECTL" apply -f "$out/cr.yaml" >>"$DIR/logs/kubectl.log" 2>&1 ||
    die "applying the KubeVirt CR failed (see $DIR/logs/kubectl.log)"
log "KubeVirt CR applied (useEmulation: true); waiting for the operator to deploy"
deadline=$(( $(date +%s) + TIMEOUT ))
last=
while :; do
    phase=$("$KUBECTL" -n kubevirt get kubevirt kubevirt -o jsonpath='{.status.phase}' 2>/dev/null || true)
    [[ "$phase" == Deployed ]] && break
    now=$("$KUBECTL" -n kubevirt get pods --no-headers 2>/dev/null | awk '{print $1 "=" $3}' | tr '\n' ' ')
    [[ "$now" != "$last" ]] && log "phase ${phase:-none}; pods: $now"
    last=$now
    (( $(date +%s) < deadline )) || die "KubeVirt not Deployed after ${TIMEOUT}s (phase ${phase:-none})"
    sleep 5
done
echo "KubeVirt $KV_VERSION ready (emulation)"
log "done"
