"""KubeVirt runtimes against the test cluster with no KubeVirt controller: what the harness
does when KubeVirt is absent or half-installed, which only a cluster without it can show.
(Real KubeVirt, deployed in emulation, is test_kubevirt_real.py's, in the KubeVirt phase of
run-tests.sh.)

Before the VMI CRD is installed doctor says KubeVirt is not installed; with KubeVirt v1.9.0's
VMI CRD installed (tests/data/kubevirt, a module fixture, removed after) the API server itself
validates what sandbench creates (dry-run and real creates, unknown fields refused with
fieldValidation=Strict), VMIs are created and deleted for real, doctor says the CRD is there
but no KubeVirt CR or controller is, `sandbench run` refuses the runtime before measuring, the
harness says within a bounded time that nothing processed a VMI it created anyway (deliberately
no controller), and gc deletes what a crashed run left even with KubeVirt's finalizer on it,
which nothing would ever remove.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from conftest import cache_dir, sandbench
from kubevirt_data import cases, crd, render
from sandbench import workloads
from sandbench.backends.kubernetes import KubernetesBackend, api, manifests
from sandbench.backends.kubernetes.kubevirt.manifests import GROUP, PLURAL, VERSION
from sandbench.spec import KubernetesSettings, Resources

pytestmark = pytest.mark.cluster

IMAGE = os.environ.get("SANDBENCH_WORKLOAD_IMAGE", "")
RUNTIME = "kubevirt-vm"
CRD_NAME = "virtualmachineinstances.kubevirt.io"
#: What the tests give KubeVirt to process a VMI before the harness says it did not.
CONTROLLER_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def apis() -> api.Apis:
    return api.connect()


def crd_installed(apis: api.Apis) -> bool:
    try:
        apis.extensions.read_custom_resource_definition(CRD_NAME)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def doctor() -> tuple[int, str]:
    result = sandbench("doctor", "--backend", "kubernetes", "--runtimes", RUNTIME, "--image",
                       IMAGE, "--pull-policy", "Never", env={"COLUMNS": "400"})
    return result.returncode, result.stdout + result.stderr


def row(output: str, check: str) -> str:
    return next(line for line in output.splitlines() if f"│ {check} " in line)


def test_doctor_before_the_crd_says_kubevirt_is_not_installed(apis: api.Apis) -> None:
    assert not crd_installed(apis), f"{CRD_NAME} is already installed: not a fresh cluster"
    code, out = doctor()
    assert code == 3
    assert "NO" in row(out, "kubevirt API") and "not installed" in row(out, "kubevirt API")
    assert "KubeVirt is not installed" in row(out, RUNTIME)


@pytest.fixture(scope="module")
def vmi_crd(apis: api.Apis) -> Iterator[None]:
    """KubeVirt v1.9.0's VMI CRD, installed for this module's tests and removed after."""
    apis.extensions.create_custom_resource_definition(crd())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = apis.extensions.read_custom_resource_definition(CRD_NAME).status
        if any(c.type == "Established" and c.status == "True"
               for c in (status.conditions or []) if status):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"{CRD_NAME} was not Established within 60 s")
    yield
    apis.extensions.delete_custom_resource_definition(CRD_NAME)
    deadline = time.monotonic() + 120
    while crd_installed(apis) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not crd_installed(apis), f"{CRD_NAME} was not removed within 120 s"


@pytest.fixture
def backend(vmi_crd: None) -> Iterator[KubernetesBackend]:
    """The backend, its VMIs named after the guest `sandbench image build` made (their images
    are never pulled: nothing runs them)."""
    settings = KubernetesSettings(image=IMAGE, pull_policy="Never", kubelet_metrics=False,
                                  kubevirt={"controller_timeout_s": CONTROLLER_TIMEOUT_S})
    created = KubernetesBackend(settings, Resources(), f"kv-{int(time.time() * 1000)}",
                                cache_dir())
    created.prepare([RUNTIME])
    yield created
    created.cleanup()


def test_doctor_with_only_the_crd_says_nothing_runs_vmis(vmi_crd: None) -> None:
    code, out = doctor()
    assert code == 3
    api_row = row(out, "kubevirt API")
    assert "yes" in api_row and "virtualmachineinstances" in api_row
    assert "NO" in row(out, "kubevirt CR") and "no KubeVirt CR" in row(out, "kubevirt CR")
    assert "no node offers devices.kubevirt.io/kvm" in row(out, "kvm nodes")
    assert "CRD is installed but there is no KubeVirt CR" in row(out, RUNTIME)


def create(apis: api.Apis, namespace: str, body: dict[str, Any], **options: Any) -> Any:
    return apis.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body,
                                                       **options)


@pytest.mark.parametrize("network", [False, True], ids=["serial-log", "ssh-fallback"])
def test_the_api_server_accepts_every_vmi_sandbench_renders(backend: KubernetesBackend,
                                                           apis: api.Apis, network: bool) -> None:
    for case in cases():
        manifest = render(case, network=network, name=f"dry-{case.workload}-{case.name}",
                          node="127.0.0.1")
        answer = create(apis, backend.namespace, manifest, dry_run="All",
                        field_validation="Strict")
        assert answer["spec"] == manifest["spec"]  # nothing pruned, nothing defaulted away


def test_the_api_server_refuses_a_misspelled_or_mistyped_field(backend: KubernetesBackend,
                                                               apis: api.Apis) -> None:
    manifest = render(cases()[0], name="bad", node="127.0.0.1")
    misspelled = copy.deepcopy(manifest)
    misspelled["spec"]["domain"]["devices"]["logSerialConsol"] = True
    with pytest.raises(ApiException) as refused:
        create(apis, backend.namespace, misspelled, dry_run="All", field_validation="Strict")
    assert 'unknown field "spec.domain.devices.logSerialConsol"' in api.api_message(refused.value)
    mistyped = copy.deepcopy(manifest)
    mistyped["spec"]["domain"]["cpu"]["cores"] = "one"
    with pytest.raises(ApiException) as invalid:
        create(apis, backend.namespace, mistyped, dry_run="All")
    assert invalid.value.status == 422
    assert "spec.domain.cpu.cores in body must be of type integer" in api.api_message(invalid.value)


def test_vmis_are_created_and_deleted_for_real(backend: KubernetesBackend,
                                               apis: api.Apis) -> None:
    case = cases()[0]
    manifest = backend.vms.manifest(RUNTIME, case, "real-vmi", "0123456789abcdef")
    answer = create(apis, backend.namespace, manifest, field_validation="Strict")
    stored = apis.custom.get_namespaced_custom_object(GROUP, VERSION, backend.namespace, PLURAL,
                                                      "real-vmi")
    assert stored["metadata"]["uid"] == answer["metadata"]["uid"]
    assert stored["spec"] == manifest["spec"]
    assert stored["metadata"]["labels"][manifests.RUN_ID] == backend.run_id
    assert stored["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "127.0.0.1"}
    apis.custom.delete_namespaced_custom_object(GROUP, VERSION, backend.namespace, PLURAL,
                                                "real-vmi", grace_period_seconds=0)
    with pytest.raises(ApiException) as gone:
        apis.custom.get_namespaced_custom_object(GROUP, VERSION, backend.namespace, PLURAL,
                                                 "real-vmi")
    assert gone.value.status == 404


def start_case() -> Any:
    start = workloads.get("start")
    return start.cases(start.params({"linger_s": 1}))[0]


def test_no_controller_is_said_clearly_within_a_bounded_time(backend: KubernetesBackend,
                                                             apis: api.Apis) -> None:
    backend.offset(RUNTIME)  # measured first, so what is timed below is the VMI alone
    began = time.monotonic()
    execution = backend.execute(RUNTIME, start_case(), "no-controller", 120.0)
    took = time.monotonic() - began
    assert execution.error is not None
    assert execution.error.startswith("no KubeVirt controller processed VMI 'no-controller' "
                                      f"within {CONTROLLER_TIMEOUT_S:.0f} s")
    assert "is KubeVirt installed and running?" in execution.error
    assert f"sandbench doctor --backend kubernetes --runtimes {RUNTIME}" in execution.error
    assert CONTROLLER_TIMEOUT_S <= took < CONTROLLER_TIMEOUT_S + 10
    found: Any = apis.custom.list_namespaced_custom_object(GROUP, VERSION, backend.namespace,
                                                           PLURAL)
    assert found["items"] == []  # deleted on the way out


def test_run_refuses_the_runtime_before_measuring(tmp_path: Path, vmi_crd: None) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "profile": "quick", "backend": "kubernetes", "runtimes": ["runc", RUNTIME],
        "kubernetes": {"image": IMAGE, "pull_policy": "Never"},
        "workloads": {"start": {"rounds": 1, "warmup": 0}}}))
    result = sandbench("run", str(spec), "--out", str(tmp_path / "runs"))
    assert result.returncode == 3
    assert f"runtime '{RUNTIME}' is not usable here" in result.stderr
    assert "no KubeVirt CR" in result.stderr
    assert not (tmp_path / "runs").exists()


def other_runs(apis: api.Apis) -> list[str]:
    items = apis.core.list_namespace(label_selector=manifests.RUN_ID).items
    return [str(n.metadata.name) for n in items if n.metadata is not None]


def test_gc_deletes_a_crashed_runs_vmi_even_with_kubevirts_finalizer(apis: api.Apis,
                                                                     vmi_crd: None) -> None:
    if other_runs(apis):
        pytest.skip(f"other runs are in flight ({', '.join(other_runs(apis))}); gc would "
                    "delete them too")
    run_id = f"kvgc-{int(time.time())}"
    namespace = manifests.namespace_name(run_id)
    apis.core.create_namespace(manifests.namespace(run_id))
    manifest = render(cases()[0], name="left-behind", run_id=run_id, node="127.0.0.1")
    # As KubeVirt's admission webhook leaves it; with no controller nothing would remove it.
    manifest["metadata"]["finalizers"] = ["kubevirt.io/foregroundDeleteVirtualMachine"]
    deadline = time.monotonic() + 60
    while True:  # the namespace's default ServiceAccount is not needed for a custom object
        try:
            create(apis, namespace, manifest)
            break
        except ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    began = time.monotonic()
    result = sandbench("gc", "--backend", "kubernetes")
    assert result.returncode == 0, result.stderr
    assert f"deleted namespace {namespace}" in result.stdout
    assert time.monotonic() - began < 60
    assert namespace not in other_runs(apis)
