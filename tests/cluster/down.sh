#!/usr/bin/env bash
# Tear down the cluster started by up.sh: delete workloads through the API (so the kubelet
# stops containers and CNI releases addresses), stop every recorded PID, clean up what the
# private containerd left behind, and restore host settings up.sh recorded.
#
# Only touches things identified as ours: PIDs from $DIR/pids whose command line names $DIR,
# shims whose command line names our private containerd socket, mounts under $DIR, netns with
# an address in our pod subnet, our bridge. Never kills by process name. Safe to run twice and
# when nothing is up.
#
# With the node namespace (up.sh NODE_NS=1) containerd, the kubelet and everything they start
# run in a PID and mount namespace whose PID 1 is node-init (recorded in $DIR/pids like the
# daemons, by its PID on the host). Stopping node-init last ends every process still in that
# PID namespace (the kernel SIGKILLs them, containers and gVisor sandboxes in nested namespaces
# included), and with the last of them the mount namespace and every mount in it.
set -euo pipefail

DIR="${SANDBENCH_CLUSTER_DIR:-/var/tmp/sandbench-cluster}"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
SOCK="$DIR/containerd/containerd.sock"
BRIDGE="${SANDBENCH_BRIDGE:-sandbench0}"
POD_CIDR="${SANDBENCH_POD_CIDR:-10.234.0.0/24}"
K8S_BIN="${SANDBENCH_K8S_BIN:-${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/k8s/$K8S_VERSION/bin}"
NS_TIMEOUT="${SANDBENCH_DOWN_TIMEOUT:-60}"

t0=$(date +%s%N)
elapsed() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }
log() { echo "[down $(elapsed)] $*"; }

