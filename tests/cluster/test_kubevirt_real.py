"""The kubevirt runtimes on a real KubeVirt (v1.7.0, built here, deployed by virt-operator with
useEmulation: QEMU under TCG inside virt-launcher): `SANDBENCH_KUBEVIRT=1 run-tests.sh`, which
brings the cluster up with the node namespace and runs kubevirt-up.sh first.

What the stand-in controller used to assert now holds against the real components: a VMI's
phases from the watch (created, scheduled, launcher pod running, Running), the guest's from its
serial console as the real guest-console-log sidecar logs it (kernel, init, workload), start,
syscall and io through the same guest, disks and workload binaries as the local qemu runtime,
every VMI and launcher pod gone after the run, and the emulation said everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_spec, sandbench
from sandbench import image
from sandbench.backends.kubernetes import api, manifests
from sandbench.backends.kubernetes.cri import NodeCri
from sandbench.backends.kubernetes.kubevirt.manifests import GROUP, PLURAL, VERSION
from sandbench.results import load_run

pytestmark = [pytest.mark.cluster, pytest.mark.kubevirt]

IMAGE = os.environ.get("SANDBENCH_WORKLOAD_IMAGE", "")
CLUSTER_DIR = Path(os.environ.get("SANDBENCH_CLUSTER_DIR", "/var/tmp/sandbench-cluster"))
SOCKET = CLUSTER_DIR / "containerd" / "containerd.sock"
CRICTL = os.environ.get("SANDBENCH_CRICTL", "")
#: The images a VMI boots from, as the kubevirt runtimes name them.
GUEST_IMAGES = ("containerdisk", "datadisk", "kernelboot")
RUNTIME = "kubevirt-vm"
KUBEVIRT_VERSION = "v1.7.0"
#: The VMI's phases from the watch, then the guest's from its console.
PHASES = ("create_to_scheduled", "scheduled_to_running", "create_to_running",
          "create_to_kernel", "create_to_init", "create_to_workload")


@pytest.fixture(scope="module")
def apis() -> api.Apis:
    return api.connect()


@pytest.fixture(scope="module")
def vm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `sandbench run` of start (two rounds), syscall and io (the data disk), each case in
    its own VMI: the whole path, through the CLI."""
    return run_spec({
        "profile": "quick", "backend": "kubernetes", "runtimes": [RUNTIME],
        "kubernetes": {"image": IMAGE, "pull_policy": "Never", "kubelet_metrics": False},
        "workloads": {"start": {"rounds": 2, "warmup": 0},
                      "syscall": {"rounds": 1, "warmup": 0, "params": {"iterations": 20000}},
                      "io": {"rounds": 1, "warmup": 0,
                             "params": {"size_mib": 4, "targets": ["volume"]}}}},
        tmp_path_factory.mktemp("kubevirt"), "--no-report", timeout=1500)


def test_doctor_says_the_version_and_emulation() -> None:
    result = sandbench("doctor", "--backend", "kubernetes", "--runtimes", RUNTIME, "--image",
                       IMAGE, "--pull-policy", "Never", env={"COLUMNS": "400"})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    cr = next(line for line in out.splitlines() if "│ kubevirt CR " in line)
    assert "Deployed" in cr and KUBEVIRT_VERSION in cr
    usable = next(line for line in out.splitlines() if f"│ {RUNTIME} " in line)
    assert "useEmulation: TCG, not representative of KVM" in usable


def test_every_phase_of_a_real_vmi_is_measured(vm_run: Path) -> None:
    run = load_run(vm_run)
    assert run.meta["status"] == "completed" and run.meta["valid"] is True
    samples = run.samples
    failed = samples[samples["status"] != "ok"]
    assert failed.empty, failed[["workload", "metric", "reason"]].to_string()
    start = samples[(samples["workload"] == "start") & ~samples["warmup"]]
    for phase in PHASES:
        values = start[start["metric"] == phase]["value"]
        assert len(values) == 2 and (values > 0).all(), phase
    # The guest's marks come in the order it made them. Not against the VMI's Running: on a
    # busy host virt-handler reports it after the guest has already printed (CI saw Running
    # at 11.8 s and the first kernel output at 9.6 s).
    for _, one in start.groupby("round"):
        value = dict(zip(one["metric"], one["value"]))
        assert (value["create_to_scheduled"] <= value["create_to_running"]), value
        assert (value["create_to_kernel"] <= value["create_to_init"]
                <= value["create_to_workload"]), value
    # Read from the guest (its console), not assumed: this host has no usable KVM.
    assert set(start["labels"].map(lambda labels: labels.get("accel"))) == {"tcg"}


def test_syscall_and_io_through_the_real_console(vm_run: Path) -> None:
    samples = load_run(vm_run).samples
    for workload in ("syscall", "io"):
        rows = samples[samples["workload"] == workload]
        assert not rows.empty and (rows["status"] == "ok").all(), workload
        assert pd.to_numeric(rows["value"]).gt(0).all(), workload


