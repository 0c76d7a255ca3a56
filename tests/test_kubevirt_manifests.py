"""The VMIs sandbench renders: valid against KubeVirt v1.9.0's own definitions with unknown
fields refused, stable (golden files; SANDBENCH_UPDATE_GOLDEN=1 rewrites them), booting the
local qemu runtime's guest, and sized exactly like the pods they are compared with."""

from __future__ import annotations

import base64
import copy
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import GOLDEN
from kubevirt_data import IMAGES, NONCE, cases, crd, definitions, errors, kubevirt_runtime, render
from sandbench.backends import guest_protocol
from sandbench.backends.kubernetes import manifests as pod_manifests
from sandbench.backends.kubernetes.kubevirt import descriptors, manifests
from sandbench.model import Case
from sandbench.spec import Resources

UPDATE = os.environ.get("SANDBENCH_UPDATE_GOLDEN") == "1"


def golden_name(case: Case, network: bool = False) -> str:
    name = case.workload if case.name == case.workload else f"{case.workload}_{case.name}"
    return f"vmi_{name}{'_ssh' if network else ''}.yaml"


def dump(manifest: dict[str, Any]) -> str:
    # width: the kernel command line stays on one line, so a change to it is one diff line.
    return yaml.safe_dump(manifest, sort_keys=False, width=1000)


RENDERED = [(case, False) for case in cases()] + [(cases()[0], True)]


@pytest.mark.parametrize(("case", "network"), RENDERED,
                         ids=[golden_name(c, n) for c, n in RENDERED])
def test_rendered_vmi_matches_its_golden_file(case: Case, network: bool) -> None:
    path = GOLDEN / golden_name(case, network)
    text = dump(render(case, network=network))
    if UPDATE:
        path.write_text(text)
    assert path.is_file(), f"{path} missing: run with SANDBENCH_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{path.name} differs: SANDBENCH_UPDATE_GOLDEN=1 rewrites it"


@pytest.mark.parametrize(("case", "network"), RENDERED,
                         ids=[golden_name(c, n) for c, n in RENDERED])
def test_every_rendered_vmi_validates_against_kubevirt_v190(case: Case, network: bool) -> None:
    assert errors(render(case, network=network)) == []


@pytest.mark.parametrize("golden", sorted(p.name for p in GOLDEN.glob("vmi_*.yaml")))
def test_every_golden_vmi_validates(golden: str) -> None:
    assert errors(yaml.safe_load((GOLDEN / golden).read_text())) == []


@pytest.mark.parametrize(("where", "misspelled"), [
    (("spec", "domain", "devices"), "logSerialConsol"),
    (("spec", "domain", "firmware", "kernelBoot", "container"), "kernelpath"),
    (("spec",), "nodeSelecter"),
    (("spec", "domain", "cpu"), "core"),
])
def test_a_misspelled_field_is_rejected(where: tuple[str, ...], misspelled: str) -> None:
    manifest = copy.deepcopy(render(cases()[0]))
    node = manifest
    for key in where:
        node = node[key]
    node[misspelled] = node.pop(next(iter(node)), True)
    found = errors(manifest)
    assert any(misspelled in e and "Additional properties" in e for e in found), found


def test_without_strictness_a_misspelled_field_would_pass() -> None:
    """Why the tests add additionalProperties: false: KubeVirt's own schema does not."""
    import jsonschema

    manifest = render(cases()[0])
    manifest["spec"]["domain"]["devices"]["logSerialConsol"] = True
    lax = jsonschema.Draft4Validator({"definitions": definitions(),
                                      "$ref": "#/definitions/v1.VirtualMachineInstance"})
    assert list(lax.iter_errors(manifest)) == []
    assert errors(manifest) != []


def test_a_wrong_type_is_rejected() -> None:
    manifest = render(cases()[0])
    manifest["spec"]["domain"]["cpu"]["cores"] = "one"
    assert any("cores" in e for e in errors(manifest))


