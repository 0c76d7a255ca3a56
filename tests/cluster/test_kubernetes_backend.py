"""The kubernetes backend against the real test cluster (tests/cluster/up.sh): end to end on
runc and crun, each error case with the cluster's own message, interrupt and gc leaving
nothing behind, the harness as its least-privilege ServiceAccount, and API retries."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from conftest import interrupt, run_spec, sandbench, start_run
from faulty_proxy import FaultyProxy
from sandbench.backends.kubernetes import KubernetesBackend, api, manifests
from sandbench.backends.kubernetes.apply import apply
from sandbench.model import ClockOffset
from sandbench.results import load_run
from sandbench.spec import KubernetesSettings, Resources
from sandbench.workloads import get

pytestmark = pytest.mark.cluster

CLUSTER_DIR = Path(os.environ.get("SANDBENCH_CLUSTER_DIR", "/var/tmp/sandbench-cluster"))
IMAGE = os.environ.get("SANDBENCH_WORKLOAD_IMAGE", "")
KUBELET_URL = "https://127.0.0.1:10250/metrics"
NODE = "127.0.0.1"


def make_spec(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "profile": "quick", "backend": "kubernetes", "runtimes": ["runc", "crun", "gvisor"],
        "kubernetes": {"image": IMAGE, "pull_policy": "Never", "kubelet_url": KUBELET_URL},
        "workloads": {"start": {"rounds": 3, "warmup": 1},
                      "syscall": {"rounds": 1, "warmup": 0, "params": {"iterations": 20000}},
                      "io": {"rounds": 1, "warmup": 0, "params": {"size_mib": 8}}},
    }
    spec.update(extra)
    return spec


@pytest.fixture(scope="module")
def apis() -> api.Apis:
    return api.connect()


def run_namespaces(apis: api.Apis) -> list[str]:
    items = apis.core.list_namespace(label_selector=f"{manifests.RUN_ID}").items
    return [n.metadata.name for n in items if n.metadata is not None]


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory: pytest.TempPathFactory, apis: api.Apis) -> Path:
    return run_spec(make_spec(), tmp_path_factory.mktemp("cluster"))


def test_runc_crun_and_gvisor_end_to_end(cluster_run: Path) -> None:
    run = load_run(cluster_run)
    assert run.meta["status"] == "completed" and run.meta["valid"] is True
    samples = run.samples
    assert (samples["status"] == "ok").all(), samples[samples["status"] != "ok"][["reason"]]
    assert set(samples["runtime"]) == {"runc", "crun", "gvisor"}
    assert set(samples["workload"]) == {"start", "syscall", "io"}
    start = samples[(samples["workload"] == "start") & ~samples["warmup"]]
    phases = {"create_to_scheduled", "scheduled_to_running", "create_to_running",
              "create_to_workload", "create_to_ready"}
    for runtime in ("runc", "crun", "gvisor"):
        assert phases <= set(start[start["runtime"] == runtime]["metric"])
    workload = start[start["metric"] == "create_to_workload"]
    assert workload["clock"].str.contains("offset").all()
    # The kubelet's own figures, read around each start round.
    assert "kubelet_run_podsandbox" in set(start["metric"])
    io = samples[samples["workload"] == "io"]
    for runtime in ("runc", "crun", "gvisor"):
        mine = io[io["runtime"] == runtime]
        assert {lab["target"] for lab in mine["labels"]} == {"rootfs", "volume"}


def test_run_metadata_names_the_cluster(cluster_run: Path) -> None:
    meta = load_run(cluster_run).meta
    assert meta["environment"]["cluster"]["server_version"] == "v1.34.4"
    assert meta["environment"]["node"]["container_runtime"].startswith("containerd://")
    assert meta["runtimes"]["runc"]["handler"] == "runc"
    offsets = meta["environment"]["clock_offsets"]
    assert set(offsets) == {"runc", "crun", "gvisor"}
    assert all("offset_ns" in o for o in offsets.values()), offsets
    # Port-forward cannot reach into gVisor's netstack: the harness, on the node here, goes
    # to the clock pod's IP instead.
    assert "direct connection to the pod IP" in offsets["gvisor"]["method"]
    # Measured again after the last step: a container reads the node's own clock, and each
    # measurement brackets the sandbox's read, so the two can never differ by more than both
    # uncertainties.
    drift = meta["environment"]["clock_drift"]
    assert set(drift) == {"runc", "crun", "gvisor"}
    for runtime, record in drift.items():
        assert record["start_offset_ns"] == offsets[runtime]["offset_ns"]
        assert isinstance(record["end_offset_ns"], int) and record["drifted"] is False
        assert record["affects"] == ["create_to_workload"]


def test_report_renders_and_namespace_is_gone(cluster_run: Path, apis: api.Apis) -> None:
    assert (cluster_run / "report.html").is_file()
    namespace = manifests.namespace_name(cluster_run.name)
    with pytest.raises(ApiException) as gone:
        apis.core.read_namespace(namespace)
    assert gone.value.status == 404


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[KubernetesBackend]:
    settings = KubernetesSettings(image=IMAGE, pull_policy="Never", schedule_timeout_s=5,
                                  kubelet_metrics=False)
    created = KubernetesBackend(settings, Resources(), f"errors-{int(time.time())}", tmp_path)
    created.prepare(["runc"])
    yield created
    created.cleanup()


def start_case() -> Any:
    start = get("start")
    return start.cases(start.params({"linger_s": 1}))[0]


def timed(backend: KubernetesBackend, runtime: str, name: str) -> tuple[str, float]:
    began = time.monotonic()
    execution = backend.execute(runtime, start_case(), name, 120.0)
    return execution.error or "", time.monotonic() - began


@pytest.fixture
def runtime_class(apis: api.Apis) -> Iterator[Any]:
    applied: list[str] = []

    def make(name: str) -> None:
        apply(apis, [name])
        applied.append(name)

    yield make
    for name in applied:
        apis.node.delete_runtime_class(name)


# kata-clh: a registry runtime whose RuntimeClass up.sh does not apply (its handler is absent).
def test_missing_runtimeclass_is_refused_by_the_api(backend: KubernetesBackend) -> None:
    error, took = timed(backend, "kata-clh", "no-class")
    assert 'RuntimeClass "kata-clh" not found' in error
    assert took < 15


def test_missing_runtimeclass_fails_the_run_before_measuring(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(make_spec(runtimes=["runc", "kata-clh"])))
    result = sandbench("run", str(spec), "--out", str(tmp_path / "runs"))
    assert result.returncode == 3
    assert "RuntimeClass 'kata-clh' does not exist" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_handler_the_node_lacks_fails_in_seconds(backend: KubernetesBackend, runtime_class: Any,
                                                 apis: api.Apis) -> None:
    # Handler kata-clh: containerd here has runc, crun and runsc. Kata's classes select nodes
    # labelled for Kata, so label this one for the pod to be scheduled at all.
    runtime_class("kata-clh")
    apis.core.patch_node(NODE, {"metadata": {"labels": {"katacontainers.io/kata-runtime": "true"}}})
    try:
        error, took = timed(backend, "kata-clh", "no-handler")
    finally:
        apis.core.patch_node(NODE, {"metadata": {"labels": {"katacontainers.io/kata-runtime": None}}})
    assert error.startswith("FailedCreatePodSandBox")
    assert 'no runtime for "kata-clh" is configured' in error
    assert took < 30


def test_unschedulable_pod_fails_with_the_schedulers_reason(backend: KubernetesBackend,
                                                            runtime_class: Any,
                                                            apis: api.Apis) -> None:
    runtime_class("kata-qemu")  # selects katacontainers.io/kata-runtime=true: no node has it
    error, took = timed(backend, "kata-qemu", "no-node")
    assert "unschedulable for 5 s: FailedScheduling" in error
    assert "didn't match Pod's node affinity/selector" in error
    assert took < 30
    # With the label Kata's RuntimeClass schedules, and the missing handler is said at once.
    label = {"metadata": {"labels": {"katacontainers.io/kata-runtime": "true"}}}
    apis.core.patch_node(NODE, label)
    try:
        error, took = timed(backend, "kata-qemu", "no-kata")
        assert 'no runtime for "kata-qemu" is configured' in error
        assert took < 30
    finally:
        apis.core.patch_node(NODE, {"metadata": {"labels": {"katacontainers.io/kata-runtime": None}}})


def test_gvisor_runs_the_probe(tmp_path: Path) -> None:
    """The RuntimeClass gvisor (handler runsc, up.sh's containerd) runs the workload image's
    probe through the harness, and its clock offset is measured: not over port-forward, which
    cannot reach a port inside gVisor's netstack with containerd 1.6 (GVISOR-NOTES.md), but
    straight to the clock pod's IP, which the harness reaches from the node."""
    settings = KubernetesSettings(image=IMAGE, pull_policy="Never", kubelet_metrics=False)
    backend = KubernetesBackend(settings, Resources(), f"gvisor-{int(time.time())}", tmp_path)
    backend.prepare(["gvisor"])
    try:
        execution = backend.execute("gvisor", start_case(), "gvisor-start", 120.0)
        offset = backend.offset("gvisor")
    finally:
        backend.cleanup()
    assert execution.error is None, execution.error
    assert execution.exit_code == 0
    assert '"probe":"start"' in execution.stdout
    assert {"create", "scheduled", "running"} <= {m.name for m in execution.marks}
    assert isinstance(offset, ClockOffset), offset
    assert "direct connection to the pod IP" in offset.method


def test_missing_image_never_pulled(tmp_path: Path) -> None:
    settings = KubernetesSettings(image="localhost/sandbench/absent:1", pull_policy="Never",
                                  kubelet_metrics=False)
    backend = KubernetesBackend(settings, Resources(), f"noimage-{int(time.time())}", tmp_path)
    backend.prepare(["runc"])
    try:
        error, took = timed(backend, "runc", "no-image")
    finally:
        backend.cleanup()
    assert "ErrImageNeverPull" in error
    assert took < 30


def _start_run(tmp_path: Path, rounds: int = 200) -> tuple[subprocess.Popen[str], Path]:
    child = start_run(make_spec(workloads={"start": {"rounds": rounds, "warmup": 0}}), tmp_path)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = list((tmp_path / "runs").glob("*/samples.jsonl"))
        if found and sum(1 for _ in open(found[0])) >= 5:
            return child, found[0].parent
        time.sleep(0.2)
    child.kill()
    raise AssertionError("the run produced no samples")


def test_interrupt_deletes_the_namespace_and_keeps_samples(tmp_path: Path,
                                                           apis: api.Apis) -> None:
    child, run_dir = _start_run(tmp_path)
    stderr = interrupt(child)
    assert child.returncode == 130, stderr[-2000:]
    run = load_run(run_dir)
    assert run.meta["status"] == "interrupted" and len(run.samples) >= 5
    assert manifests.namespace_name(run_dir.name) not in run_namespaces(apis)


def test_gc_deletes_what_a_crashed_run_left(tmp_path: Path, apis: api.Apis) -> None:
    child, run_dir = _start_run(tmp_path)
    child.send_signal(signal.SIGKILL)  # no cleanup at all
    child.communicate(timeout=30)
    namespace = manifests.namespace_name(run_dir.name)
    assert namespace in run_namespaces(apis)
    result = sandbench("gc", "--backend", "kubernetes")
    assert result.returncode == 0, result.stderr
    assert f"deleted namespace {namespace}" in result.stdout
    assert run_namespaces(apis) == []


def test_gc_keeps_the_namespace_of_a_run_still_going(tmp_path: Path, apis: api.Apis) -> None:
    child, run_dir = _start_run(tmp_path)
    namespace = manifests.namespace_name(run_dir.name)
    try:
        result = sandbench("gc", "--backend", "kubernetes")
        assert result.returncode == 0, result.stderr
        assert f"kept namespace {namespace}: its run is still going" in result.stdout
        assert namespace in run_namespaces(apis)
    finally:
        stderr = interrupt(child)
    assert child.returncode == 130, stderr[-2000:]
    assert load_run(run_dir).meta["status"] == "interrupted"


def _service_account_kubeconfig(apis: api.Apis, path: Path) -> None:
    token = apis.core.create_namespaced_service_account_token(
        "sandbench", "sandbench-system", {"spec": {"expirationSeconds": 3600}}).status.token
    ca = (CLUSTER_DIR / "pki" / "ca.crt").read_bytes()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "test", "cluster": {
            "server": "https://127.0.0.1:6443",
            "certificate-authority-data": base64.b64encode(ca).decode()}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "test", "user": "sa"}}],
    }))


