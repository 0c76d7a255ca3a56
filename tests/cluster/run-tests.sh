#!/usr/bin/env bash
# Build (if needed: Kubernetes, etcd, gVisor, crictl) -> up -> pytest -m cluster -> down, always
# tearing down what it brought up, exiting with pytest's status. If up.sh refuses to start (exit
# 3: e.g. another run's cluster is up in the same dir), nothing is torn down and the exit status
# is 3. Extra arguments go to pytest.
#
# SANDBENCH_KUBEVIRT=1: the real-KubeVirt phase instead. The cluster comes up with the node
# namespace (up.sh), kubevirt-up.sh deploys KubeVirt v1.7.0 (`make kubevirt` built it) in
# emulation, the KubeVirt guest's images are imported beside the workload's, and only the
# tests marked kubevirt run. Without it those are left out: they need KubeVirt deployed.
#
# SANDBENCH_NODES=2: the cluster comes up with a second node (up.sh), kwok-up.sh adds KWOK's
# fake nodes (it builds kwok with build-kwok.sh if needed), and only the tests marked multinode or kwok run; the
# other phases leave them out.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
export SANDBENCH_CACHE="${SANDBENCH_CACHE:-$HOME/.cache/sandbench}"
export SANDBENCH_CLUSTER_DIR="${SANDBENCH_CLUSTER_DIR:-/var/tmp/sandbench-cluster}"
export SANDBENCH_K8S_BIN="${SANDBENCH_K8S_BIN:-$SANDBENCH_CACHE/k8s/$K8S_VERSION/bin}"
export SANDBENCH_KUBECTL="$SANDBENCH_K8S_BIN/kubectl"
export KUBECONFIG="$SANDBENCH_CLUSTER_DIR/admin.kubeconfig"

t0=$(date +%s)
bash "$HERE/build-k8s.sh"
bash "$HERE/build-etcd.sh"
# The RuntimeClass gvisor (handler runsc) runs pods for real; build-gvisor.sh prints its bin dir.
SANDBENCH_GVISOR_BIN=$(bash "$HERE/build-gvisor.sh")
export SANDBENCH_GVISOR_BIN
# crictl asks the node's CRI whether an image is there (the image-pull test); it prints its path.
SANDBENCH_CRICTL=$(bash "$HERE/build-crictl.sh")
export SANDBENCH_CRICTL

# Registered before up.sh so a half-started cluster is torn down as well (up.sh also cleans
# up after itself on failure; running down.sh twice is harmless).
teardown() { bash "$HERE/down.sh" || echo "run-tests: down.sh failed" >&2; }
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The repo's venv (`make venv`) has sandbench and the test dependencies that tests/conftest.py
# imports; fall back to whatever `python` is.
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python; fi
fi

# The workload image the tests run, imported into the cluster's containerd (no registry).
eval "$(cd "$REPO" && "$PYTHON" -m sandbench image build --print-env)"
export SANDBENCH_WORKLOAD_IMAGE SANDBENCH_WORKLOAD_ARCHIVE
export SANDBENCH_IMAGES="${SANDBENCH_IMAGES:-} $SANDBENCH_WORKLOAD_ARCHIVE"
if [[ "${SANDBENCH_KUBEVIRT:-0}" == 1 ]]; then
    # The VMIs' containerDisk, data disk and kernel-boot images (pull policy Never).
    SANDBENCH_IMAGES="$SANDBENCH_IMAGES ${SANDBENCH_GUEST_ARCHIVES:?the workload image has no KubeVirt guest}"
    MARKS="cluster and kubevirt"
elif [[ "${SANDBENCH_NODES:-1}" != 1 ]]; then
    MARKS="cluster and (multinode or kwok)"
else
    MARKS="cluster and not kubevirt and not multinode and not kwok"
fi

up=0
bash "$HERE/up.sh" || up=$?
if ((up == 3)); then
    # up.sh refused to start (another cluster is up in the same dir, a port is taken...): that
    # cluster belongs to someone else, so no teardown.
    trap - EXIT
    echo "run-tests: up.sh refused to start; leaving what is there alone" >&2
    exit 3
fi
((up == 0)) || exit "$up"
if [[ "${SANDBENCH_KUBEVIRT:-0}" == 1 ]]; then
    bash "$HERE/kubevirt-up.sh"
elif [[ "${SANDBENCH_NODES:-1}" != 1 ]]; then
    bash "$HERE/kwok-up.sh"
fi

cd "$REPO"
rc=0
"$PYTHON" -m pytest -m "$MARKS" tests/cluster "$@" || rc=$?
echo "run-tests: pytest exited $rc; total so far $(( $(date +%s) - t0 ))s"
exit "$rc"
