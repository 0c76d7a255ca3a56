"""`sandbench doctor --backend kubernetes`: can this harness measure on this cluster?

Reachable; the harness's own permissions (access reviews against the shipped RBAC manifest);
which requested RuntimeClasses exist; whether each can really start a pod (a probe pod, with
the cluster's own failure message when not); Kata node labels; the clock offset to each
runtime's sandboxes.
"""

from __future__ import annotations

from sandbench import runner
from sandbench.backends import Finding
from sandbench.backends.kubernetes import KubernetesBackend
from sandbench.backends.kubernetes.access import KUBELET_METRICS, OPTIONAL_GROUPS
from sandbench.doctor import kubevirt as doctor_kubevirt
from sandbench.model import ClockOffset

KATA_LABEL = "katacontainers.io/kata-runtime"


def reachability(backend: KubernetesBackend) -> Finding:
    try:
        version, source = backend.server()
    except Exception as exc:  # a bad kubeconfig, an unreachable server, TLS, auth: all said
        return Finding("cluster", False, f"not reachable: {exc}",
                       "check --kubeconfig/--context or $KUBECONFIG")
    return Finding("cluster", True, f"{version} via {source}")


def permissions(backend: KubernetesBackend) -> Finding:
    lacking = backend.missing_permissions()
    needed = [p for p in lacking if p.group not in OPTIONAL_GROUPS]
    if needed:
        return Finding("permissions", False, "missing: " + ", ".join(map(str, needed)),
                       "apply the manifest from `sandbench rbac` and use its ServiceAccount")
    note = f" (VM runs would also need: {', '.join(map(str, lacking))})" if lacking else ""
    return Finding("permissions", True, f"everything the harness uses{note}")


def kubelet_metrics(backend: KubernetesBackend) -> Finding:
    """Optional: without it a run records everything but the kubelet's own figure."""
    if backend.settings.kubelet_url or not backend.settings.kubelet_metrics:
        return Finding("kubelet metrics", True, "not read through the API server's node proxy")
    lacking = backend.missing_permissions(KUBELET_METRICS)
    if lacking:
        return Finding("kubelet metrics", True, f"not permitted ({', '.join(map(str, lacking))}):"
                       " runs will not record kubelet_run_podsandbox",
                       "`sandbench rbac --kubelet-metrics`, if opening the kubelet API to this "
                       "account is acceptable")
    return Finding("kubelet metrics", True, "readable through the API server's node proxy")


def kata_labels(backend: KubernetesBackend, runtimes: list[str]) -> Finding:
    labelled = backend.node_labels(KATA_LABEL)
    with_label = {n: v for n, v in labelled.items() if v is not None}
    wanted = any(r.startswith("kata") for r in runtimes)
    if not with_label:
        return Finding("kata nodes", not wanted, f"no node has {KATA_LABEL}: Kata is not installed "
                       "(kata-deploy labels its nodes)", "install Kata with kata-deploy")
    return Finding("kata nodes", all(v == "true" for v in with_label.values()),
                   ", ".join(f"{n}={v}" for n, v in with_label.items()))


def trial(backend: KubernetesBackend, runtime: str) -> list[Finding]:
    """A real probe pod on ``runtime``, and its clock offset."""
    offset = backend.offset(runtime)
    execution, _, _ = runner.trial(backend, runtime, "start", {"linger_s": 1},
                                   f"sandbench-doctor-{runtime}"[:63], 120.0)
    # That the pod ran is the finding here; its numbers need the offset, reported below.
    if execution.error:
        return [Finding(f"{runtime} pod", False, execution.error)]
    findings = [Finding(f"{runtime} pod", True, "a probe pod ran to completion")]
    if isinstance(offset, ClockOffset):
        findings.append(Finding(f"{runtime} clock", True,
                                f"offset {offset.offset_ns / 1e6:+.3f} ms "
                                f"± {offset.uncertainty_ns / 1e6:.3f} ms ({offset.method})"))
    else:
        findings.append(Finding(f"{runtime} clock", False, offset.reason))
    return findings


def diagnose(backend: KubernetesBackend, runtimes: list[str]) -> list[Finding]:
    first = reachability(backend)
    if not first.ok:
        return [first]
    findings = [first, permissions(backend), kubelet_metrics(backend),
                kata_labels(backend, runtimes),
                *doctor_kubevirt.findings(backend, runtimes)]
    checked = [backend.check(runtime) for runtime in runtimes]
    findings += checked
    present = [f.subject for f in checked if f.ok]
    if not present:
        return findings
    backend.prepare(present)
    try:
        for runtime in present:
            findings += trial(backend, runtime)
    finally:
        backend.cleanup()
    return findings