def _refusal(call: Any) -> str:
    """The API server's message for a refused call; fails the test if it was allowed."""
    try:
        call()
    except ApiException as exc:
        assert exc.status in (403, 422), exc
        return api.api_message(exc)
    raise AssertionError("the call was allowed")


def _kube_system_pod(core: Any) -> Any:
    """As the harness would make it, but in kube-system (a dry run: nothing is created)."""
    pod = manifests.pod(name="sandbench-escape", run_id="escape", runtime_class="runc",
                        case=start_case(), image=IMAGE, pull_policy="Never", node=NODE,
                        resources=Resources())
    return lambda: core.create_namespaced_pod("kube-system", pod, dry_run="All")


def _wait_for_the_policy(core: Any) -> None:
    # An admission policy is enforced once the API server's informer has compiled it.
    deadline = time.monotonic() + 30
    while True:
        try:
            _kube_system_pod(core)()
        except ApiException as exc:
            if exc.status == 403 and "sandbench-harness" in api.api_message(exc):
                return
        assert time.monotonic() < deadline, "the admission policy was never enforced"
        time.sleep(0.5)


@pytest.fixture
def least_privilege(apis: api.Apis, tmp_path: Path) -> Iterator[Path]:
    """The manifest of `sandbench rbac` applied; a kubeconfig for its ServiceAccount."""
    manifest = sandbench("rbac").stdout
    kubectl = os.environ.get("SANDBENCH_KUBECTL", "kubectl")
    subprocess.run([kubectl, "apply", "-f", "-"], input=manifest, text=True, check=True,
                   capture_output=True)
    try:
        kubeconfig = tmp_path / "sa.kubeconfig"
        _service_account_kubeconfig(apis, kubeconfig)
        _wait_for_the_policy(api.connect(str(kubeconfig)).core)
        yield kubeconfig
    finally:
        # Waited for: the next test's apply fails while sandbench-system is still terminating.
        subprocess.run([kubectl, "delete", "--wait=true", "--timeout=120s", "-f", "-"],
                       input=manifest, text=True, check=False, capture_output=True)


