"""`sandbench doctor --backend kubernetes`: can this harness measure on this cluster?

Reachable; the harness's own permissions (access reviews against the shipped RBAC manifest);
which requested RuntimeClasses exist; whether each can really start a pod (a probe pod, with
the cluster's own failure message when not); Kata node labels; the clock offset to each
runtime's sandboxes.
"""

from __future__ import annotations

from sandbench import doctor_kubevirt, workloads
from sandbench.backends.kubernetes import KubernetesBackend, access
from sandbench.backends.kubernetes.api import ClusterError
from sandbench.doctor import Finding
from sandbench.model import ClockOffset

KATA_LABEL = "katacontainers.io/kata-runtime"


def reachability(backend: KubernetesBackend) -> Finding:
    try:
        version = backend.apis.version.get_code()
    except (ClusterError, Exception) as exc:
        return Finding("cluster", False, f"not reachable: {exc}",
                       "check --kubeconfig/--context or $KUBECONFIG")
    return Finding("cluster", True, f"{version.git_version} via {backend.apis.source}")


def permissions(backend: KubernetesBackend) -> Finding:
    lacking = access.missing(backend.apis)
    needed = [p for p in lacking if p.group not in access.OPTIONAL_GROUPS]
    if needed:
        return Finding("permissions", False, "missing: " + ", ".join(map(str, needed)),
                       "apply the manifest from `sandbench rbac` and use its ServiceAccount")
    note = f" (VM runs would also need: {', '.join(map(str, lacking))})" if lacking else ""
    return Finding("permissions", True, f"everything the harness uses{note}")


def kata_labels(backend: KubernetesBackend, runtimes: list[str]) -> Finding:
    nodes = backend.apis.core.list_node().items
    labelled = {str(n.metadata.name): (n.metadata.labels or {}).get(KATA_LABEL)
                for n in nodes if n.metadata is not None}
    with_label = {n: v for n, v in labelled.items() if v is not None}
    wanted = any(r.startswith("kata") for r in runtimes)
    if not with_label:
        return Finding("kata nodes", not wanted, f"no node has {KATA_LABEL}: Kata is not installed "
                       "(kata-deploy labels its nodes)", "install Kata with kata-deploy")
    return Finding("kata nodes", all(v == "true" for v in with_label.values()),
                   ", ".join(f"{n}={v}" for n, v in with_label.items()))


def trial(backend: KubernetesBackend, runtime: str) -> list[Finding]:
    """A real probe pod on ``runtime``, and its clock offset."""
    start = workloads.get("start")
    case = start.cases(start.params({"linger_s": 1}))[0]
    offset = backend.offset(runtime)
    execution = backend.execute(runtime, case, f"sandbench-doctor-{runtime}"[:63], 120.0)
    if execution.error:
        return [Finding(f"{runtime} pod", False, execution.error)]
    findings = [Finding(f"{runtime} pod", True, "a probe pod ran to completion")]
    if isinstance(offset, ClockOffset):
        findings.append(Finding(f"{runtime} clock", True,
                                f"offset {offset.offset_ns / 1e6:+.3f} ms "
                                f"± {offset.uncertainty_ns / 1e6:.3f} ms ({offset.method})"))
    else:
        findings.append(Finding(f"{runtime} clock", False, offset))
    return findings


def diagnose(backend: KubernetesBackend, runtimes: list[str]) -> list[Finding]:
    first = reachability(backend)
    if not first.ok:
        return [first]
    findings = [first, permissions(backend), kata_labels(backend, runtimes),
                *doctor_kubevirt.findings(backend, runtimes)]
    present = []
    for runtime in runtimes:
        availability = backend.check(runtime)
        findings.append(Finding(runtime, availability.usable, availability.detail, availability.fix))
        if availability.usable:
            present.append(runtime)
    if not present:
        return findings
    backend.prepare(present)
    try:
        for runtime in present:
            findings += trial(backend, runtime)
    finally:
        backend.cleanup()
    return findings
