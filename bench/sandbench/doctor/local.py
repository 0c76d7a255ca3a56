"""Doctor for the local backend. A runtime is only called usable after a real sandbox ran on
it (when the image is built), not because its binary exists."""

from __future__ import annotations

from pathlib import Path

from sandbench import image, runner
from sandbench.backends import Backend, Finding


def trial(backend: Backend, runtime: str) -> Finding:
    """Run one real start sandbox on ``runtime``."""
    _, values, reason = runner.trial(backend, runtime, "start", {},
                                     f"sandbench-doctor-{runtime}", 60.0)
    if reason is not None:
        return Finding(f"{runtime} trial", False, reason)
    first = next((v for v in values if v.value is not None), None)
    detail = f"a sandbox started: {first.metric.name} {first.value:.1f} ms" if first else "ran"
    return Finding(f"{runtime} trial", True, detail)


def accelerators(backend: Backend, runtimes: list[str]) -> list[Finding]:
    """For each VM runtime, the accelerator its sandboxes get and why (prepare decided it,
    with a bounded test boot under KVM the first time)."""
    facts = backend.environment().get("runtimes", {})
    found = []
    for runtime in runtimes:
        mine = facts.get(runtime) or {}
        if mine.get("accel"):
            emulated = " (emulated, not representative of KVM)" if mine.get("emulated") else ""
            found.append(Finding(f"{runtime} accelerator", True,
                                 f"{mine['accel']}{emulated}: {mine.get('accel_reason', '')}"))
    return found


def diagnose(backend: Backend, runtimes: list[str], cache_dir: Path) -> list[Finding]:
    findings = [backend.check(runtime) for runtime in runtimes]
    usable = [f.subject for f in findings if f.ok]
    built = image.load_cached(cache_dir)
    if built is None:
        findings.append(Finding("workload image", False, "not built for the current inputs",
                                "sandbench image build"))
        return findings
    findings.append(Finding("workload image", True, f"{built.name} ({built.manifest_digest[:19]})"))
    try:
        backend.prepare(usable)
        findings += accelerators(backend, usable)
        findings += [trial(backend, runtime) for runtime in usable]
    finally:
        backend.cleanup()
    return findings
