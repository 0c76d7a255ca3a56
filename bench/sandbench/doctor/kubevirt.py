"""`sandbench doctor --backend kubernetes --runtimes <a kubevirt runtime>`: is KubeVirt
installed and running here, and how?

Before any VMI is created: which kubevirt.io resources the API serves (the CRDs), the KubeVirt
CR with its phase, version and feature gates (ImageVolume changes how containerDisks are
mounted), its components' readiness, and the nodes that offer KVM. A cluster with the CRD and
nothing else accepts VMIs and never runs them; this says so first.
"""

from __future__ import annotations

from sandbench.backends import Finding
from sandbench.backends.kubernetes import KubernetesBackend
from sandbench.backends.kubernetes.kubevirt import install
from sandbench.backends.kubernetes.kubevirt.manifests import GROUP, PLURAL, VERSION


def findings(backend: KubernetesBackend, runtimes: list[str]) -> list[Finding]:
    """The KubeVirt findings, when a requested runtime is of kind kubevirt; else none."""
    if not backend.vm_runtimes.intersection(runtimes):
        return []
    found = backend.kubevirt_installation()
    if found.error:
        return [Finding("kubevirt", False, found.error, "see `sandbench rbac`")]
    if PLURAL not in found.served:
        return [Finding("kubevirt API", False, "not installed: the API server serves no "
                        f"{GROUP}/{VERSION} {PLURAL}",
                        install.INSTALL_FIX)]
    result = [Finding("kubevirt API", True, f"{GROUP}/{VERSION} serves "
                      f"{', '.join(found.served)}")]
    if found.cr is None:
        result.append(Finding("kubevirt CR", False, "no KubeVirt CR: the CRDs are there but no "
                              "KubeVirt operator or controller runs, so VMIs would be accepted "
                              "and never run", install.INSTALL_FIX))
    else:
        result += _cr_findings(found)
    result.append(_kvm_finding(found))
    return result


def _cr_findings(found: install.Installation) -> list[Finding]:
    deployed = found.phase == "Deployed"
    result = [Finding("kubevirt CR", deployed, f"{found.cr}: phase {found.phase or '(none)'}, "
                      f"version {found.version or '(not reported)'}",
                      None if deployed else "wait for virt-operator, or read its logs")]
    result.append(Finding("kubevirt components", found.components_ready,
                          found.components_text()))
    gates = ", ".join(found.feature_gates) or "none"
    disabled = f"; disabled: {', '.join(found.disabled_gates)}" if found.disabled_gates else ""
    serial = " (serial console log disabled cluster-wide; sandbench's VMIs turn it back on)" \
        if found.serial_log_disabled else ""
    result.append(Finding("kubevirt feature gates", True, f"{gates}{disabled}; ImageVolume "
                          f"{found.image_volume}{serial}"))
    return result


def _kvm_finding(found: install.Installation) -> Finding:
    if found.kvm_nodes:
        nodes = ", ".join(f"{n} ({v})" for n, v in found.kvm_nodes.items())
        return Finding("kvm nodes", True, f"{install.KVM_RESOURCE} on {nodes}")
    if found.use_emulation:
        return Finding("kvm nodes", True, f"no node offers {install.KVM_RESOURCE}; useEmulation "
                       "is on: VMIs run under TCG, not representative of KVM")
    return Finding("kvm nodes", False,
                   f"no node offers {install.KVM_RESOURCE} (virt-handler advertises it where "
                   "/dev/kvm works)", "nodes with /dev/kvm, or useEmulation (TCG)")