def test_the_run_says_it_was_emulated_and_by_which_kubevirt(vm_run: Path) -> None:
    run = load_run(vm_run)
    facts = run.meta["runtimes"][RUNTIME]
    assert facts["emulated"] is True and facts["accel"] == "tcg"
    assert facts["kubevirt"]["version"] == KUBEVIRT_VERSION
    assert facts["kubevirt"]["use_emulation"] is True
    assert "guest-console-log" in facts["console"]
    # What ran the VM, from the VMIs' own status: QEMU 10.0's q35 (trixie's QEMU in the
    # virt-launcher image kubevirt_images.py built) and that image.
    seen = run.meta["environment"]["kubevirt"]
    assert seen["machine_types"] == ["pc-q35-10.0"]
    assert seen["launcher_images"] == [f"localhost/sandbench/kubevirt/virt-launcher:{KUBEVIRT_VERSION}"]
    # libvirt and QEMU as the launcher's own log says: the versions of the Debian packages
    # kubevirt_images.py put in that image (its images.json).
    versions = seen["launcher_versions"]
    built = json.loads((Path(os.environ["SANDBENCH_CACHE"]) / "kubevirt" / KUBEVIRT_VERSION
                        / "images" / "images.json").read_text())
    packages = built["images"]["virt-launcher"]["debian_packages"]
    assert packages["libvirt-daemon"].startswith(versions["libvirt"] + "-"), versions
    assert packages["qemu-system-x86"].startswith(f"1:{versions['qemu']}+"), versions
    assert "compute container" in versions["source"]


def test_no_vmi_launcher_pod_or_namespace_is_left(vm_run: Path, apis: api.Apis) -> None:
    namespace = manifests.namespace_name(vm_run.name)
    names = [n.metadata.name for n in apis.core.list_namespace(label_selector=manifests.RUN_ID).items]
    assert namespace not in names
    vmis = apis.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    assert [v["metadata"]["name"] for v in vmis
            if v["metadata"]["namespace"] == namespace] == []
    launchers = apis.core.list_pod_for_all_namespaces(label_selector="kubevirt.io=virt-launcher")
    assert [p.metadata.name for p in launchers.items if p.metadata.namespace == namespace] == []


@pytest.fixture(scope="module")
def vm_pull_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A start VMI with its three images removed from the node first (cold), and one with
    them present (warm), each state verified through the node's CRI: the guest's archives
    pushed with skopeo into up.sh's registry and the VMI naming them there. A cold state
    removes each image under every name it has, so the imported ones the other tests use are
    imported again afterwards, as run-tests.sh did."""
    address = CLUSTER_DIR / "registry" / "address"
    if not address.exists():
        pytest.skip("up.sh ran no registry (Debian's docker-registry is not installed)")
    built = image.load_cached(Path(os.environ["SANDBENCH_CACHE"]))
    assert built is not None and built.guest is not None and CRICTL
    guest = built.guest
    archives = {"containerdisk": guest.containerdisk_archive, "datadisk": guest.datadisk_archive,
                "kernelboot": guest.kernelboot_archive}
    refs = {}
    for kind, archive in archives.items():
        repository, _, tag = guest.names[kind].rpartition(":")
        refs[kind] = f"{address.read_text().strip()}/{repository.split('/', 1)[1]}:{tag}"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"oci-archive:{archive}", f"docker://{refs[kind]}"],
                       check=True, capture_output=True, timeout=300)
    try:
        return run_spec({
            "profile": "quick", "backend": "kubernetes", "runtimes": [RUNTIME],
            "kubernetes": {"image": IMAGE, "pull_policy": "IfNotPresent", "kubelet_metrics": False,
                           "kubevirt": {f"{kind}_image": ref for kind, ref in refs.items()}},
            "workloads": {"start": {"rounds": 1, "warmup": 0}}},
            tmp_path_factory.mktemp("kubevirt-pull"), "--workloads", "start", "--pull", "both",
            "--cri-endpoint",
            f"unix://{SOCKET}", "--crictl", CRICTL, "--no-report", timeout=1200)
    finally:
        node = NodeCri(CRICTL, f"unix://{SOCKET}", 120)
        for kind, archive in archives.items():
            if not node.status(guest.names[kind]).present:
                subprocess.run(["ctr", "--address", str(SOCKET), "-n", "k8s.io", "images",
                                "import", str(archive)], check=True, capture_output=True,
                               timeout=300)
            assert node.status(guest.names[kind]).present, kind


def test_a_vmis_images_pulled_cold_and_warm_verified(vm_pull_run: Path) -> None:
    run = load_run(vm_pull_run)
    samples = run.samples
    failed = samples[samples["status"] != "ok"]
    assert failed.empty, failed[["workload", "metric", "reason"]].to_string()
    assert set(samples["workload"]) == {"start"}
    start = samples[~samples["warmup"]]
    by_state = {state: rows for state, rows in start.groupby(
        start["labels"].map(lambda labels: labels.get("pull")))}
    assert set(by_state) == {"cold", "warm"}
    for state, rows in by_state.items():
        labels = rows["labels"].iloc[0]
        assert labels["pull_check"] == "cri-imagestatus", state
        assert labels["pull_images"] == ",".join(GUEST_IMAGES), state
        assert int(labels["image_size"]) > 0 and int(labels["image_layers"]) >= 3, state
        assert set(PHASES) <= set(rows["metric"]), state
    state = run.meta["environment"]["kubevirt"]["image_state"]
    assert list(state["vmis_verified"].values()) == [{"cold": 1, "warm": 1}] * 3