[[ $EUID -eq 0 ]] || { echo "down.sh: must run as root" >&2; exit 1; }
[[ "$DIR" = /* && "$DIR" != / ]] || { echo "down.sh: SANDBENCH_CLUSTER_DIR must be absolute" >&2; exit 1; }
if [[ ! -f "$DIR/.sandbench-cluster" ]]; then
    log "no sandbench cluster state in $DIR; nothing to do"
    exit 0
fi
# What up.sh actually used wins over our defaults.
# shellcheck source=/dev/null
[[ -f "$DIR/cluster.env" ]] && source "$DIR/cluster.env"
KUBECTL="$K8S_BIN/kubectl"

ours() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$DIR/"; }
# Processes (not zombies) whose namespace of a kind ($1: pid or mnt) is $2, e.g. pid:[4026532179].
ns_members() {
    local kind=$1 ns=$2 p n=0
    for p in /proc/[0-9]*; do
        [[ "$(readlink "$p/ns/$kind" 2>/dev/null)" == "$ns" ]] || continue
        grep -q '^State:[[:space:]]*Z' "$p/status" 2>/dev/null || n=$((n + 1))
    done
    echo "$n"
}
NODE_PIDNS= NODE_MNTNS=
[[ -f "$DIR/node-ns" ]] && read -r NODE_PIDNS NODE_MNTNS <"$DIR/node-ns"
pid_of() { [[ -f "$DIR/pids" ]] && awk -v n="$1" '$1 == n { p = $2 } END { if (p) print p }' "$DIR/pids"; }
running() { local p; p=$(pid_of "$1") && [[ -n "$p" ]] && ours "$p"; }

stop_pid() { # name pid grace-seconds
    local name=$1 pid=$2 grace=$3 i
    ours "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < grace * 10; i++)); do
        ours "$pid" || { log "stopped $name (pid $pid)"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do ours "$pid" || break; sleep 0.1; done
    log "killed $name (pid $pid) after ${grace}s"
}

# ---------------------------------------------------------------- workloads via the API
if running kube-apiserver && [[ -x "$KUBECTL" && -f "$DIR/admin.kubeconfig" ]] &&
   "$KUBECTL" --kubeconfig "$DIR/admin.kubeconfig" --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
    k() { "$KUBECTL" --kubeconfig "$DIR/admin.kubeconfig" --request-timeout=10s "$@"; }
    # KubeVirt first, while its operator still runs: VMIs (virt-controller removes their
    # finalizers), then the KubeVirt CR, whose finalizer the operator removes once it has taken
    # its components down. Deleted together with its namespace instead, the CR outlives the
    # operator and the namespace waits out NS_TIMEOUT.
    if [[ "${KUBEVIRT:-0}" == 1 ]] && k -n kubevirt get kubevirt kubevirt >/dev/null 2>&1; then
        k delete vmi --all -A --timeout=60s >/dev/null 2>&1 || true
        if k -n kubevirt delete kubevirt kubevirt --timeout=120s >/dev/null 2>&1; then
            log "KubeVirt CR deleted (the operator removed its components)"
        else
            log "WARNING: the KubeVirt CR was not deleted within 120s; continuing"
        fi
    fi
    mapfile -t namespaces < <(k get namespaces -o name 2>/dev/null | sed 's|^namespace/||' |
        grep -vxE 'default|kube-system|kube-public|kube-node-lease' || true)
    # Short grace: test pods often run a PID-1 sleep that ignores SIGTERM.
    for ns in "${namespaces[@]}" default; do
        [[ -n "$ns" ]] && k -n "$ns" delete pods --all --grace-period=1 --wait=false >/dev/null 2>&1 || true
    done
    if ((${#namespaces[@]})); then
        k delete namespace "${namespaces[@]}" --wait=false >/dev/null 2>&1 || true
        log "deleting namespaces: ${namespaces[*]}"
    fi
    deadline=$(( $(date +%s) + NS_TIMEOUT ))
    while :; do
        left_ns=$(k get namespaces -o name 2>/dev/null | sed 's|^namespace/||' |
            grep -vxE 'default|kube-system|kube-public|kube-node-lease' || true)
        left_pods=$(k get pods -A -o name 2>/dev/null || true)
        [[ -z "$left_ns" && -z "$left_pods" ]] && { log "namespaces and pods deleted"; break; }
        if (( $(date +%s) >= deadline )); then
            log "WARNING: after ${NS_TIMEOUT}s still present: ${left_ns//$'\n'/ } ${left_pods//$'\n'/ }; continuing"
            break
        fi
        sleep 0.5
    done
else
    log "apiserver not reachable; skipping API cleanup"
fi

# ---------------------------------------------------------------- the other nodes (up.sh SANDBENCH_NODES)
# Each is a PID, mount and network namespace whose PID 1 is its node-init: stopping that ends
# its kubelet, containerd, shims and containers (the kernel kills what is left in a PID
# namespace whose init exits), then its mounts and its network namespace, veth included.
if [[ -f "$DIR/pids" ]]; then
    # Then the unshare that started each (up.sh records it first): if up.sh was killed before
    # it recorded a node-init, stopping its unshare (--kill-child) is what ends that node.
    for kind in node-init unshare; do
        for name in $(awk -v k="$kind" 'index($1, k "-node") == 1 { print $1 }' "$DIR/pids"); do
            pid=$(pid_of "$name" || true)
            [[ -n "$pid" ]] && stop_pid "$name" "$pid" 10
        done
    done
fi
if [[ -f "$DIR/nodes-ns" ]]; then
    left=""
    while read -r name pidns mntns; do
        for ((i = 0; i < 100; i++)); do
            [[ "$(ns_members pid "$pidns")$(ns_members mnt "$mntns")" == 00 ]] && break
            sleep 0.1
        done
        n=$(( $(ns_members pid "$pidns") + $(ns_members mnt "$mntns") ))
        if ((n)); then left+=" $name($n)"; fi
    done <"$DIR/nodes-ns"
    if [[ -z "$left" ]]; then
        log "other nodes gone: no process, mount or network namespace of theirs left"
        rm -f "$DIR/nodes-ns"
    else
        log "WARNING: processes still in the namespaces of:$left"
    fi
fi
for link in $(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^sbnode[0-9]+(@|$)/ { sub(/@.*/, "", $2); print $2 }'); do
    ip link delete "$link" 2>/dev/null && log "deleted leftover link $link"
