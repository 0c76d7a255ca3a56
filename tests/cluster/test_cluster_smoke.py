"""Smoke tests for the single-node cluster from tests/cluster/up.sh.

They check what sandbench relies on: pods run under the runc, crun and gvisor RuntimeClasses
from the local pause image (gvisor really inside gVisor), pods have no default route, and the
two "runtime not available" failures look the way the harness expects (admission refusal vs.
FailedCreatePodSandBox).
Uses kubectl from the build cache (the kubernetes Python client is not a dependency).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

K8S_VERSION = os.environ.get("K8S_VERSION", "v1.34.4")
PAUSE_IMAGE = "localhost/sandbench/pause:1"
CLUSTER_DIR = Path(os.environ.get("SANDBENCH_CLUSTER_DIR", "/var/tmp/sandbench-cluster"))
POD_TIMEOUT = 90  # seconds; pods normally finish in a few


def _kubectl_path() -> str | None:
    if os.environ.get("SANDBENCH_KUBECTL"):
        return os.environ["SANDBENCH_KUBECTL"]
    cache = Path(os.environ.get("SANDBENCH_CACHE", Path.home() / ".cache" / "sandbench"))
    cached = cache / "k8s" / K8S_VERSION / "bin" / "kubectl"
    return str(cached) if cached.exists() else shutil.which("kubectl")


class Kubectl:
    def __init__(self, binary: str, kubeconfig: str):
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [self.binary, "--kubeconfig", self.kubeconfig, *args],
            input=stdin, capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def json(self, *args: str) -> dict:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def create(self, obj: dict, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("create", "-f", "-", stdin=json.dumps(obj), check=check)


@pytest.fixture(scope="module")
def kubectl() -> Kubectl:
    kubeconfig = os.environ.get("KUBECONFIG") or str(CLUSTER_DIR / "admin.kubeconfig")
    binary = _kubectl_path()
    if not binary or not Path(kubeconfig).exists():
        pytest.skip("no cluster: run tests/cluster/run-tests.sh (or up.sh and export KUBECONFIG)")
    k = Kubectl(binary, kubeconfig)
    if k.run("get", "--raw", "/readyz", check=False, timeout=15).returncode != 0:
        pytest.skip(f"cluster in {kubeconfig} is not reachable")
    return k


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl):
    name = f"sandbench-smoke-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", name)
    # Pods are refused until the controller-manager has created the default ServiceAccount.
    _wait(lambda: kubectl.run("-n", name, "get", "serviceaccount", "default",
                              check=False).returncode == 0, 30, "default ServiceAccount")
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def _wait(cond, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        result = cond()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pod(name: str, runtime_class: str, command: list[str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "sandbench"}},
        "spec": {
            "runtimeClassName": runtime_class,
            "restartPolicy": "Never",
            "dnsPolicy": "Default",  # there is no cluster DNS
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": PAUSE_IMAGE,
                "imagePullPolicy": "Never",  # no registry: a missing image must fail at once
                "command": command,
            }],
        },
    }


def _events(kubectl: Kubectl, ns: str, pod_name: str) -> list[dict]:
    out = kubectl.json("-n", ns, "get", "events",
                       "--field-selector", f"involvedObject.name={pod_name}")
    return out.get("items", [])


def wait_succeeded(kubectl: Kubectl, ns: str, name: str) -> dict:
    """Wait for phase Succeeded; fail early (with events) on Failed or a stuck waiting reason."""
    fatal = {"ErrImageNeverPull", "CreateContainerError", "CreateContainerConfigError",
             "RunContainerError", "InvalidImageName"}
    polls = 0

    def check():
        nonlocal polls
        polls += 1
        p = kubectl.json("-n", ns, "get", "pod", name)
        phase = p.get("status", {}).get("phase")
        if phase == "Succeeded":
            return p
        waiting = [cs.get("state", {}).get("waiting", {}).get("reason")
                   for cs in p.get("status", {}).get("containerStatuses", [])]
        # A sandbox that keeps failing is retried with back-off for ever; three strikes is
        # enough to report it instead of waiting out the timeout.
        sandbox_failures = 0
        if polls % 4 == 0:
            sandbox_failures = sum(e.get("count") or 1 for e in _events(kubectl, ns, name)
                                   if e.get("reason") == "FailedCreatePodSandBox")
        if phase == "Failed" or fatal.intersection(waiting) or sandbox_failures >= 3:
            events = [f"{e['reason']}: {e['message']}" for e in _events(kubectl, ns, name)]
            raise AssertionError(f"pod {name} phase={phase} waiting={waiting} events={events}")
        return None

    try:
        return _wait(check, POD_TIMEOUT, f"pod {name} to succeed")
    except AssertionError as exc:
        if "timed out" in str(exc):
            events = [f"{e['reason']}: {e['message']}" for e in _events(kubectl, ns, name)]
            raise AssertionError(f"{exc}; events={events}") from None
        raise


@pytest.fixture(scope="module")
def started_pods(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    """Create the pods that are expected to run all at once, so the tests wait only once."""
    pods = {
        "runc": pod("true-runc", "runc", ["/bin/busybox", "true"]),
        "crun": pod("true-crun", "crun", ["/bin/busybox", "true"]),
        # gVisor's kernel log is its own, not the host's: it says "Starting gVisor...".
        "gvisor": pod("dmesg-gvisor", "gvisor", ["/bin/busybox", "dmesg"]),
        # Prints the routing table and fails if it has a default route.
        "route": pod("route-runc", "runc", [
            "/bin/busybox", "sh", "-c",
            "ip route; ip -6 route 2>/dev/null; ! ip route | grep -q '^default'"]),
    }
    for obj in pods.values():
        kubectl.create({**obj, "metadata": {**obj["metadata"], "namespace": namespace}})
    return {key: obj["metadata"]["name"] for key, obj in pods.items()}


def _container_runtime(container_id: str) -> dict | None:
    """containerd's Runtime record of a container: Name (the shim) and Options (None if not
    inspectable)."""
    sock = CLUSTER_DIR / "containerd" / "containerd.sock"
    ctr = shutil.which("ctr")
    if not ctr or not sock.exists():
        return None
    proc = subprocess.run([ctr, "--address", str(sock), "-n", "k8s.io", "containers", "info",
                           container_id], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout).get("Runtime", {})


def _runtime_binary(container_id: str) -> str | None:
    """Which OCI runtime binary containerd used for a container (None if not inspectable)."""
    runtime = _container_runtime(container_id)
    if runtime is None:
        return None
    options = runtime.get("Options") or {}
    if "binary_name" in options:
        return options["binary_name"]
    # ctr 1.6 prints the options as a protobuf Any: containerd.runc.v1.Options, whose field 6
    # is binary_name.
    if "value" in options:
        return _proto_string_field(base64.b64decode(options["value"]), 6)
    return None


def _proto_string_field(data: bytes, field: int) -> str | None:
    def varint(i: int) -> tuple[int, int]:
        shift = value = 0
        while True:
            b = data[i]
            value |= (b & 0x7F) << shift
            i += 1
            if not b & 0x80:
                return value, i
            shift += 7

    i = 0
    while i < len(data):
        key, i = varint(i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(i)
        elif wire == 2:
            length, i = varint(i)
            if number == field:
                return data[i:i + length].decode()
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            return None
    return None


def test_server_and_kubelet_version(kubectl: Kubectl):
    version = json.loads(kubectl.run("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == K8S_VERSION
    node = kubectl.json("get", "node", "127.0.0.1")
    assert node["status"]["nodeInfo"]["kubeletVersion"] == K8S_VERSION
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_pod_runs_to_completion(kubectl: Kubectl, namespace: str, started_pods, runtime: str):
    p = wait_succeeded(kubectl, namespace, started_pods[runtime])
    assert p["spec"]["runtimeClassName"] == runtime
    cid = p["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    binary = _runtime_binary(cid)
    if binary is None and os.geteuid() == 0:
        pytest.fail(f"could not find which OCI runtime ran container {cid}")
    if binary is not None:  # non-root runs cannot reach the private containerd
        assert Path(binary).name == runtime


def test_gvisor_pod_runs_inside_gvisor(kubectl: Kubectl, namespace: str, started_pods):
    name = started_pods["gvisor"]
    p = wait_succeeded(kubectl, namespace, name)
    assert p["spec"]["runtimeClassName"] == "gvisor"
    cid = p["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    runtime = _container_runtime(cid)
    if runtime is None and os.geteuid() == 0:
        pytest.fail(f"could not inspect container {cid}")
    if runtime is not None:
        assert runtime["Name"] == "io.containerd.runsc.v1"
    kernel_log = kubectl.run("-n", namespace, "logs", name).stdout
    assert "Starting gVisor" in kernel_log, kernel_log


def test_pod_has_no_default_route(kubectl: Kubectl, namespace: str, started_pods):
    name = started_pods["route"]
    wait_succeeded(kubectl, namespace, name)
    routes = kubectl.run("-n", namespace, "logs", name).stdout
    assert routes.strip(), "pod printed no routes"
    assert "default" not in routes, routes


def test_missing_runtimeclass_is_refused(kubectl: Kubectl, namespace: str):
    rc_name = "sandbench-no-such-class"
    obj = pod("no-such-class", rc_name, ["/bin/busybox", "true"])
    obj["metadata"]["namespace"] = namespace
    proc = kubectl.create(obj, check=False)
    assert proc.returncode != 0
    assert f'pod rejected: RuntimeClass "{rc_name}" not found' in proc.stderr, proc.stderr


def test_runtimeclass_without_handler_fails_sandbox(kubectl: Kubectl, namespace: str):
    created_rc = False
    rc = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
          "metadata": {"name": "kata", "labels": {"app.kubernetes.io/part-of": "sandbench"}},
          "handler": "kata"}
    if kubectl.run("get", "runtimeclass", "kata", check=False).returncode != 0:
        kubectl.create(rc)
        created_rc = True
    obj = pod("kata-pod", "kata", ["/bin/busybox", "true"])
    obj["metadata"]["namespace"] = namespace
    try:
        # The RuntimeClass admission plugin may not have seen the new object yet.
        _wait(lambda: kubectl.create(obj, check=False).returncode == 0
              or kubectl.run("-n", namespace, "get", "pod", "kata-pod",
                             check=False).returncode == 0, 15, "kata pod to be accepted", 0.5)

        def sandbox_failed():
            for e in _events(kubectl, namespace, "kata-pod"):
                if e.get("reason") == "FailedCreatePodSandBox":
                    return e
            return None

        event = _wait(sandbox_failed, 60, "FailedCreatePodSandBox event", 0.5)
        assert event["type"] == "Warning"
        assert event["message"].endswith('no runtime for "kata" is configured'), event["message"]
        phase = kubectl.json("-n", namespace, "get", "pod", "kata-pod")["status"]["phase"]
        assert phase == "Pending"
    finally:
        kubectl.run("-n", namespace, "delete", "pod", "kata-pod", "--grace-period=0",
                    "--wait=false", check=False)
        if created_rc:
            kubectl.run("delete", "runtimeclass", "kata", "--wait=false", check=False)


def _node_ns() -> bool:
    """Whether up.sh ran containerd and the kubelet in the node namespace (cluster.env)."""
    env = CLUSTER_DIR / "cluster.env"
    return env.exists() and "NODE_NS='1'" in env.read_text()


# In the KubeVirt phase (SANDBENCH_KUBEVIRT=1 run-tests.sh), the cluster with the node namespace.
@pytest.mark.kubevirt
def test_hostpid_pod_sees_the_node_init(kubectl: Kubectl, namespace: str):
    """What KubeVirt's virt-handler needs: a privileged hostPID pod sees node-init as /proc/1,
    and can read its root and mount namespace (this machine's own PID 1 refuses both)."""
    if not _node_ns():
        pytest.skip("cluster started without the node namespace (SANDBENCH_NODE_NS=1)")
    obj = pod("hostpid-runc", "runc", [
        "/bin/busybox", "sh", "-c",
        "b=/bin/busybox; $b tr '\\0' ' ' </proc/1/cmdline; echo; $b readlink /proc/1/root; "
        "$b readlink /proc/1/ns/mnt; $b ls /proc/1/root/dev/ >/dev/null && echo dev-readable"])
    obj["spec"]["hostPID"] = True
    obj["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    obj["metadata"]["namespace"] = namespace
    kubectl.create(obj)
    wait_succeeded(kubectl, namespace, "hostpid-runc")
    out = kubectl.run("-n", namespace, "logs", "hostpid-runc").stdout.splitlines()
    assert "node-init.py" in out[0] and str(CLUSTER_DIR) in out[0], out
    assert out[1] == "/", out
    assert out[2].startswith("mnt:["), out
    assert out[3] == "dev-readable", out
