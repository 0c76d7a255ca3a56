"""The experiment spec: what to run, where, how often. Loaded from YAML, validated into types.

A spec names a backend, the runtimes to compare, the workloads with their parameters, rounds,
warmups, a timeout and the baseline runtime. Built-in profiles (``quick``, ``standard``) live in
``sandbench/profiles``; a user's file may start from one (``profile: quick``) and override keys.
Workload parameters are checked against each workload's own model by the runner's registries,
so this module needs to know no workload by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PROFILES = ("quick", "standard")


class SpecError(Exception):
    """A spec that cannot be run; the message is one line naming the bad value."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(Strict):
    """What each sandbox may use, the same for every runtime so they are comparable."""

    cpus: float = Field(1.0, gt=0)
    """CPUs per sandbox (a cgroup quota for containers, vCPUs for VMs). One keeps a 2-core
    host's other core free for the harness."""

    memory_mib: int = Field(512, gt=16)
    """Memory limit per sandbox in MiB; enough for fio's buffers at the default sizes."""


class WorkloadRun(Strict):
    """How one workload runs: its own rounds and warmups (defaults from the spec) and its
    parameters, which the workload validates."""

    rounds: int | None = Field(None, ge=1)
    """Measured rounds; each round runs every case on every runtime once. None: the spec's."""

    warmup: int | None = Field(None, ge=0)
    """Rounds run first and recorded with warmup=true, kept out of statistics. None: the spec's."""

    params: dict[str, Any] = Field(default_factory=dict)
    """Workload parameters; see ``sandbench run --help`` for each workload's."""


class Spec(Strict):
    name: str = "custom"
    """A name for the experiment, shown in the report."""

    backend: str = "local"
    """Where sandboxes run: ``local`` (this host) or a cluster backend."""

    runtimes: list[str] = Field(default_factory=lambda: ["native", "runc", "crun"])
    """Runtimes to compare, by the names the backend's registry knows."""

    baseline: str | None = None
    """The runtime every other one is compared with; None: the first of ``runtimes``."""

    workloads: dict[str, WorkloadRun] = Field(default_factory=dict)
    """Workloads by name, each with its rounds and parameters."""

    rounds: int = Field(10, ge=1)
    """Default measured rounds per workload."""

    warmup: int = Field(1, ge=0)
    """Default warmup rounds per workload: the first sandboxes pay for cold caches."""

    timeout_s: float = Field(120.0, gt=0)
    """Seconds one sandbox may take from request to exit before it is killed and failed."""

    resources: Resources = Field(default_factory=Resources)

    @field_validator("runtimes")
    @classmethod
    def _runtimes_unique(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one runtime is needed")
        dupes = sorted({r for r in value if value.count(r) > 1})
        if dupes:
            raise ValueError(f"runtime {dupes[0]!r} is listed twice")
        return value

    @property
    def baseline_runtime(self) -> str:
        return self.baseline or self.runtimes[0]

    def rounds_of(self, workload: str) -> int:
        return self.workloads[workload].rounds or self.rounds

    def warmup_of(self, workload: str) -> int:
        run = self.workloads[workload]
        return self.warmup if run.warmup is None else run.warmup


def _profile_text(name: str) -> str:
    if name not in PROFILES:
        raise SpecError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}")
    return resources.files("sandbench").joinpath("profiles", f"{name}.yaml").read_text()


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a mapping of keys, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "spec"


def validation_message(exc: ValidationError, source: str) -> str:
    """Pydantic's error, as one line: where, the bad value, what would be accepted."""
    err = exc.errors()[0]
    where = _location(err["loc"])
    if err["type"] == "extra_forbidden":
        parent = err["loc"][:-1]
        return f"{source}: unknown key {str(err['loc'][-1])!r} in {_location(parent)}"
    return f"{source}: {where}: {err['input']!r} is not valid: {err['msg']}"


def parse_spec(data: dict[str, Any], source: str) -> Spec:
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_message(exc, source)) from exc
    if spec.baseline is not None and spec.baseline not in spec.runtimes:
        raise SpecError(
            f"{source}: baseline {spec.baseline!r} is not among the runtimes "
            f"({', '.join(spec.runtimes)})"
        )
    return spec


def read_spec(path: Path | None, profile: str) -> tuple[dict[str, Any], str]:
    """The raw spec from ``path`` (or the named profile when there is none), with a
    ``profile:`` key in the file resolved: the profile first, the file's keys over it."""
    if path is None:
        return _read_yaml(_profile_text(profile), f"profile {profile}"), f"profile {profile}"
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec {str(path)!r}: {exc.strerror}") from exc
    data = _read_yaml(text, str(path))
    base = data.pop("profile", None)
    if base is not None:
        data = _merge(_read_yaml(_profile_text(str(base)), f"profile {base}"), data)
    return data, str(path)


@dataclass(frozen=True)
class Overrides:
    """Command-line flags; each one given replaces the spec's value."""

    backend: str | None = None
    runtimes: list[str] | None = None
    workloads: list[str] | None = None
    rounds: int | None = None
    warmup: int | None = None
    timeout_s: float | None = None

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        for key in ("backend", "runtimes", "timeout_s", "rounds", "warmup"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        workloads = dict(data.get("workloads") or {})
        if self.workloads is not None:
            # Named workloads keep the spec's settings when it has them, else defaults.
            workloads = {name: workloads.get(name) or {} for name in self.workloads}
        for key in ("rounds", "warmup"):
            # A number typed on the command line wins over every workload's own.
            if getattr(self, key) is not None:
                workloads = {n: {**(w or {}), key: getattr(self, key)} for n, w in workloads.items()}
        data["workloads"] = workloads
        return data


def load_spec(path: Path | None = None, profile: str = "quick",
              overrides: Overrides | None = None) -> Spec:
    """The spec to run; raises SpecError with a one-line message."""
    data, source = read_spec(path, profile)
    return parse_spec((overrides or Overrides()).apply(data), source)
