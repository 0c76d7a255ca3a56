"""A spec from YAML: a built-in profile (``quick``, ``standard``, in ``sandbench/profiles``) or
a user's file that may start from one (``profile: quick``) and override keys, then the
command line's flags over it; every refusal one line naming the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sandbench.errors import BadInput, quoted
from sandbench.spec.experiment import Spec

PROFILES = ("quick", "standard")


class SpecError(BadInput):
    """A spec that cannot be run; the message is one line naming the bad value."""


def _profile_text(name: str) -> str:
    if name not in PROFILES:
        raise SpecError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}")
    return resources.files("sandbench").joinpath("profiles", f"{name}.yaml").read_text()


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    except RecursionError:
        raise SpecError(f"{source}: nested too deeply to be a spec") from None
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


def validation_message(exc: ValidationError, source: str,
                       within: tuple[int | str, ...] = ()) -> str:
    """Pydantic's error, as one line: where, the bad value, what would be accepted.
    ``within`` is where the validated object lies in ``source`` (e.g. ("runtimes", "runc"))."""
    err = exc.errors()[0]
    loc = (*within, *err["loc"])
    where = _location(loc)
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown key {str(loc[-1])!r} in {_location(loc[:-1])}"
    if err["type"] == "missing":
        return f"{source}: {where} is missing"
    if err["type"] == "value_error":
        # Our own validators' messages quote the value and say what would do.
        return f"{source}: {where}: {err['msg'].removeprefix('Value error, ')}"
    return f"{source}: {where}: {quoted(err['input'])} is not valid: {err['msg']}"


def parse_spec(data: dict[str, Any], source: str) -> Spec:
    _check_pull(data, source)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_message(exc, source)) from exc
    spec = spec.from_source(source)
    for name, variant in spec.variants.items():
        if variant.runtime in spec.variants or variant.runtime == name:
            raise SpecError(f"{source}: variant {name!r} is of {variant.runtime!r}, which is a "
                            f"variant itself; name a runtime of the backend")
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
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec {str(path)!r}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec {str(path)!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                        f"at offset {exc.start}); save it as UTF-8") from None
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
    #: --concurrency and --arrival, as the spec's keys would hold them.
    concurrency: list[Any] | None = None
    arrival: dict[str, Any] | None = None
    #: kubernetes settings given as flags (--kubeconfig, --context, --node, --image...).
    kubernetes: dict[str, Any] | None = None

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        for key in ("backend", "runtimes", "timeout_s", "rounds", "warmup", "concurrency"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.arrival is not None:
            # The flag names a pattern and its rate; the spec's seed stays.
            previous = data.get("arrival")
            seed = previous.get("seed") if isinstance(previous, dict) else None
            data["arrival"] = {**self.arrival, **({"seed": seed} if seed is not None else {})}
        workloads = dict(data.get("workloads") or {})
        if self.workloads is not None:
            # Named workloads keep the spec's settings when it has them, else defaults.
            workloads = {name: workloads.get(name) or {} for name in self.workloads}
        for key in ("rounds", "warmup"):
            # A number typed on the command line wins over every workload's own.
            if getattr(self, key) is not None:
                workloads = {n: {**(w or {}), key: getattr(self, key)} for n, w in workloads.items()}
        data["workloads"] = workloads
        given = {k: v for k, v in (self.kubernetes or {}).items() if v is not None}
        if given:
            data["kubernetes"] = {**(data.get("kubernetes") or {}), **given}
        return data


def load_spec(path: Path | None = None, profile: str = "quick",
              overrides: Overrides | None = None) -> Spec:
    """The spec to run; raises SpecError with a one-line message."""
    data, source = read_spec(path, profile)
    _check_shape(data, source)
    return parse_spec((overrides or Overrides()).apply(data), source)


def _check_pull(data: dict[str, Any], source: str) -> None:
    """A pull state asked of a backend that pulls nothing is refused before the kubernetes
    settings are checked (they would ask for a CRI endpoint the backend has no use for)."""
    backend = data.get("backend", "local")
    kubernetes = data.get("kubernetes")
    pull = kubernetes.get("pull", "warm") if isinstance(kubernetes, dict) else "warm"
    if backend != "kubernetes" and pull in ("cold", "both"):
        raise SpecError(f"{source}: kubernetes.pull {quoted(pull)} applies to the kubernetes "
                        f"backend only, not {quoted(backend)}: its sandboxes start from an "
                        "unpacked root filesystem and nothing is pulled; leave it out, or give "
                        "--backend kubernetes")


def _check_shape(data: dict[str, Any], source: str) -> None:
    """The keys flags are merged into must be mappings before they are merged; the rest is
    the model's to check."""
    workloads = data.get("workloads")
    if workloads is not None and not isinstance(workloads, dict):
        raise SpecError(f"{source}: workloads: {quoted(workloads)} is not valid: a mapping of "
                        f"workload names to their settings is, e.g. {{start: {{rounds: 5}}}}")
    for name, run in (workloads or {}).items():
        if run is not None and not isinstance(run, dict):
            raise SpecError(f"{source}: workloads.{name}: {quoted(run)} is not valid: a "
                            f"mapping of its settings (rounds, warmup, params) is")
    kubernetes = data.get("kubernetes")
    if kubernetes is not None and not isinstance(kubernetes, dict):
        raise SpecError(f"{source}: kubernetes: {quoted(kubernetes)} is not valid: a mapping "
                        f"of the kubernetes backend's settings is")
