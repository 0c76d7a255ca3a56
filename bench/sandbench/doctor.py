"""`sandbench doctor`: which runtimes work here, and for each one that does not, why and how
to fix it. A runtime is only called usable after a real sandbox ran on it (when the image is
built), not because its binary exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sandbench import image, workloads
from sandbench.backends import Availability, Backend
from sandbench.backends.local import cgroups
from sandbench.workloads.base import ParseError


@dataclass(frozen=True)
class Finding:
    subject: str
    ok: bool
    detail: str
    fix: str | None = None


def apply_fixes() -> list[str]:
    """The fixes doctor knows to be safe on this host; returns what was done."""
    done = []
    if cgroups.crun_blockers():
        result = cgroups.fix_crun()
        if result:
            done.append(result)
    return done


def trial(backend: Backend, runtime: str) -> Finding:
    """Run one real start sandbox on ``runtime``."""
    start = workloads.get("start")
    case = start.cases(start.params({}))[0]
    execution = backend.execute(runtime, case, f"sandbench-doctor-{runtime}", 60.0)
    if execution.error:
        return Finding(f"{runtime} trial", False, execution.error)
    try:
        values = start.parse(case, execution)
    except ParseError as exc:
        return Finding(f"{runtime} trial", False, f"unparseable output: {exc}")
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


def _from_availability(availability: Availability) -> Finding:
    return Finding(availability.runtime, availability.usable, availability.detail,
                   availability.fix)


def diagnose(backend: Backend, runtimes: list[str], cache_dir: Path) -> list[Finding]:
    findings = []
    usable = []
    for runtime in runtimes:
        availability = backend.check(runtime)
        findings.append(_from_availability(availability))
        if availability.usable:
            usable.append(runtime)
    built = image.load_cached(cache_dir)
    if built is None:
        findings.append(Finding("workload image", False, "not built for the current inputs",
                                "sandbench image build"))
        return findings
    findings.append(Finding("workload image", True, f"{built.name} ({built.manifest_digest[:19]})"))
    backend.prepare(usable)
    try:
        findings += accelerators(backend, usable)
        findings += [trial(backend, runtime) for runtime in usable]
    finally:
        backend.cleanup()
    return findings