done
# Their kubelets' cgroup roots, deepest first, once nothing is in them: the ones up.sh made,
# and the ones the kubelet made itself (on the cgroup2 hierarchy of a hybrid host).
if [[ -f "$DIR/cgroups-created" ]]; then
    left=""
    while read -r cg; do
        if [[ -d "$cg" ]]; then find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
        if [[ -d "$cg" ]]; then left+=" $cg"; fi
    done < <(cat "$DIR/cgroups-created"; ls -d /sys/fs/cgroup/*/sandbench-node[0-9]* 2>/dev/null || true)
    if [[ -z "$left" ]]; then rm -f "$DIR/cgroups-created"; log "removed the other nodes' cgroup roots"
    else log "WARNING: cgroups not empty, left in place:$left"; fi
fi

# ---------------------------------------------------------------- control plane and registry, by recorded PID
# kwok (kwok-up.sh's fake nodes) before the API server it talks to.
for name in kwok kubelet kube-scheduler kube-controller-manager kube-apiserver etcd registry; do
    pid=$(pid_of "$name" || true)
    [[ -n "$pid" ]] && stop_pid "$name" "$pid" 15
done

# ---------------------------------------------------------------- containerd tasks and shims
TASKS="$DIR/containerd/state/io.containerd.runtime.v2.task"
shim_sockets=()
if [[ -d "$TASKS" ]]; then
    for a in "$TASKS"/*/*/address; do
        [[ -f "$a" ]] && shim_sockets+=("$(sed 's|^unix://||' "$a")")
    done
fi
if running containerd; then
    c() { timeout 20 ctr --address "$SOCK" "$@"; }
    for ns in $(c namespaces ls -q 2>/dev/null || true); do
        tasks=$(c -n "$ns" tasks ls -q 2>/dev/null || true)
        for t in $tasks; do c -n "$ns" tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1 || true; done
        for t in $tasks; do
            for _ in 1 2 3 4 5; do c -n "$ns" tasks delete "$t" >/dev/null 2>&1 && break; sleep 0.2; done
        done
        if [[ -n "$tasks" ]]; then log "killed leftover containerd tasks in namespace $ns: $(echo $tasks | wc -w)"; fi
    done
fi
killed_inits=()
# Whatever is still alive (e.g. containerd died first): container init processes, found
# through the private containerd's bundle records and confirmed by their cgroup, which is
# named after the container ID. Killing a container's init ends its whole PID namespace.
# In the node namespace, init.pid holds a PID of that namespace, not the host's: these end
# with node-init below instead.
if running node-init; then
    log "container inits are in the node namespace; they end with node-init"
elif [[ -d "$TASKS" ]]; then
    for b in "$TASKS"/*/*; do
        [[ -d "$b" ]] || continue
        id=$(basename "$b")
        init=$(cat "$b/init.pid" 2>/dev/null || true)
        [[ -n "$init" ]] || continue
        if grep -qF -- "$id" 2>/dev/null "/proc/$init/cgroup"; then
            if kill -KILL "$init" 2>/dev/null; then
                log "killed leftover container init $init (${id:0:12})"
                killed_inits+=("$init")
            fi
        fi
    done
fi
# gVisor sandboxes have no init process on the host: a pod is a runsc-sandbox (the sentry, whose
# children are the platform's stub processes) and a runsc-gofer, both started with our state
# root (see runsc.toml in up.sh). Killing the sentry ends the sandbox and the gofer exits with it;
# the gofer is killed too in case the sentry was already gone.
runsc_root="--root=$DIR/containerd/runsc/"
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline" || true)
    if [[ "$cmd" == *"-address $SOCK "* ]]; then
        if kill -KILL "$pid" 2>/dev/null; then log "killed leftover shim $pid of the private containerd"; fi
    elif [[ "$cmd" == runsc-* && "$cmd" == *" $runsc_root"* ]]; then
        if kill -KILL "$pid" 2>/dev/null; then
            log "killed leftover ${cmd%% *} $pid of the private containerd"
            killed_inits+=("$pid")
        fi
    fi
done

pid=$(pid_of containerd || true)
[[ -n "$pid" ]] && stop_pid containerd "$pid" 15
# ---------------------------------------------------------------- the node namespace
# node-init exits on SIGTERM; the kernel then kills what is left in its PID namespace, and
# node-init's PID is gone once they all are. Then the node's mount namespace has no process
# left, and its mounts (container root filesystems, pod volumes, netns bind mounts) are gone.
pid=$(pid_of node-init || true)
[[ -n "$pid" ]] && stop_pid node-init "$pid" 10
pid=$(pid_of unshare || true) # up.sh killed before it recorded node-init: --kill-child ends it
[[ -n "$pid" ]] && stop_pid unshare "$pid" 10
if [[ -n "$NODE_PIDNS" ]]; then
    for ((i = 0; i < 100; i++)); do
        [[ "$(ns_members pid "$NODE_PIDNS")$(ns_members mnt "$NODE_MNTNS")" == 00 ]] && break
        sleep 0.1
    done
    left_pids=$(ns_members pid "$NODE_PIDNS") left_mnt=$(ns_members mnt "$NODE_MNTNS")
    if [[ "$left_pids$left_mnt" == 00 ]]; then
        rm -f "$DIR/node-ns"
        log "node namespace gone ($NODE_PIDNS, $NODE_MNTNS): no process, so none of its mounts, left"
    else
        log "WARNING: node namespace still has $left_pids processes in $NODE_PIDNS, $left_mnt in $NODE_MNTNS"
    fi
fi
# Their netns, veths and cgroups only go away once the processes are really gone.
for ((i = 0; i < 50; i++)); do
    still=0
    # A zombie counts as gone: its parent may be a PID 1 that is slow to reap.
    for p in "${killed_inits[@]}"; do
        [[ -d /proc/$p ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$p/status" 2>/dev/null && still=1
    done
    ((still)) || break
    sleep 0.1
done
for s in "${shim_sockets[@]}"; do rm -f "$s"; done

# ---------------------------------------------------------------- mounts under the state dir
# With KubeVirt (up.sh SANDBENCH_KUBEVIRT=1) also the kubelet's root, which was empty before
# (up.sh refuses otherwise), and the host paths virt-handler mounts (KubeVirt's util paths).
ROOTS=("$DIR")
if [[ "${KUBEVIRT:-0}" == 1 ]]; then
    ROOTS+=(/var/lib/kubelet /run/kubevirt /run/kubevirt-private /run/kubevirt-libvirt-runtimes
            /var/lib/kubevirt-node-labeller)
fi
under_roots() { # mount points under any of ROOTS, deepest first
    local r
    for r in "${ROOTS[@]}"; do
        awk -v d="$r" 'index($5, d "/") == 1 || $5 == d { print $5 }' /proc/self/mountinfo
    done | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-
}
for pass in 1 2 3 4 5; do
    mapfile -t mounts < <(under_roots)
    ((${#mounts[@]})) || break
    for m in "${mounts[@]}"; do
        m=$(printf '%b' "$m") # mountinfo octal-escapes spaces etc. (\040)
        umount "$m" 2>/dev/null || { ((pass >= 3)) && umount -l "$m" 2>/dev/null; } || true
    done
done
left=$(under_roots | wc -l)
if ((left)); then log "WARNING: $left mounts remain under ${ROOTS[*]}"; else log "no mounts left under ${ROOTS[*]}"; fi
if [[ -f "$DIR/made-shared" ]]; then
    mount --make-private / && rm -f "$DIR/made-shared" && log "/ is a private mount again"
fi
# Not while the node's mount namespace lives: its mounts there are invisible from here.
if [[ "${KUBEVIRT:-0}" == 1 ]] && ((left == 0)) && [[ ! -f "$DIR/node-ns" ]]; then
    for r in "${ROOTS[@]:1}"; do
        [[ -e "$r" ]] || continue
        if [[ "$r" == /var/lib/kubelet ]]; then
            # Everything in it is this cluster's; the device-plugin dir is handled below.
            find "$r" -mindepth 1 -maxdepth 1 ! -name device-plugins -exec rm -rf {} +
            # virt-handler's device plugins' sockets (kvm, tun, vhost-net).
            rm -f "$r"/device-plugins/kubevirt-*.sock
        else
            rm -rf "$r"
        fi
        log "removed $r (KubeVirt)"
    done
fi

# ---------------------------------------------------------------- network
ip2int() { local IFS=.; set -- $1; echo $(( ($1 << 24) + ($2 << 16) + ($3 << 8) + $4 )); }
net=$(ip2int "${POD_CIDR%/*}")
bits=${POD_CIDR#*/}
mask=$(( bits == 0 ? 0 : (0xffffffff << (32 - bits)) & 0xffffffff ))
in_pod_cidr() { (( ($(ip2int "$1") & mask) == (net & mask) )); }
# With netns_mounts_under_state_dir the pod netns lived under $DIR (unmounted above); these
# are for a containerd that used /run/netns anyway.
for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep '^cni-' || true); do
    addrs=$(ip -n "$ns" -4 -o addr show 2>/dev/null | awk '$2 != "lo" { sub(/\/.*/, "", $4); print $4 }')
    for a in $addrs; do
        if in_pod_cidr "$a"; then ip netns delete "$ns" && log "deleted netns $ns ($a)"; break; fi
    done