def test_resources_are_exactly_the_pods() -> None:
    resources = Resources(cpus=1.5, memory_mib=768)
    case = cases()[0]
    pod = pod_manifests.pod(name="p", run_id="r", runtime_class="runc", case=case, image="i",
                            pull_policy="Never", node="n", resources=resources)
    vmi = manifests.vmi(name="v", run_id="r", runtime=kubevirt_runtime(), case=case,
                        images=IMAGES, kernel_args="x", pull_policy="Never", node="n",
                        resources=resources)
    container = pod["spec"]["containers"][0]["resources"]
    assert vmi["spec"]["domain"]["resources"] == container
    assert vmi["spec"]["domain"]["resources"]["requests"] == {"cpu": "1500m", "memory": "768Mi"}
    assert vmi["spec"]["domain"]["cpu"]["cores"] == 2  # a VM cannot have half a vCPU
    assert pod["metadata"]["labels"] == vmi["metadata"]["labels"] | {
        pod_manifests.RUNTIME: "runc"}


def test_the_vmi_boots_what_the_local_qemu_runtime_boots() -> None:
    case = cases()[0]
    vmi = render(case)
    boot = vmi["spec"]["domain"]["firmware"]["kernelBoot"]
    assert boot["kernelArgs"] == guest_protocol.kernel_cmdline(case.argv, case.env, NONCE)
    args = dict(word.partition("=")[::2] for word in boot["kernelArgs"].split())
    assert shlex.split(base64.b64decode(args["sandbench_argv"]).decode()) == case.argv
    assert boot["container"]["kernelPath"] == "/boot/vmlinuz"
    assert boot["container"]["initrdPath"] == "/boot/initrd.img"
    disks = vmi["spec"]["domain"]["devices"]["disks"]
    volumes = {v["name"]: v for v in vmi["spec"]["volumes"]}
    # In this order the guest sees them as vda (root) and vdb (/data), as under QEMU.
    assert [volumes[d["name"]]["containerDisk"]["path"] for d in disks] == [
        "/disk/rootfs.qcow2", "/disk/data.qcow2"]
    assert all(d["disk"]["bus"] == "virtio" for d in disks)
    devices = vmi["spec"]["domain"]["devices"]
    assert devices["logSerialConsole"] is True and devices["autoattachPodInterface"] is False
    assert "networks" not in vmi["spec"]


def test_environment_travels_on_the_command_line() -> None:
    (volume,) = [c for c in cases() if c.name == "volume"]
    args = render(volume)["spec"]["domain"]["firmware"]["kernelBoot"]["kernelArgs"]
    env = dict(word.partition("=")[::2] for word in args.split())["sandbench_env"]
    assert "SIZE=32M" in shlex.split(base64.b64decode(env).decode())


def test_ssh_fallback_gets_the_pod_network() -> None:
    vmi = render(cases()[0], network=True)
    assert vmi["spec"]["networks"] == [{"name": "default", "pod": {}}]
    assert vmi["spec"]["domain"]["devices"]["interfaces"] == [
        {"name": "default", "masquerade": {}}]


def test_the_crd_is_the_v1_virtualmachineinstance() -> None:
    loaded = crd()
    assert loaded["metadata"]["name"] == "virtualmachineinstances.kubevirt.io"
    assert [v["name"] for v in loaded["spec"]["versions"]] == ["v1"]


def test_descriptors_refuse_unknown_keys_and_duplicates(tmp_path: Path) -> None:
    good = {"apiVersion": descriptors.API_VERSION, "kind": descriptors.KIND,
            "metadata": {"name": "vm-a"}, "machine": "q35"}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(good))
    assert set(descriptors.runtimes(tmp_path)) == {"vm-a"}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(good))
    with pytest.raises(descriptors.DescriptorError, match="declared twice"):
        descriptors.runtimes(tmp_path)
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**good, "metadata": {"name": "vm-b"},
                                                     "machnie": "q35"}))
    with pytest.raises(descriptors.DescriptorError, match="unknown key 'machnie'"):
        descriptors.runtimes(tmp_path)


def test_the_shipped_descriptor() -> None:
    found = descriptors.runtimes()
    assert "kubevirt-vm" in found
    assert found["kubevirt-vm"].machine == "q35" and found["kubevirt-vm"].disk_bus == "virtio"
