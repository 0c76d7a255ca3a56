#!/usr/bin/env bash
# Bring up a real single-node Kubernetes (etcd, kube-apiserver, controller-manager, scheduler,
# kubelet, a private containerd with runc, crun and gVisor's runsc) on 127.0.0.1 for sandbench's
# cluster tests.
#
# State (certs, configs, data, logs, pids) lives under
# ${SANDBENCH_CLUSTER_DIR:-/var/tmp/sandbench-cluster}; the admin kubeconfig is
# $DIR/admin.kubeconfig. Every daemon's PID is recorded in $DIR/pids so that down.sh can stop
# exactly what was started here and nothing else.
#
# The node namespace (SANDBENCH_NODE_NS=1; on by default with SANDBENCH_KUBEVIRT=1): containerd
# and the kubelet run in a PID and mount namespace of their own whose PID 1 is node-init.py, as
# a kind node's are (there PID 1 is systemd). hostPID pods then see that init as /proc/1, and
# its /proc/1/root and /proc/1/ns/mnt are readable; this machine's own PID 1 refuses them even
# to root, and KubeVirt's virt-handler needs them. The mount namespace is a private copy of
# the host's (so every mount containerd and the kubelet make stays in it, and goes with it),
# with / made rshared inside as kind does, which Bidirectional hostPath mounts need.
# etcd, the API server, the controllers and the registry stay in the host's namespaces.
#
# Inputs (env): SANDBENCH_CACHE / SANDBENCH_K8S_BIN (where build-k8s.sh put the binaries),
# SANDBENCH_GVISOR_BIN (where build-gvisor.sh put runsc and its shim),
# SANDBENCH_RUNSC_DEBUG=1 (runsc debug logs, with their "Timeline" lines, in $DIR/logs/runsc/),
# SANDBENCH_IMAGES (space-separated OCI archives to import), SANDBENCH_POD_CIDR,
# SANDBENCH_REGISTRY_PORT (the registry's port on 127.0.0.1, default 5000),
# SANDBENCH_KEEP_ON_FAILURE=1 (leave a failed bring-up running for debugging),
# SANDBENCH_NODE_NS=0|1 (containerd and the kubelet in the node namespace, see above),
# SANDBENCH_NODES=N (1 to 8, default 1: more nodes, see below).
#
# More nodes (SANDBENCH_NODES=N > 1): nodes 2..N are each a kubelet and a containerd of their own
# on this machine, in a network, PID and mount namespace of their own (node-init.py as PID 1,
# as above), so that two kubelets never share a containerd (each garbage-collects what it does
# not know), a port, a cgroup root or a pod subnet. Node k is named by its address, 10.235.k.2
# (as the first is named 127.0.0.1: the API server reaches a kubelet by its node's Hostname
# address, and these names need no DNS), labelled sandbench.io/node=node<k>, on a veth pair
# whose host end (sbnode<k>, 10.235.k.1) routes to its pods (10.234.<k-1>.0/24). Its kubelet
# reaches the API server at 10.235.k.1:6443, which one DNAT rule sends to 127.0.0.1:6443;
# cgroup root /sandbench-node<k>; root, containerd state and pod logs under nodes/node<k>/.
# Pods on every node route 10.234.0.0/16 (the other nodes' pods) through their bridge and no
# more; nothing is routed off the machine. The first node is unchanged.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
CACHE="${SANDBENCH_CACHE:-$HOME/.cache/sandbench}"
K8S_BIN="${SANDBENCH_K8S_BIN:-$CACHE/k8s/$K8S_VERSION/bin}"
DIR="${SANDBENCH_CLUSTER_DIR:-/var/tmp/sandbench-cluster}"
POD_CIDR="${SANDBENCH_POD_CIDR:-10.234.0.0/24}"
BRIDGE="${SANDBENCH_BRIDGE:-sandbench0}"
# etcd built by build-etcd.sh (3.6.4); Debian's 3.4.23 breaks 1.34's watches (see there).
ETCD="${SANDBENCH_ETCD:-${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/etcd/v3.6.4/bin/etcd}"
# runsc and containerd-shim-runsc-v1, built by build-gvisor.sh (same default version).
GVISOR_VERSION="${GVISOR_VERSION:-v0.0.0-20260905035102-160fafc42237}"
GVISOR_BIN="${SANDBENCH_GVISOR_BIN:-$CACHE/gvisor/$GVISOR_VERSION/bin}"
PAUSE_IMAGE="localhost/sandbench/pause:1"
NODE=127.0.0.1
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1 # first address of SERVICE_CIDR: the "kubernetes" Service
API=https://127.0.0.1:6443
# A registry (Debian's docker-registry, Distribution 2.8) for the image-pull tests, when installed.
REGISTRY_BIN=/usr/bin/docker-registry
REGISTRY_PORT="${SANDBENCH_REGISTRY_PORT:-5000}"
REGISTRY="127.0.0.1:$REGISTRY_PORT"
PORTS=(2379 2380 6443 10248 10250 10257 10259)
[[ -x "$REGISTRY_BIN" ]] && PORTS+=("$REGISTRY_PORT")
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
         kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward)

t0=$(date +%s%N)
elapsed() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }
log() { echo "[up $(elapsed)] $*"; }
die() { echo "up.sh: $*" >&2; exit 1; }
# Exit 3: refused before starting anything, e.g. another cluster is up in $DIR. Whatever is
# there is not ours, so callers (run-tests.sh) must not run down.sh after it.
refuse() { echo "up.sh: $*" >&2; exit 3; }