def test_harness_runs_as_its_least_privilege_service_account(tmp_path: Path,
                                                             least_privilege: Path) -> None:
    doctor = sandbench("doctor", "--backend", "kubernetes", "--kubeconfig",
                       str(least_privilege), "--runtimes", "runc", "--image", IMAGE,
                       "--pull-policy", "Never")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "everything the harness uses" in doctor.stdout
    assert "kubelet metrics" in doctor.stdout and "not permitted" in doctor.stdout
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(make_spec(runtimes=["runc"], workloads={
        "start": {"rounds": 2, "warmup": 0}, "syscall": {"rounds": 1, "warmup": 0}})))
    result = sandbench("run", str(spec), "--kubeconfig", str(least_privilege), "--out",
                       str(tmp_path / "runs"), "--no-report")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = list((tmp_path / "runs").iterdir())
    assert (load_run(run_dir).samples["status"] == "ok").all()


def test_least_privilege_account_is_refused_outside_its_namespaces(
        apis: api.Apis, least_privilege: Path) -> None:
    account = api.connect(str(least_privilege)).core
    victim = f"sandbench-rbac-victim-{int(time.time())}"  # sandbench's prefix, not its label
    apis.core.create_namespace({"metadata": {"name": victim}})
    apis.core.create_namespaced_secret(victim, {"metadata": {"name": "token"},
                                                "stringData": {"token": "do-not-read"}})
    try:
        refusals = {
            "pod in kube-system": _refusal(_kube_system_pod(account)),
            "read a Secret": _refusal(lambda: account.read_namespaced_secret("token", victim)),
            "list Secrets": _refusal(lambda: account.list_secret_for_all_namespaces()),
            "delete a namespace": _refusal(lambda: account.delete_namespace(victim)),
            "unlabelled namespace": _refusal(lambda: account.create_namespace(
                {"metadata": {"name": f"{victim}-2"}}, dry_run="All")),
        }
        for what, message in refusals.items():
            print(f"refused, {what}: {message}")
        assert "only in namespaces labelled" in refusals["pod in kube-system"]
        assert "cannot get resource \"secrets\"" in refusals["read a Secret"]
        assert "delete only namespaces labelled" in refusals["delete a namespace"]
        assert "create only namespaces labelled" in refusals["unlabelled namespace"]
        # In a namespace of its own, a pod the harness would not make is refused too.
        own = manifests.namespace(f"rbac-{int(time.time())}")
        account.create_namespace(own, dry_run="All")  # labelled as sandbench's: allowed
        apis.core.create_namespace(own)
        try:
            pod = manifests.pod(name="host", run_id="rbac", runtime_class="runc",
                                case=start_case(), image=IMAGE, pull_policy="Never", node=NODE,
                                resources=Resources())
            pod["spec"]["volumes"] = [{"name": "data", "hostPath": {"path": "/"}}]
            name = own["metadata"]["name"]
            message = _refusal(lambda: account.create_namespaced_pod(name, pod, dry_run="All"))
            assert "only emptyDir volumes" in message
        finally:
            apis.core.delete_namespace(own["metadata"]["name"])
    finally:
        apis.core.delete_namespace(victim)


def test_doctor_on_the_cluster() -> None:
    result = sandbench("doctor", "--backend", "kubernetes", "--runtimes", "runc,crun",
                       "--image", IMAGE, "--pull-policy", "Never")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "runc clock" in result.stdout and "offset" in result.stdout
    missing = sandbench("doctor", "--backend", "kubernetes", "--runtimes", "runc,kata-clh",
                        "--image", IMAGE, "--pull-policy", "Never")
    assert missing.returncode == 3
    assert "does not exist" in missing.stdout


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_server_errors_are_retried(tmp_path: Path, status: int) -> None:
    admin = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    with FaultyProxy(CLUSTER_DIR / "pki", tmp_path, failures=3, status=status) as proxy:
        admin["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
        kubeconfig = tmp_path / "proxied.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(admin))
        began = time.monotonic()
        names = [n.metadata.name for n in api.connect(str(kubeconfig)).core.list_node().items]
        took = time.monotonic() - began
    assert names == [NODE]
    assert [s for _, s in proxy.seen] == [status, status, status, 200]
    # 429 carries Retry-After: 1, which is honoured; 503 gets exponential back-off
    # (urllib3: the first retry at once, then 0.4 s, 0.8 s).
    assert took >= (3.0 if status == 429 else 1.2)
