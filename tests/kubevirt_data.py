"""KubeVirt v1.9.0's definitions (tests/data/kubevirt, see SOURCE.md), made strict, and the
VMIs sandbench renders for the tests, shared by the unit and the cluster tests."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from sandbench import workloads
from sandbench.backends import guest_protocol
from sandbench.backends.kubernetes.kubevirt import manifests
from sandbench.backends.kubernetes.kubevirt.descriptors import KubevirtRuntime, runtimes
from sandbench.model import Case
from sandbench.spec import Resources

KUBEVIRT_VERSION = "v1.9.0"
DATA = Path(__file__).parent / "data" / "kubevirt"
SWAGGER = DATA / f"swagger-{KUBEVIRT_VERSION}.json"
CRD = DATA / f"crd-virtualmachineinstance-{KUBEVIRT_VERSION}.yaml"
#: Fixed so the rendered manifests are byte-for-byte stable (golden files).
NONCE = "0123456789abcdef"
RUN_ID = "20260101T000000Z-golden"
IMAGES = manifests.VmImages(containerdisk="localhost/sandbench/containerdisk:golden",
                            datadisk="localhost/sandbench/datadisk:golden",
                            kernelboot="localhost/sandbench/kernelboot:golden")


def strict(schema: Any) -> Any:
    """A copy where every schema with ``properties`` and no ``additionalProperties`` refuses
    other keys: neither KubeVirt document says so, and without it a misspelled field passes."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@cache
def definitions() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SWAGGER.read_text())["definitions"]
    return loaded


def validator() -> jsonschema.Draft4Validator:
    schema = {"definitions": strict(copy.deepcopy(definitions())),
              "$ref": "#/definitions/v1.VirtualMachineInstance"}
    return jsonschema.Draft4Validator(schema)


def errors(manifest: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator().iter_errors(manifest)]


def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD.read_text())
    return loaded


def cases() -> list[Case]:
    """One case of every workload, with the parameters a cluster run uses."""
    found = []
    for name, params in (("start", {"linger_s": 2}), ("syscall", {}), ("io", {})):
        workload = workloads.get(name)
        found += workload.cases(workload.params(params))
    return found


def kubevirt_runtime() -> KubevirtRuntime:
    return runtimes()["kubevirt-vm"]


def render(case: Case, *, network: bool = False, name: str | None = None,
           run_id: str = RUN_ID, node: str = "node-1", pull_policy: str = "IfNotPresent",
           images: manifests.VmImages = IMAGES, nonce: str = NONCE) -> dict[str, Any]:
    return manifests.vmi(
        name=name or f"sandbench-golden-{case.workload}-{case.name}", run_id=run_id,
        runtime=kubevirt_runtime(), case=case, images=images,
        kernel_args=guest_protocol.kernel_cmdline(case.argv, case.env, nonce),
        pull_policy=pull_policy, node=node, resources=Resources(), network=network)