# ---------------------------------------------------------------- preflight
[[ $EUID -eq 0 ]] || refuse "must run as root (containerd, kubelet, CNI need it)"
[[ "$DIR" = /* && "$DIR" != / ]] || refuse "SANDBENCH_CLUSTER_DIR must be an absolute path other than /"
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
    [[ -x "$K8S_BIN/$b" ]] || refuse "$K8S_BIN/$b missing; run tests/cluster/build-k8s.sh first"
done
for b in runsc containerd-shim-runsc-v1; do
    [[ -x "$GVISOR_BIN/$b" ]] || refuse "$GVISOR_BIN/$b missing; run tests/cluster/build-gvisor.sh first"
done
for b in "$ETCD" /usr/bin/containerd /usr/bin/ctr /usr/sbin/runc /usr/bin/crun /usr/lib/cni/bridge \
         /usr/lib/cni/host-local /usr/lib/cni/loopback openssl curl; do
    command -v "$b" >/dev/null || refuse "$b not found"
done
KUBECTL="$K8S_BIN/kubectl"
NODE_NS="${SANDBENCH_NODE_NS:-${SANDBENCH_KUBEVIRT:-0}}"
[[ "$NODE_NS" == 0 || "$NODE_NS" == 1 ]] || refuse "SANDBENCH_NODE_NS must be 0 or 1"
# virt-handler reads /proc/1/root and enters /proc/1/ns/mnt: without the node namespace that is
# this machine's PID 1, which refuses both (KUBEVIRT-NOTES.md).
[[ "${SANDBENCH_KUBEVIRT:-0}" != 1 || "$NODE_NS" == 1 ]] ||
    refuse "SANDBENCH_KUBEVIRT=1 needs the node namespace (SANDBENCH_NODE_NS=1)"
NODES="${SANDBENCH_NODES:-1}"
[[ "$NODES" =~ ^[1-8]$ ]] || refuse "SANDBENCH_NODES must be a whole number from 1 to 8 (got '$NODES')"
EXTRA=() # the numbers of the nodes after the first
for ((k = 2; k <= NODES; k++)); do EXTRA+=("$k"); done
if ((NODES > 1)); then
    [[ "${SANDBENCH_KUBEVIRT:-0}" != 1 ]] ||
        refuse "SANDBENCH_KUBEVIRT=1 runs on one node; leave SANDBENCH_NODES unset with it"
    [[ "$POD_CIDR" == 10.234.0.0/24 ]] ||
        refuse "SANDBENCH_NODES=$NODES needs the default SANDBENCH_POD_CIDR 10.234.0.0/24 (the other nodes take 10.234.1.0/24 and up), not $POD_CIDR"
    for b in iptables sysctl; do
        command -v "$b" >/dev/null || refuse "$b not found (more nodes need it)"
    done
fi
if [[ "$NODE_NS" == 1 ]] || ((NODES > 1)); then
    for b in unshare nsenter /usr/bin/python3; do
        command -v "$b" >/dev/null || refuse "$b not found (the node namespace needs it)"
    done
fi
xname() { echo "10.235.$1.2"; }      # node k's name and address
xgateway() { echo "10.235.$1.1"; }   # the host's end of its veth, where it finds the API server
xcidr() { echo "10.234.$(($1 - 1)).0/24"; }
xdir() { echo "$DIR/nodes/node$1"; }

# A recorded PID only counts as ours if its command line still names our state dir; that
# guards against PID reuse after a reboot or a crash.
ours() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$DIR/"; }

if [[ -f "$DIR/pids" ]]; then
    while read -r name pid; do
        [[ -n "${pid:-}" ]] || continue
        if ours "$pid"; then
            refuse "a cluster is already up in $DIR ($name pid $pid is alive); run tests/cluster/down.sh first"
        fi
    done <"$DIR/pids"
fi
if awk -v d="$DIR" 'index($5, d "/") == 1 || $5 == d { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    refuse "mounts remain under $DIR from an earlier run; run tests/cluster/down.sh first"
fi
if ip link show "$BRIDGE" >/dev/null 2>&1; then
    refuse "bridge $BRIDGE already exists (earlier run not torn down?); run tests/cluster/down.sh first"
fi
for k in "${EXTRA[@]}"; do
    if ip link show "sbnode$k" >/dev/null 2>&1; then
        refuse "link sbnode$k already exists (earlier run not torn down?); run tests/cluster/down.sh first"
    fi
done
for p in "${PORTS[@]}"; do
    if [[ -n "$(ss -Hltn "sport = :$p")" ]]; then
        refuse "TCP port $p is already in use on this machine; cannot start the cluster"
    fi
done

# Start from a clean directory each time, but never wipe something that is not ours.
if [[ -e "$DIR" ]]; then
    if [[ -f "$DIR/.sandbench-cluster" ]]; then
        rm -rf "$DIR"
    elif [[ -n "$(ls -A "$DIR")" ]]; then
        refuse "$DIR exists, is not empty and is not a sandbench cluster dir; refusing to wipe it"
    fi
fi
mkdir -p "$DIR"/{pki,logs,kubelet,kubelet/pki,pod-logs,containerd,cni/net.d,cni/ipam,images,kcm} \
         "$DIR"/{scheduler,apiserver,registry}
chmod 700 "$DIR"
touch "$DIR/.sandbench-cluster" "$DIR/pids"
SOCK="$DIR/containerd/containerd.sock"
# SANDBENCH_KUBEVIRT=1 (kubevirt-up.sh deploys KubeVirt on this cluster): virt-handler mounts
# the kubelet's pods from the hard-coded /var/lib/kubelet, so the kubelet keeps its root there.
KUBELET_ROOT="$DIR/kubelet"
if [[ "${SANDBENCH_KUBEVIRT:-0}" == 1 ]]; then
    KUBELET_ROOT=/var/lib/kubelet
    [[ -z "$(ls -A /var/lib/kubelet 2>/dev/null | grep -vx device-plugins)" ]] ||
        refuse "/var/lib/kubelet is not empty (another kubelet's?); SANDBENCH_KUBEVIRT=1 needs it"
fi

# down.sh reads this so it tears down exactly what this run set up.
cat >"$DIR/cluster.env" <<EOF
DIR='$DIR'
SOCK='$SOCK'
BRIDGE='$BRIDGE'
POD_CIDR='$POD_CIDR'
K8S_BIN='$K8S_BIN'
GVISOR_BIN='$GVISOR_BIN'
KUBEVIRT='${SANDBENCH_KUBEVIRT:-0}'
KUBELET_ROOT='$KUBELET_ROOT'
NODE_NS='$NODE_NS'
NODES='$NODES'
EOF

# ---------------------------------------------------------------- failure handling
ok=0
on_exit() {
    local rc=$?
    [[ $ok -eq 1 ]] && return 0
    echo "up.sh: bring-up FAILED (rc=$rc) after $(elapsed); last lines of each log:" >&2
    for f in "$DIR"/logs/*.log; do
        [[ -f "$f" ]] || continue
        echo "---- $f" >&2
        tail -n 12 "$f" | cut -c1-400 >&2
    done
    if [[ "${SANDBENCH_KEEP_ON_FAILURE:-0}" != 1 ]]; then
        echo "up.sh: tearing down the partial cluster (SANDBENCH_KEEP_ON_FAILURE=1 keeps it)" >&2
        bash "$HERE/down.sh" >&2 || true
    fi
    exit "$rc"
}
trap on_exit EXIT

# setsid: daemons get their own session, so a Ctrl-C aimed at the test run does not kill them
# mid-write; down.sh stops them in order. setsid does not fork here (we are not a process
# group leader), so $! is the daemon's own PID.
start() {
    local name=$1; shift
    setsid "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
    local pid=$!
    echo "$name $pid" >>"$DIR/pids"
    log "started $name (pid $pid)"
}

# The first child of a process (once its command line names $2, if given): how a daemon
# started through nsenter, or node-init started through unshare, is found. Prints its PID in
# the host's PID namespace, which is what $DIR/pids holds and down.sh signals.
child_of() {
    local parent=$1 want=${2:-} c i
    for ((i = 0; i < 200; i++)); do
        c=$(awk '{ print $1 }' "/proc/$parent/task/$parent/children" 2>/dev/null || true)
        if [[ -n "$c" ]] && { [[ -z "$want" ]] ||
                tr '\0' ' ' 2>/dev/null <"/proc/$c/cmdline" | grep -qF -- "$want"; }; then
            echo "$c"
            return 0
        fi
        kill -0 "$parent" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# Run a command in the node namespace (both: a process in the node's mount namespace but not
# its PID namespace finds no /proc/self there).
NODE_INIT=
node() { nsenter --target "$NODE_INIT" --pid --mount -- "$@"; }

# Like start, inside the node namespace when there is one. nsenter forks the daemon (a PID
# namespace applies to children only) and waits for it; the daemon is recorded, not nsenter,
# and nsenter exits when it does.
start_node() {
    local name=$1; shift
    if [[ -z "$NODE_INIT" ]]; then start "$name" "$@"; return; fi
    start_in "$name" "$NODE_INIT" --pid --mount -- "$@"
}
# start_in NAME INIT-PID NSENTER-FLAGS... -- COMMAND...: a daemon in the namespaces of INIT-PID.
start_in() {
    local name=$1 init=$2 flags=(); shift 2
    while [[ $1 != -- ]]; do flags+=("$1"); shift; done
    shift
    setsid nsenter --target "$init" "${flags[@]}" -- "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
    local outer=$! pid
    pid=$(child_of "$outer") || die "$name did not start in its node's namespaces (see $DIR/logs/$name.log)"
    echo "$name $pid" >>"$DIR/pids"
    log "started $name (pid $pid, in its node's namespaces)"
}
# Node k's namespaces (PID, mount, network), by its init's PID.
declare -A XINIT=()
xnode() { local k=$1; shift; nsenter --target "${XINIT[$k]}" --pid --mount --net -- "$@"; }

wait_for() { # description timeout-seconds logname command...
    local what=$1 timeout=$2 logname=$3; shift 3
    local deadline=$(( $(date +%s) + timeout ))
    until "$@" >/dev/null 2>&1; do
        if [[ -n "$logname" ]]; then
            local pid
            pid=$(awk -v n="$logname" '$1 == n { print $2 }' "$DIR/pids")
            if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
                die "$logname exited while waiting for $what (see $DIR/logs/$logname.log)"
            fi
        fi
        (( $(date +%s) < deadline )) || die "timed out after ${timeout}s waiting for $what"
        sleep 0.2
    done
    log "$what"
}

# ---------------------------------------------------------------- host prerequisites
# crun (1.8) refuses to run on this hybrid cgroup host while a controller is only available on
# the unified hierarchy (hugetlb here); giving it a v1 mount moves it off cgroup2.
if [[ -r /sys/fs/cgroup/unified/cgroup.controllers ]]; then
    for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
        if ! findmnt -rn -t cgroup -O "$c" >/dev/null 2>&1; then
            mkdir -p "/sys/fs/cgroup/$c"
            mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" ||
                die "could not mount cgroup v1 controller $c (needed by crun)"
            log "mounted cgroup v1 $c controller at /sys/fs/cgroup/$c (crun needs cgroup2 to list none)"
        fi
    done
fi

# Host paths that the kubelet (device-plugin socket, hard-coded in 1.34), containerd (shim
# sockets) and libcni (result cache) create outside our state dir; down.sh removes the ones
# that did not exist before, if they are empty once our files are gone.
for d in /var/lib/kubelet /run/containerd /var/lib/cni; do
    [[ -e "$d" ]] || echo "$d"
done >"$DIR/host-dirs-created"

# The kubelet rewrites a few kernel sysctls (panic_on_oops=1, overcommit...) and the bridge
# plugin turns on ip_forward; remember the originals so down.sh can put them back.
for s in "${SYSCTLS[@]}"; do
    v=$(sysctl -n "$s" 2>/dev/null) && echo "$s=$v"
done >"$DIR/sysctl.orig"

# ---------------------------------------------------------------- the node namespace
# After the host prerequisites above, so that the copy of the host's mounts has the cgroup
# hierarchies. unshare forks node-init as PID 1 of a new PID namespace, in a new mount
# namespace that is a private copy of the host's, with a /proc of its own (--mount-proc);
# --kill-child ends it if unshare itself is killed. node-init's command line names $DIR/, so
# `ours` recognises it. Inside, / becomes rshared (kind does the same: Bidirectional hostPath
# mounts need a shared mount; nothing of it reaches the host, whose / stays private), and every
# mount that is not /, /proc, /sys or /dev is dropped from the copy (lazily, in the copy only):
# a copy of, say, another test's tmpfs would otherwise keep that mount alive after its owner
# unmounts it on the host, until down.sh.
# Drops every mount copied from the host but /, /proc, /sys and /dev (run inside a node's
# mount namespace; see above).
DROP_COPIES='
        awk "{ print \$5 }" /proc/self/mountinfo | sort -r | while read -r m; do
            m=$(printf "%b" "$m")
            case "$m" in /|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
            if umount -l "$m"; then echo "node namespace: dropped the copy of $m"
            else echo "node namespace: could not drop the copy of $m"; fi
        done
        [[ "$(readlink /proc/1/root)" == / ]]'
if [[ "$NODE_NS" == 1 ]]; then
    setsid unshare --pid --fork --kill-child --mount --propagation private --mount-proc -- \
        /usr/bin/python3 "$HERE/node-init.py" "$DIR/" >"$DIR/logs/node-init.log" 2>&1 </dev/null &
    outer=$!
    # Recorded at once: killed before node-init is found and recorded, up.sh would otherwise
    # leave it for good. down.sh stops it; --kill-child then ends node-init, and with it the node.
    echo "unshare $outer" >>"$DIR/pids"
    NODE_INIT=$(child_of "$outer" node-init.py) ||
        die "node-init did not start (see $DIR/logs/node-init.log)"
    echo "node-init $NODE_INIT" >>"$DIR/pids"
    # down.sh waits until no process is left in these two.
    echo "$(readlink "/proc/$NODE_INIT/ns/pid") $(readlink "/proc/$NODE_INIT/ns/mnt")" >"$DIR/node-ns"
    node /bin/bash -c "set -eu; mount --make-rshared /; $DROP_COPIES" \
        >>"$DIR/logs/node-init.log" 2>&1 || die "setting up the node namespace failed (see $DIR/logs/node-init.log)"
    log "node namespace: node-init is pid $NODE_INIT ($(cat "$DIR/node-ns")); / is rshared in it"
fi

# ---------------------------------------------------------------- the other nodes' namespaces
# Node k (SANDBENCH_NODES, see the top): node-init as PID 1 of a new PID, mount and network
# namespace; a veth pair to the host (sbnode<k> here, eth0 there); inside, tmpfs over the host
# paths a kubelet and a containerd use whatever they are told (the device-plugin socket dir
# under /var/lib/kubelet, libcni's cache in /var/lib/cni, shim sockets in /run/containerd), so
# that nothing of one node's is seen by another. down.sh stops node-init; the kernel then ends
# everything in the node, its mounts, its network namespace and the veth with it.
if ((NODES > 1)); then
    # The paths to hide must exist; host-dirs-created (above) lists the ones made here.
    mkdir -p /var/lib/kubelet /var/lib/cni /run/containerd
    # The kubelets' cgroup roots (the first node's is /), which a kubelet wants to exist.
    : >"$DIR/cgroups-created"
    for k in "${EXTRA[@]}"; do
        for h in $(findmnt -rn -t cgroup -o TARGET); do
            [[ -d "$h/sandbench-node$k" ]] && continue
            mkdir "$h/sandbench-node$k" && echo "$h/sandbench-node$k" >>"$DIR/cgroups-created"
            if [[ -f "$h/cpuset.cpus" ]]; then # v1 cpuset: a new group starts with no CPUs
                cat "$h/cpuset.cpus" >"$h/sandbench-node$k/cpuset.cpus"
                cat "$h/cpuset.mems" >"$h/sandbench-node$k/cpuset.mems"
            fi
        done
    done
fi
for k in "${EXTRA[@]}"; do
    ndir=$(xdir "$k")
    mkdir -p "$ndir"/{containerd,kubelet/pki,pod-logs,cni/net.d,cni/ipam,logs/runsc}
    setsid unshare --pid --fork --kill-child --mount --propagation private --mount-proc --net -- \
        /usr/bin/python3 "$HERE/node-init.py" "$ndir/" >"$DIR/logs/node-init-node$k.log" 2>&1 </dev/null &
    outer=$!
    echo "unshare-node$k $outer" >>"$DIR/pids" # at once, as for the first node (above)
    XINIT[$k]=$(child_of "$outer" node-init.py) ||
        die "node $k's node-init did not start (see $DIR/logs/node-init-node$k.log)"
    echo "node-init-node$k ${XINIT[$k]}" >>"$DIR/pids"
    # down.sh waits until no process is left in them.
    echo "node$k $(readlink "/proc/${XINIT[$k]}/ns/pid") $(readlink "/proc/${XINIT[$k]}/ns/mnt")" >>"$DIR/nodes-ns"
    ip link add "sbnode$k" type veth peer name eth0 netns "${XINIT[$k]}" ||
        die "could not make node $k's veth pair"
    ip addr add "$(xgateway "$k")/24" dev "sbnode$k"
    ip link set "sbnode$k" up
    # Lets the DNAT to 127.0.0.1 below route packets that came in on this veth.
    sysctl -qw "net.ipv4.conf.sbnode$k.route_localnet=1"
    ip route add "$(xcidr "$k")" via "$(xname "$k")" dev "sbnode$k"
    xnode "$k" /bin/bash -c "
        set -eu
        $DROP_COPIES
        for d in /var/lib/kubelet /var/lib/cni /run/containerd; do mkdir -p \$d; mount -t tmpfs -o mode=755 tmpfs \$d; done
        ip link set lo up
        ip addr add $(xname "$k")/24 dev eth0
        ip link set eth0 up
        ip route add 10.234.0.0/16 via $(xgateway "$k") dev eth0
        sysctl -qw net.ipv4.ip_forward=1
    " >>"$DIR/logs/node-init-node$k.log" 2>&1 ||
        die "setting up node $k's namespaces failed (see $DIR/logs/node-init-node$k.log)"
    log "node $k: node-init is pid ${XINIT[$k]}, address $(xname "$k") on sbnode$k, pods $(xcidr "$k")"
done

# ---------------------------------------------------------------- PKI and credentials
log "generating CA, certificates and tokens"
cd "$DIR/pki"
# The other nodes' kubelets reach the API server at their veth's host end.
EXTRA_SANS=""
for k in "${EXTRA[@]}"; do EXTRA_SANS+=",IP:$(xgateway "$k")"; done
umask 077
cat >openssl.cnf <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = sandbench-ca
[v3_ca]
# Explicit keyUsage: strict verifiers (Python 3.13+ VERIFY_X509_STRICT) reject a CA without it.
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_apiserver]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local$EXTRA_SANS
EOF
openssl req -x509 -new -nodes -newkey rsa:2048 -keyout ca.key -out ca.crt -days 3650 \
    -config openssl.cnf -extensions v3_ca 2>/dev/null
openssl req -new -nodes -newkey rsa:2048 -keyout apiserver.key -out apiserver.csr \
    -subj "/CN=kube-apiserver" 2>/dev/null
openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days 365 -extfile openssl.cnf -extensions v3_apiserver -out apiserver.crt 2>/dev/null
# KubeVirt's virt-api is an aggregated API server: it reads the front proxy's CA from the
# extension-apiserver-authentication ConfigMap, which the API server fills in only when it has
# a front-proxy CA and client certificate.
FRONT_PROXY=()
if [[ "${SANDBENCH_KUBEVIRT:-0}" == 1 ]]; then
    cat >>openssl.cnf <<EOF
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
EOF
    openssl req -x509 -new -nodes -newkey rsa:2048 -keyout front-proxy-ca.key \
        -out front-proxy-ca.crt -days 3650 -subj "/CN=sandbench-front-proxy-ca" \
        -config openssl.cnf -extensions v3_ca 2>/dev/null
    openssl req -new -nodes -newkey rsa:2048 -keyout front-proxy-client.key \
        -out front-proxy-client.csr -subj "/CN=front-proxy-client" 2>/dev/null
    openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key \
        -set_serial "0x$(openssl rand -hex 16)" -days 365 -extfile openssl.cnf \
        -extensions v3_client -out front-proxy-client.crt 2>/dev/null
    FRONT_PROXY=(--requestheader-client-ca-file="$DIR/pki/front-proxy-ca.crt"
                 --requestheader-allowed-names=front-proxy-client
                 --requestheader-username-headers=X-Remote-User
                 --requestheader-group-headers=X-Remote-Group
                 --requestheader-extra-headers-prefix=X-Remote-Extra-
                 --proxy-client-cert-file="$DIR/pki/front-proxy-client.crt"
                 --proxy-client-key-file="$DIR/pki/front-proxy-client.key")
fi
# Service-account tokens are mandatory in 1.34 even though nothing here mounts them.
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
umask 022

tok() { openssl rand -hex 16; }
ADMIN_TOKEN=$(tok) KCM_TOKEN=$(tok) SCHED_TOKEN=$(tok) KUBELET_TOKEN=$(tok)
cat >tokens.csv <<EOF
$ADMIN_TOKEN,admin,admin,"system:masters"
$KCM_TOKEN,system:kube-controller-manager,system:kube-controller-manager
$SCHED_TOKEN,system:kube-scheduler,system:kube-scheduler
$KUBELET_TOKEN,system:node:$NODE,system:node:$NODE,"system:nodes"
EOF
declare -A XTOKEN=()
for k in "${EXTRA[@]}"; do
    XTOKEN[$k]=$(tok)
    echo "${XTOKEN[$k]},system:node:$(xname "$k"),system:node:$(xname "$k"),\"system:nodes\"" >>tokens.csv
done
chmod 600 tokens.csv

CA_DATA=$(base64 -w0 ca.crt)
kubeconfig() { # file user token [server]
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sandbench
  cluster:
    server: ${4:-$API}
    certificate-authority-data: $CA_DATA
users:
- name: $2
  user:
    token: $3
contexts:
- name: sandbench
  context:
    cluster: sandbench
    user: $2
current-context: sandbench
EOF
    chmod 600 "$1"
}
kubeconfig "$DIR/admin.kubeconfig" admin "$ADMIN_TOKEN"
kubeconfig "$DIR/kcm/kubeconfig" system:kube-controller-manager "$KCM_TOKEN"
kubeconfig "$DIR/scheduler/kubeconfig" system:kube-scheduler "$SCHED_TOKEN"
kubeconfig "$DIR/kubelet/kubeconfig" "system:node:$NODE" "$KUBELET_TOKEN"
for k in "${EXTRA[@]}"; do
    kubeconfig "$(xdir "$k")/kubelet/kubeconfig" "system:node:$(xname "$k")" "${XTOKEN[$k]}" \
        "https://$(xgateway "$k"):6443"
done
cd "$REPO"

# ---------------------------------------------------------------- etcd
# A fresh data dir every time, so each test run gets an empty cluster.
start etcd "$ETCD" --name sandbench --data-dir "$DIR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster sandbench=http://127.0.0.1:2380 --initial-cluster-state new \
    --snapshot-count 10000 --logger zap --log-outputs stderr --log-level warn

# ---------------------------------------------------------------- containerd (private)
# Nothing a pod does may leave the machine. Pods have no default route and no NET_ADMIN, but
# the bridge plugin enables ip_forward, so also drop anything forwarded out of the bridge
# (belt and braces against a privileged pod adding a route).
if iptables -w -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "sandbench: pods stay on this machine" -j DROP; then
    echo "forward-drop" >"$DIR/iptables.added"
else
    log "WARNING: could not add the iptables FORWARD drop rule; relying on the missing default route"
fi


# With KubeVirt, pods get one route besides their subnet: to the "kubernetes" Service's
# address, which kubevirt-up.sh DNATs to the API server (still no default route).
# With more nodes, every pod routes 10.234.0.0/16 (the other nodes' pods) through its bridge.
ROUTES=""
[[ "${SANDBENCH_KUBEVIRT:-0}" == 1 ]] && ROUTES=',
        "routes": [{ "dst": "'"$SERVICE_IP"'/32" }]'
((NODES > 1)) && ROUTES=',
        "routes": [{ "dst": "10.234.0.0/16" }]'
# node_files NODE-DIR SOCKET BRIDGE POD-CIDR ROUTES: a node's CNI config, containerd config,
# runsc shim options and wrapper, and registry hosts, under NODE-DIR ($DIR for the first node;
# the rest under nodes/). ROUTES: the ipam "routes" JSON member, with its leading comma, or "".
node_files() {
    local ndir=$1 nsock=$2 nbridge=$3 ncidr=$4 nroutes=$5
    mkdir -p "$ndir/containerd" "$ndir/cni/net.d" "$ndir/cni/ipam"
cat >"$ndir/cni/net.d/10-sandbench.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "sandbench",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$nbridge",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$ncidr" }]],
        "dataDir": "$ndir/cni/ipam"$nroutes
      }
    }
  ]
}
EOF

cat >"$ndir/containerd/config.toml" <<EOF
# Private containerd for sandbench's test cluster: nothing here may touch the host defaults
# (/var/lib/containerd, /run/containerd, /opt/containerd, /etc/cni).
version = 2
root = "$ndir/containerd/root"
state = "$ndir/containerd/state"
# Unused snapshotters only add startup noise. (The legacy v1 runtime cannot be disabled in
# 1.6: the tasks service depends on it.)
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$nsock"
[ttrpc]
  address = "$nsock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$ndir/containerd/opt"
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "$ndir/containerd/runc-v1"

[plugins."io.containerd.grpc.v1.cri"]
  # The default names a registry; there is none, and GC of this image would make the next
  # sandbox try to pull it (hence imageGCHighThresholdPercent: 100 in the kubelet config).
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # This machine withholds CAP_SYS_RESOURCE even from root, so runc/crun cannot lower
  # oom_score_adj below containerd's own (the sandbox asks for -998) and sandbox creation fails
  # with "write to /proc/self/oom_score_adj: Permission denied". Clamp instead.
  restrict_oom_score_adj = true
  # Pod netns mounts go under our state dir instead of /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    # Deliberately no "kata" runtime: tests rely on the "no runtime configured" error.
    # gVisor: containerd finds containerd-shim-runsc-v1 on its PATH (set where it is started:
    # our wrapper, see below); the shim reads runsc's path, state root and flags from runsc.toml.
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
      runtime_type = "io.containerd.runsc.v1"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc.options]
        TypeUrl = "io.containerd.runsc.v1.options"
        ConfigPath = "$ndir/containerd/runsc.toml"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "$ndir/containerd/runc"
        SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
        BinaryName = "/usr/bin/crun"
        Root = "$ndir/containerd/crun"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ndir/cni/net.d"
    max_conf_num = 1
  # Registry hosts (containerd 1.5+): certs.d/<host:port>/hosts.toml says how to reach one.
  # Only the local registry has one (plain HTTP on loopback); any other name goes to its
  # default https host, through the dead proxy below. Last, after the CRI plugin's own keys:
  # TOML gives every key that follows a table header to that table.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$ndir/containerd/certs.d"
EOF

# Options of containerd-shim-runsc-v1 (gVisor's pkg/shim/v1/runsc Options). The state root is
# ours, not /run/containerd/runsc: runsc keeps a bind mount of an empty network namespace there
# (null-netns, shared by every gofer) that runsc delete never removes; down.sh unmounts it with
# everything else under the node dir. The network is runsc's default (sandbox: gVisor's own netstack on
# the interfaces CNI put in the pod's netns); --network=none would leave pods without them.
mkdir -p "$ndir/logs/runsc" "$ndir/containerd/bin"
{
    echo "binary_name = \"$GVISOR_BIN/runsc\""
    echo "root = \"$ndir/containerd/runsc\""
    echo "log_path = \"$ndir/logs/runsc/\""
    echo "log_level = \"info\""
    echo "[runsc_config]"
    echo "  platform = \"systrap\""
    if [[ "${SANDBENCH_RUNSC_DEBUG:-0}" == 1 ]]; then
        echo "  debug = \"true\""
        echo "  debug-log = \"$ndir/logs/runsc/%ID%/\""
    fi
} >"$ndir/containerd/runsc.toml"

# gVisor's shim is built on containerd 2.x's shim library, whose `start` prints JSON bootstrap
# params ({"version":2,"address":"unix:///...","protocol":"ttrpc"}). containerd 1.6 takes all
# of that output as the address and fails with `dial unix {"version":2,...`. Newer containerd
# reads both forms, so the wrapper hands it only the address. The task API both speak is the
# same (containerd.task.v2.Task over ttrpc); every other action goes straight to the shim, and
# the shim's daemon re-executes the real binary, not this script.
cat >"$ndir/containerd/bin/containerd-shim-runsc-v1" <<WRAPPER
#!/bin/sh
real='$GVISOR_BIN/containerd-shim-runsc-v1'
for action; do :; done
[ "\$action" = start ] || exec "\$real" "\$@"
out=\$("\$real" "\$@")
rc=\$?
address=\$(printf '%s' "\$out" | sed -n 's/^{.*"address":"\([^"]*\)".*}\$/\1/p')
printf '%s\n' "\${address:-\$out}"
exit \$rc
WRAPPER
chmod 755 "$ndir/containerd/bin/containerd-shim-runsc-v1"

# The local registry, plain HTTP on 127.0.0.1 (no TLS to set up for a loopback port).
mkdir -p "$ndir/containerd/certs.d/$REGISTRY"
cat >"$ndir/containerd/certs.d/$REGISTRY/hosts.toml" <<EOF
server = "http://$REGISTRY"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
}


# The proxy variables point at a closed loopback port: should anything ever ask this
# containerd to pull from a registry other than the local one, it fails locally instead of
# leaving the machine. Go never sends loopback addresses through a proxy, so the local
# registry is reached directly.
node_files "$DIR" "$SOCK" "$BRIDGE" "$POD_CIDR" "$ROUTES"
NOPROXY=(HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
         http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 NO_PROXY= no_proxy=)
start_node containerd env "${NOPROXY[@]}" PATH="$DIR/containerd/bin:$PATH" \
    /usr/bin/containerd --config "$DIR/containerd/config.toml"
# The other nodes' containerds: the same configuration, their own state, socket, bridge and
# pod subnet. Pods on node k go to the other nodes' pods through the host (routes above);
# the host's FORWARD drop rule lets exactly that through and nothing else.
for k in "${EXTRA[@]}"; do
    ndir=$(xdir "$k")
    # And their node's own network (10.235.k.0/24), as pods reach their node on any cluster:
    # the harness's direct connections to them (the clock probe) come from the host's end.
    node_files "$ndir" "$ndir/containerd/containerd.sock" sbbridge0 "$(xcidr "$k")" ',
        "routes": [{ "dst": "10.234.0.0/16" }, { "dst": "10.235.'"$k"'.0/24" }]'
    start_in "containerd-node$k" "${XINIT[$k]}" --pid --mount --net -- env "${NOPROXY[@]}" \
        PATH="$ndir/containerd/bin:$PATH" /usr/bin/containerd --config "$ndir/containerd/config.toml"
    for rule in "FORWARD -i $BRIDGE -o sbnode$k -s 10.234.0.0/16 -d $(xcidr "$k")" \
                "FORWARD -i sbnode$k -o $BRIDGE -s $(xcidr "$k") -d $POD_CIDR"; do
        # shellcheck disable=SC2086
        iptables -w -I $rule -m comment --comment "sandbench: pods across nodes" -j ACCEPT
    done
    for j in "${EXTRA[@]}"; do
        ((j == k)) && continue
        iptables -w -I FORWARD -i "sbnode$k" -o "sbnode$j" -s "$(xcidr "$k")" -d "$(xcidr "$j")" \
            -m comment --comment "sandbench: pods across nodes" -j ACCEPT
    done
    # Node k's kubelet finds the API server at the host's end of its veth.
    iptables -w -t nat -I PREROUTING -i "sbnode$k" -d "$(xgateway "$k")/32" -p tcp --dport 6443 \
        -m comment --comment "sandbench: node API" -j DNAT --to-destination 127.0.0.1:6443
    echo "node-rules" >>"$DIR/iptables.added"
done

# ---------------------------------------------------------------- registry
# Its own config and storage under $DIR (wiped by the next up.sh); listening on loopback only.
# No notifications, no debug server, no redirects: it talks to nothing but its clients.
if [[ -x "$REGISTRY_BIN" ]]; then
    mkdir -p "$DIR/registry/data"
    cat >"$DIR/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DIR/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
  secret: $(openssl rand -hex 16)
EOF
    start registry "$REGISTRY_BIN" serve "$DIR/registry/config.yml"
else
    log "no registry: $REGISTRY_BIN is not installed (Debian's docker-registry;" \
        "make cluster-deps installs it)"
fi

# Build the pause image while etcd and containerd start.
bash "$HERE/pause-image.sh" "$DIR/images/pause.tar" "$PAUSE_IMAGE" >"$DIR/logs/pause-image.log" 2>&1 ||
    die "pause image build failed (see $DIR/logs/pause-image.log)"

wait_for "etcd healthy" 30 etcd curl -fsS http://127.0.0.1:2379/health
if [[ -x "$REGISTRY_BIN" ]]; then
    wait_for "registry answering on $REGISTRY" 30 registry curl -fsS "http://$REGISTRY/v2/"
    # What the image-pull tests read: where to push to.
    echo "$REGISTRY" >"$DIR/registry/address"
fi

# ---------------------------------------------------------------- kube-apiserver
start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=127.0.0.1 --secure-port=6443 --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --cert-dir="$DIR/apiserver" \
    --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
    --client-ca-file="$DIR/pki/ca.crt" \
    --token-auth-file="$DIR/pki/tokens.csv" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$DIR/pki/sa.pub" \
    --service-account-signing-key-file="$DIR/pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --allow-privileged=true \
    --enable-aggregator-routing=true \
    ${FRONT_PROXY[@]+"${FRONT_PROXY[@]}"} \
    --profiling=false \
    --v=1

# ---------------------------------------------------------------- images (while the apiserver starts)
wait_for "containerd ready" 30 containerd ctr --address "$SOCK" version
for k in "${EXTRA[@]}"; do
    wait_for "node $k's containerd ready" 30 "containerd-node$k" \
        ctr --address "$(xdir "$k")/containerd/containerd.sock" version
done
import_image() { # archive [socket]
    ctr --address "${2:-$SOCK}" -n k8s.io images import "$1" >>"$DIR/logs/images.log" 2>&1 ||
        die "importing $1 failed (see $DIR/logs/images.log)"
}
for img in "$DIR/images/pause.tar" ${SANDBENCH_IMAGES:-}; do
    [[ -f "$img" ]] || die "SANDBENCH_IMAGES lists $img, which does not exist"
    import_image "$img"
    for k in "${EXTRA[@]}"; do import_image "$img" "$(xdir "$k")/containerd/containerd.sock"; done
done
log "imported images: $(ctr --address "$SOCK" -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

# ---------------------------------------------------------------- kubelet
# kubelet_config FILE ADDRESS SOCKET NODE-DIR [CGROUP-ROOT]
kubelet_config() {
cat >"$1" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Loopback only (the other nodes: their own address, in their own network namespace): the
# kubelet API is unauthenticated (anonymous + AlwaysAllow) so that the apiserver can reach it
# for logs/exec without client certificates.
address: $2
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
# PID 1 is not systemd.
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$3
# containerd 1.6 does not pin the sandbox image; GC would delete it and then try to pull it.
imageGCHighThresholdPercent: 100
# A nearly full test disk must not evict the test pods.
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
  imagefs.inodesFree: "0%"
# No cluster DNS; pods use dnsPolicy: Default and get an empty resolv.conf.
resolvConf: ""
podLogsDir: $4/pod-logs
volumePluginDir: $4/kubelet/volume-plugins
staticPodPath: ""
EOF
    if [[ -n "${5:-}" ]]; then echo "cgroupRoot: $5" >>"$1"; fi
}
kubelet_config "$DIR/kubelet/config.yaml" 127.0.0.1 "$SOCK" "$DIR"
if [[ "${SANDBENCH_KUBEVIRT:-0}" == 1 ]]; then
    # virt-handler mounts these host paths, some with Bidirectional propagation; / is rshared
    # in the node namespace, so no host mount is needed. down.sh removes them.
    for d in /var/lib/kubelet /run/kubevirt /run/kubevirt-private /run/kubevirt-libvirt-runtimes \
             /var/lib/kubevirt-node-labeller; do
        mkdir -p "$d"
    done
    log "KubeVirt host paths created; the kubelet's root is /var/lib/kubelet"
fi
start_node kubelet "$K8S_BIN/kubelet" \
    --config="$DIR/kubelet/config.yaml" \
    --kubeconfig="$DIR/kubelet/kubeconfig" \
    --hostname-override="$NODE" \
    --root-dir="$KUBELET_ROOT" \
    --cert-dir="$DIR/kubelet/pki" \
    --v=1
for k in "${EXTRA[@]}"; do
    ndir=$(xdir "$k")
    kubelet_config "$ndir/kubelet/config.yaml" "$(xname "$k")" "$ndir/containerd/containerd.sock" \
        "$ndir" "/sandbench-node$k"
    start_in "kubelet-node$k" "${XINIT[$k]}" --pid --mount --net -- "$K8S_BIN/kubelet" \
        --config="$ndir/kubelet/config.yaml" \
        --kubeconfig="$ndir/kubelet/kubeconfig" \
        --hostname-override="$(xname "$k")" \
        --node-ip="$(xname "$k")" \
        --node-labels="sandbench.io/node=node$k" \
        --root-dir="$ndir/kubelet" \
        --cert-dir="$ndir/kubelet/pki" \
        --v=1
done

wait_for "kube-apiserver ready" 90 kube-apiserver \
    curl -fsS --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "$API/readyz"

# ---------------------------------------------------------------- controller-manager, scheduler
# --authentication-skip-lookup: there is no front proxy, so the requestheader CA they would
# look up does not exist (they would log "missing content for CA bundle" forever).
start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$DIR/kcm/kubeconfig" \
    --authentication-kubeconfig="$DIR/kcm/kubeconfig" \
    --authorization-kubeconfig="$DIR/kcm/kubeconfig" \
    --authentication-skip-lookup=true \
    --bind-address=127.0.0.1 \
    --cert-dir="$DIR/kcm" \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$DIR/pki/sa.key" \
    --root-ca-file="$DIR/pki/ca.crt" \
    --cluster-signing-cert-file="$DIR/pki/ca.crt" \
    --cluster-signing-key-file="$DIR/pki/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --v=1
start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$DIR/scheduler/kubeconfig" \
    --authentication-kubeconfig="$DIR/scheduler/kubeconfig" \
    --authorization-kubeconfig="$DIR/scheduler/kubeconfig" \
    --authentication-skip-lookup=true \
    --bind-address=127.0.0.1 \
    --cert-dir="$DIR/scheduler" \
    --leader-elect=false \
    --v=1

export KUBECONFIG="$DIR/admin.kubeconfig"

# ---------------------------------------------------------------- RuntimeClasses
# Only the handlers this containerd actually has; other manifests (e.g. kata) are for other
# environments.
for f in "$REPO"/runtimeclasses/kubernetes/*.yaml "$REPO"/runtimeclasses/kubernetes/*.yml; do
    [[ -f "$f" ]] || continue
    handler=$(awk '/^handler:/ { gsub(/["'\'']/, "", $2); print $2; exit }' "$f")
    case "$handler" in
        runc|crun|runsc)
            "$KUBECTL" apply -f "$f" >>"$DIR/logs/kubectl.log" 2>&1 ||
                die "applying $f failed (see $DIR/logs/kubectl.log)"
            log "applied RuntimeClass from ${f#"$REPO"/} (handler $handler)" ;;
        *) log "skipped ${f#"$REPO"/} (handler '${handler}' not configured here)" ;;
    esac
done

# ---------------------------------------------------------------- readiness
node_ready() { # [node name]
    [[ "$("$KUBECTL" get node "${1:-$NODE}" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
wait_for "node $NODE Ready" 90 kubelet node_ready
for k in "${EXTRA[@]}"; do
    wait_for "node $(xname "$k") Ready" 90 "kubelet-node$k" node_ready "$(xname "$k")"
done
wait_for "ServiceAccount default/default exists" 60 kube-controller-manager \
    "$KUBECTL" -n default get serviceaccount default

ok=1
echo "$DIR/admin.kubeconfig"
log "cluster up: $NODES node(s) Ready, Kubernetes $("$KUBECTL" version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1)"
log "bring-up took $(elapsed)"
