"""What differs between the environments of two runs, read from their run.json.

Some differences make a comparison unfit to gate on: another kernel, CPU, runtime version,
cluster version, sandbench version, workload image or workload parameters changes the numbers
by itself, so a "regression" across them may be the environment's doing (pyperf and
pytest-benchmark warn on the same facts). Those are *gating* differences: ``sandbench compare
--fail-on regression`` refuses to decide across them unless told they are expected. The others
(hostname, memory, kernel command line, git commit) are shown but do not block.

Cluster backends record their facts under ``environment`` in their own shape; any fact there
whose name says it is a version, digest, kernel, OS image or CPU is compared too, so a new
backend needs no change here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: (label, path in run.json, gating)
FACTS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("backend", ("backend",), True),
    ("kernel", ("host", "kernel"), True),
    ("CPU model", ("host", "cpu_model"), True),
    ("cores", ("host", "cores"), True),
    ("architecture", ("host", "arch"), True),
    ("OS", ("host", "os"), True),
    ("cgroup layout", ("host", "cgroup_layout"), True),
    ("sandbench version", ("sandbench_version",), True),
    ("workload image", ("environment", "image", "digest"), True),
    ("resources", ("spec", "resources"), True),
    ("hostname", ("host", "hostname"), False),
    ("memory", ("host", "memory_bytes"), False),
    ("kernel command line", ("host", "kernel_cmdline"), False),
    ("CPU frequency governor", ("host", "governor"), False),
    ("transparent huge pages", ("host", "thp"), False),
    ("sandbench git commit", ("git_commit",), False),
    # Host state read at the run's start: the stable part. Load and frequency are not
    # compared here; a busier host is what host drift (drift.py) sees through.
    ("isolated CPUs", ("host_state", "start", "isolated"), True),
    ("harness CPU affinity", ("host_state", "start", "affinity"), True),
    ("boot", ("host_state", "start", "boot_id"), False),
    ("uncommitted sandbench changes", ("host_state", "start", "git_dirty"), False),
)
#: Facts under ``environment`` (any backend's shape) whose last key matches are compared.
ENVIRONMENT_FACT = re.compile(r"version|digest|kernel|os_image|cpu|handler", re.IGNORECASE)
#: Already compared above, or not a fact about the environment.
ENVIRONMENT_SKIP = {"runtimes", "image", "host", "state_root"}


@dataclass(frozen=True)
class Difference:
    """One fact that differs between the base and the new run."""

    fact: str
    base: str
    new: str
    #: Whether this difference alone can move the numbers (see the module docstring).
    gating: bool

    def __str__(self) -> str:
        return f"{self.fact}: {self.base} -> {self.new}"

    def to_json(self) -> dict[str, Any]:
        return {"fact": self.fact, "base": self.base, "new": self.new, "gating": self.gating}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Difference:
        return cls(str(data["fact"]), str(data["base"]), str(data["new"]), bool(data["gating"]))


def _get(meta: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = meta
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str:
    if value is None:
        return "(not recorded)"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(value, Mapping):
        for key in sorted(value):
            yield from _leaves(value[key], (*path, str(key)))
    else:
        yield path, value


def _differ(label: str, base: Any, new: Any, gating: bool) -> list[Difference]:
    if _text(base) == _text(new):
        return []
    return [Difference(label, _text(base), _text(new), gating)]


def _environment_facts(meta: Mapping[str, Any]) -> dict[str, Any]:
    environment = meta.get("environment") or {}
    facts = {}
    for path, value in _leaves({k: v for k, v in environment.items() if k not in ENVIRONMENT_SKIP}):
        if path and ENVIRONMENT_FACT.search(path[-1]):
            facts[".".join(path)] = value
    return facts


def _workload_params(meta: Mapping[str, Any]) -> dict[str, Any]:
    workloads = _get(meta, ("spec", "workloads")) or {}
    return {name: (run or {}).get("params") for name, run in workloads.items()}


def differences(base: Mapping[str, Any], new: Mapping[str, Any],
                runtime_pairs: Iterable[tuple[str, str]]) -> list[Difference]:
    """Every fact that differs between two runs' run.json, for the runtimes compared
    (``(base runtime, new runtime)`` pairs)."""
    found: list[Difference] = []
    for label, path, gating in FACTS:
        base_value, new_value = _get(base, path), _get(new, path)
        # A fact one run predates (host state came with format 1's later runs) cannot block.
        recorded = path[0] != "host_state" or None not in (base_value, new_value)
        found += _differ(label, base_value, new_value, gating and recorded)
    base_env, new_env = _environment_facts(base), _environment_facts(new)
    for key in sorted(set(base_env) | set(new_env)):
        found += _differ(f"environment {key}", base_env.get(key), new_env.get(key), True)
    base_params, new_params = _workload_params(base), _workload_params(new)
    for workload in sorted(set(base_params) & set(new_params)):
        found += _differ(f"{workload} parameters", base_params[workload], new_params[workload],
                         True)
    for base_runtime, new_runtime in runtime_pairs:
        found += runtime_differences(base, new, base_runtime, new_runtime, gating=True)
    return found


def runtime_differences(base: Mapping[str, Any], new: Mapping[str, Any], base_runtime: str,
                        new_runtime: str, *, gating: bool) -> list[Difference]:
    """Differences in what run.json says of a runtime: its version and anything else."""
    base_facts = _get(base, ("runtimes", base_runtime)) or {}
    new_facts = _get(new, ("runtimes", new_runtime)) or {}
    name = base_runtime if base_runtime == new_runtime else f"{base_runtime}/{new_runtime}"
    found: list[Difference] = []
    for key in sorted(set(base_facts) | set(new_facts)):
        if key == "description":
            continue
        # A version change blocks gating; a different binary path or wrapper is shown only.
        blocks = gating and ENVIRONMENT_FACT.search(key) is not None
        found += _differ(f"runtime {name} {key}", base_facts.get(key), new_facts.get(key), blocks)
    return found
