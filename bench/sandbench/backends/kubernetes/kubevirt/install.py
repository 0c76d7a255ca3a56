"""Is KubeVirt installed and running on this cluster, and how is it set up?

Read without any permission beyond what the harness has: API discovery (which resources the
kubevirt.io/v1 group serves, i.e. which CRDs exist), the KubeVirt CR (its phase, the version it
runs, its feature gates, emulation and serial-console-log settings), the readiness of its
components' pods, and which nodes offer KVM (allocatable ``devices.kubevirt.io/kvm``, which
virt-handler advertises and every launcher pod requests unless emulation is on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from sandbench.backends.kubernetes.api import Apis, api_message, is_not_found
from sandbench.backends.kubernetes.kubevirt.manifests import GROUP, PLURAL, VERSION

KVM_RESOURCE = "devices.kubevirt.io/kvm"
COMPONENTS = ("virt-api", "virt-controller", "virt-handler")
IMAGE_VOLUME = "ImageVolume"
INSTALL_FIX = ("install KubeVirt (virt-operator, then a KubeVirt CR): "
               "https://kubevirt.io/user-guide/cluster_admin/installation/")


@dataclass
class Installation:
    """What the cluster says about KubeVirt."""

    served: list[str] = field(default_factory=list)
    """Resources the API serves in kubevirt.io/v1: one per installed CRD."""
    cr: str | None = None
    """namespace/name of the KubeVirt CR."""
    phase: str | None = None
    version: str | None = None
    """status.observedKubeVirtVersion."""
    feature_gates: list[str] = field(default_factory=list)
    disabled_gates: list[str] = field(default_factory=list)
    use_emulation: bool = False
    serial_log_disabled: bool | None = None
    components: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Component -> (ready, total) pods."""
    kvm_nodes: dict[str, str] = field(default_factory=dict)
    """Node -> allocatable devices.kubevirt.io/kvm, for nodes that have any."""
    error: str | None = None

    @property
    def image_volume(self) -> str:
        """The ImageVolume gate as configured: it changes how containerDisks are mounted."""
        if IMAGE_VOLUME in self.feature_gates:
            return "enabled"
        if IMAGE_VOLUME in self.disabled_gates:
            return "disabled"
        return "not set (the KubeVirt version's default applies)"

    def verdict(self) -> tuple[bool, str, str | None]:
        """(usable, why, fix) for running VMIs."""
        if self.error:
            return False, self.error, None
        if PLURAL not in self.served:
            return False, (f"KubeVirt is not installed: the API server serves no {GROUP}/"
                           f"{VERSION} {PLURAL}"), INSTALL_FIX
        if self.cr is None:
            return False, (f"the {PLURAL}.{GROUP} CRD is installed but there is no KubeVirt CR: "
                           "no KubeVirt operator or controller runs here, so a VMI would be "
                           "accepted and never run"), INSTALL_FIX
        if self.phase != "Deployed":
            return False, (f"KubeVirt CR {self.cr} is in phase {self.phase or '(none)'}, not "
                           "Deployed"), "wait for virt-operator, or read its logs"
        if not self.components_ready:
            return False, (f"KubeVirt CR {self.cr} is Deployed but its components are not all "
                           f"ready: {self.components_text() or 'no component pods'}"), None
        if not self.kvm_nodes and not self.use_emulation:
            return False, (f"no node offers {KVM_RESOURCE} and useEmulation is off: no VMI can "
                           "be scheduled"), ("nodes with /dev/kvm, or developerConfiguration."
                                             "useEmulation: true (TCG, not representative)")
        return True, self.summary(), None

    @property
    def components_ready(self) -> bool:
        return bool(self.components) and all(
            total > 0 and ready == total for ready, total in self.components.values())

    def components_text(self) -> str:
        return ", ".join(f"{name} {ready}/{total} ready"
                         for name, (ready, total) in self.components.items())

    def summary(self) -> str:
        parts = [f"KubeVirt {self.version or '?'} ({self.cr}, {self.phase})"]
        if self.components:
            parts.append(self.components_text())
        parts.append(f"ImageVolume {self.image_volume}")
        if self.use_emulation:
            parts.append("useEmulation: TCG, not representative of KVM")
        return "; ".join(parts)

    def facts(self) -> dict[str, Any]:
        return {"served": self.served, "cr": self.cr, "phase": self.phase,
                "version": self.version, "feature_gates": self.feature_gates,
                "disabled_feature_gates": self.disabled_gates, "image_volume": self.image_volume,
                "use_emulation": self.use_emulation,
                "serial_console_log_disabled": self.serial_log_disabled,
                "components": self.components_text(), "kvm_nodes": self.kvm_nodes,
                "error": self.error}


def _served(apis: Apis) -> list[str]:
    try:
        found = apis.custom.get_api_resources(GROUP, VERSION)
    except ApiException as exc:
        if is_not_found(exc):
            return []
        raise
    return sorted(str(r.name) for r in (found.resources or []))


def _read_cr(apis: Apis, found: Installation) -> None:
    found_list: Any = apis.custom.list_cluster_custom_object(GROUP, VERSION, "kubevirts")
    items = found_list.get("items", [])
    if not items:
        return
    cr = items[0]
    meta, spec, status = cr.get("metadata", {}), cr.get("spec") or {}, cr.get("status") or {}
    configuration = spec.get("configuration") or {}
    developer = configuration.get("developerConfiguration") or {}
    options = configuration.get("virtualMachineOptions") or {}
    found.cr = f"{meta.get('namespace')}/{meta.get('name')}"
    found.phase = status.get("phase")
    found.version = status.get("observedKubeVirtVersion")
    found.feature_gates = list(developer.get("featureGates") or [])
    found.disabled_gates = list(developer.get("disabledFeatureGates") or [])
    found.use_emulation = bool(developer.get("useEmulation"))
    found.serial_log_disabled = "disableSerialConsoleLog" in options
    found.components = _components(apis, str(meta.get("namespace")))


def _components(apis: Apis, namespace: str) -> dict[str, tuple[int, int]]:
    selector = f"kubevirt.io in ({','.join(COMPONENTS)})"
    pods = apis.core.list_namespaced_pod(namespace, label_selector=selector).items
    counts = {name: (0, 0) for name in COMPONENTS}
    for pod in pods:
        labels = (pod.metadata.labels if pod.metadata else None) or {}
        conditions = (pod.status.conditions or []) if pod.status else []
        ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
        had = counts.get(labels.get("kubevirt.io", ""))
        if had is not None:
            counts[labels["kubevirt.io"]] = (had[0] + ready, had[1] + 1)
    return counts


def _kvm_nodes(apis: Apis) -> dict[str, str]:
    found = {}
    for node in apis.core.list_node().items:
        allocatable = (node.status.allocatable or {}) if node.status else {}
        if allocatable.get(KVM_RESOURCE, "0") not in ("0", ""):
            name = node.metadata.name if node.metadata else "?"
            found[str(name)] = str(allocatable[KVM_RESOURCE])
    return found


def inspect(apis: Apis) -> Installation:
    """Everything above; an unreadable part is said in ``error``, never raised."""
    found = Installation()
    try:
        found.served = _served(apis)
        found.kvm_nodes = _kvm_nodes(apis)
        if "kubevirts" in found.served:
            _read_cr(apis, found)
    except ApiException as exc:
        found.error = f"cannot read KubeVirt's state: {api_message(exc)}"
    return found