done
if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" && log "deleted bridge $BRIDGE"
fi
# libcni's result cache lives in /var/lib/cni whatever containerd is told; a clean CNI DEL
# removes our entries, a forced teardown leaves them (ours: our network, or our sandbox IDs).
rm -f /var/lib/cni/results/sandbench-* 2>/dev/null || true
for b in "$DIR"/containerd/root/io.containerd.grpc.v1.cri/sandboxes/* "$TASKS"/*/*; do
    [[ -d "$b" ]] && rm -f /var/lib/cni/results/*-"$(basename "$b")"-* 2>/dev/null || true
done
if [[ -f "$DIR/iptables.added" ]]; then
    while iptables -w -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "sandbench: pods stay on this machine" -j DROP 2>/dev/null; do
        iptables -w -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "sandbench: pods stay on this machine" -j DROP
    done
    rule=(PREROUTING -i "$BRIDGE" -d 10.96.0.1/32 -p tcp --dport 443 -m comment
          --comment "sandbench: in-cluster API" -j DNAT --to-destination 127.0.0.1:6443)
    while iptables -w -t nat -C "${rule[@]}" 2>/dev/null; do iptables -w -t nat -D "${rule[@]}"; done
    # More nodes (up.sh SANDBENCH_NODES): the rules named by their comments.
    for table in filter nat; do
        mapfile -t specs < <(iptables -w -t "$table" -S 2>/dev/null |
            grep -E -- '--comment "sandbench: (pods across nodes|node API)"' | sed 's/^-A //' || true)
        for spec in "${specs[@]}"; do
            eval "iptables -w -t $table -D $spec" || log "WARNING: could not delete $table rule: $spec"
        done
    done
    rm -f "$DIR/iptables.added"
    log "removed iptables FORWARD drop rule (and the in-cluster API DNAT and the rules between nodes, if added)"
fi

# ---------------------------------------------------------------- host settings
if [[ -f "$DIR/sysctl.orig" ]]; then
    while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null || log "WARNING: could not restore $kv"; done <"$DIR/sysctl.orig"
    mv -f "$DIR/sysctl.orig" "$DIR/sysctl.restored"
    log "restored sysctls changed by kubelet/CNI"
fi
# The kubelet's QoS cgroups (cgroupfs driver); empty once every pod is gone.
if [[ -d "$DIR/kubelet" ]]; then
    for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
        [[ -d "$d" ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
fi

# Host directories that only exist because this cluster ran (see up.sh); removed only if
# empty once our own files are gone.
if [[ -f "$DIR/host-dirs-created" ]] && ! running kubelet; then
    # The device manager's checkpoint is written once a device plugin (KubeVirt's) registered.
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint
    # A shim whose start failed after it made its socket (e.g. a runsc shim containerd could not
    # talk to) is in no task record, so its socket was not removed above. If this cluster
    # created /run/containerd, a socket there that nothing listens on any more is one of those.
    if grep -qx /run/containerd "$DIR/host-dirs-created"; then
        listening=$(ss -xlH 2>/dev/null | awk '{ print $5 }')
        stale=0
        for s in /run/containerd/s/*; do
            [[ -S "$s" ]] || continue
            grep -qxF -- "$s" <<<"$listening" && continue
            rm -f "$s" && stale=$((stale + 1))
        done
        ((stale == 0)) || log "removed $stale stale shim sockets from /run/containerd/s"
    fi
    while read -r d; do
        [[ -d "$d" ]] || continue
        find "$d" -depth -type d -empty -delete 2>/dev/null || true
        if [[ -d "$d" ]]; then log "WARNING: $d was created by this cluster but is not empty; left in place"; fi
    done <"$DIR/host-dirs-created"
fi

# ---------------------------------------------------------------- report
[[ -f "$DIR/pids" ]] && mv -f "$DIR/pids" "$DIR/pids.stopped"
alive=""
if [[ -f "$DIR/pids.stopped" ]]; then
    while read -r name pid; do ours "$pid" && alive+=" $name($pid)"; done <"$DIR/pids.stopped"
fi
[[ -z "$alive" ]] || log "WARNING: still alive:$alive"
log "cluster down (logs kept in $DIR/logs)"
