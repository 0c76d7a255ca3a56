"""Cold and warm image states against a real CRI, without a cluster: a private containerd
(Debian's 1.6, its CRI plugin on a socket in a temporary directory) pulling from a real
registry (Debian's docker-registry on 127.0.0.1, plain HTTP, through a hosts.toml as up.sh
writes it), the workload image pushed into it with skopeo, crictl v1.34.0 asking. The same
calls over SSH (a real sshd on 127.0.0.1, tests/sshd.py), as a harness off the node makes them.

The kubelet's part (it pulls for a cold pod) is stood for by crictl pull; the whole path with
pods is tests/cluster/test_image_pull_cluster.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbench.backends.kubernetes.cri import NodeCri, over_ssh
from sandbench.backends.kubernetes.pull import PullStates, StateNotReached
from sandbench.image import WorkloadImage
from sandbench.spec import SshTarget
from sshd import free_port, running_sshd

pytestmark = pytest.mark.integration

CRICTL = Path(os.environ.get("SANDBENCH_CACHE", Path.home() / ".cache" / "sandbench")) / \
    "crictl" / "v1.34.0" / "bin" / "crictl"
NEEDS = {"/usr/bin/containerd": "containerd", "/usr/bin/docker-registry": "docker-registry",
         "/usr/bin/skopeo": "skopeo", "/usr/bin/ctr": "containerd"}


def daemon(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def wait_until(check: list[str], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what}: exited {process.returncode}"
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not ready in 30 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the daemon this test started (its PID), then wait; SIGKILL if it lingers."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory,
         workload_image: WorkloadImage) -> Iterator[tuple[NodeCri, str, Path]]:
    """A containerd and a registry holding the workload image: the CRI, the image's
    reference in the registry, containerd's socket."""
    missing = sorted({pkg for path, pkg in NEEDS.items() if not Path(path).exists()})
    if missing or os.geteuid() != 0:
        pytest.skip(f"needs root and {', '.join(missing) or 'nothing else'}")
    if not CRICTL.exists():
        pytest.skip(f"no {CRICTL}: run tests/cluster/build-crictl.sh")
    root = tmp_path_factory.mktemp("cri")
    registry = f"127.0.0.1:{free_port()}"
    (root / "registry.yml").write_text(
        f"version: 0.1\nlog: {{level: warn, accesslog: {{disabled: true}}}}\n"
        f"storage: {{filesystem: {{rootdirectory: {root}/data}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '{registry}', secret: test}}\n")
    hosts = root / "certs.d" / registry
    hosts.mkdir(parents=True)
    (hosts / "hosts.toml").write_text(f'server = "http://{registry}"\n\n'
                                      f'[host."http://{registry}"]\n'
                                      '  capabilities = ["pull", "resolve"]\n')
    socket_path = root / "containerd.sock"
    (root / "containerd.toml").write_text(f"""version = 2
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{socket_path}"
[ttrpc]
  address = "{socket_path}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "{root}/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{root}/certs.d"
""")
    started = [daemon(["/usr/bin/docker-registry", "serve", str(root / "registry.yml")],
                      root / "registry.log")]
    try:
        wait_until(["curl", "-fsS", f"http://{registry}/v2/"], "registry", started[0])
        # A proxy that goes nowhere, as up.sh gives its containerd: loopback bypasses it.
        dead_proxy = "http://127.0.0.1:9"
        started.append(daemon(["env", f"HTTP_PROXY={dead_proxy}", f"HTTPS_PROXY={dead_proxy}",
                               "/usr/bin/containerd", "--config", str(root / "containerd.toml")],
                              root / "containerd.log"))
        ref = f"{registry}/sandbench/workload:test"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"oci-archive:{workload_image.oci_archive}", f"docker://{ref}"],
                       check=True, capture_output=True, timeout=300)
        wait_until(["ctr", "--address", str(socket_path), "version"], "containerd", started[1])
        yield NodeCri(str(CRICTL), f"unix://{socket_path}", 120), ref, socket_path
    finally:
        for process in reversed(started):
            stop(process)


def test_cold_then_warm_then_cold_with_a_second_name(node: tuple[NodeCri, str, Path],
                                                     workload_image: WorkloadImage) -> None:
    cri, ref, socket_path = node
    pulls = PullStates(ref, cri)
    assert pulls.before("cold") == {"pull": "cold", "pull_check": "cri-imagestatus"}
    assert not cri.status(ref).present
    cri.pull(ref)  # what the kubelet does for a cold pod
    after = pulls.after("cold")
    assert int(after["image_size"]) > 10_000_000 and after["image_layers"] == "1"
    assert pulls.before("warm")["pull"] == "warm"
    # The same image imported under a second name, as up.sh imports it: cold takes both.
    subprocess.run(["ctr", "--address", str(socket_path), "-n", "k8s.io", "images", "import",
                    str(workload_image.oci_archive)], check=True, capture_output=True, timeout=300)
    assert cri.status(workload_image.name).present
    pulls.before("cold")
    assert not cri.status(workload_image.name).present
    assert pulls.known_id is not None and not cri.status(pulls.known_id).present
    with pytest.raises(StateNotReached, match="finds no .* after the pod"):
        pulls.after("cold")  # nobody pulled it


def test_warm_pulls_an_absent_image_itself(node: tuple[NodeCri, str, Path]) -> None:
    cri, ref, _ = node
    if cri.status(ref).present:
        cri.remove(ref)
    assert PullStates(ref, cri).before("warm")["image_layers"] == "1"
    assert cri.status(ref).present


def test_the_same_calls_over_ssh(node: tuple[NodeCri, str, Path], tmp_path: Path) -> None:
    cri, ref, _ = node
    with running_sshd(tmp_path / "sshd") as server:
        target = SshTarget(host="127.0.0.1", port=server.port, key_file=str(server.client_key),
                           known_hosts=str(server.known_hosts()))
        remote = NodeCri(cri.crictl, cri.endpoint, cri.timeout_s, over_ssh(target))
        assert remote.version().startswith("containerd ")
        pulls = PullStates(ref, remote)
        assert pulls.before("cold")["pull_check"] == "cri-imagestatus"
        assert not cri.status(ref).present  # asked locally: the remote call did remove it
        assert pulls.before("warm")["image_layers"] == "1"


def test_unreachable_ssh_is_a_cri_error(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-client is not installed")
    target = SshTarget(host="127.0.0.1", port=free_port(), fingerprint="SHA256:" + "A" * 43)
    remote = NodeCri("crictl", "unix:///x.sock", 5, over_ssh(target))
    with pytest.raises(StateNotReached,
                       match="warm not verified: crictl over SSH: cannot connect"):
        PullStates("x", remote).before("warm")
