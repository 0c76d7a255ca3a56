"""The experiment spec: what to run, where, how often. Loaded from YAML, validated into types.

A spec names a backend, the runtimes to compare, the workloads with their parameters, rounds,
warmups, a timeout and the baseline runtime. Built-in profiles (``quick``, ``standard``) live in
``sandbench/profiles``; a user's file may start from one (``profile: quick``) and override keys.
Workload parameters are checked against each workload's own model by the runner's registries,
so this module needs to know no workload by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from sandbench.errors import BadInput, quoted

PROFILES = ("quick", "standard")

#: Runtimes compared when a spec names none: the baseline first.
DEFAULT_RUNTIMES = {"local": ["native", "runc", "crun", "runsc"], "kubernetes": ["runc", "crun"]}
#: Defaults that are left out, with a note, where they cannot run: gVisor is built by
#: `make demo` only where a new enough Go is found, and a missing gVisor must never stop the
#: first run. Named explicitly, an unusable runtime is still an error (exit 3).
OPTIONAL_DEFAULTS = {"runsc"}

#: Most measured or warmup rounds of one workload. A round is one fresh sandbox per case and
#: runtime, at least tens of milliseconds each: 10 000 rounds of ``start`` on three runtimes
#: is already hours. The bound also keeps the plan small: 100 million rounds took 1.1 GB and
#: 25 s to lay out before anything ran.
MAX_ROUNDS = 10_000

#: Longest a sandbox may be given, in seconds: a day is beyond any benchmark's sandbox, and
#: past it (1e300, infinity) the timers the backends wait on overflow.
MAX_TIMEOUT_S = 86_400.0

#: What a variant may be called: its name becomes a runtime's name, a label value and a part
#: of file and sandbox names, and is shown in terminals and reports.
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

#: Workload parameters a backend needs unless the spec sets them: a pod that exits at once
#: may never be reported Running or Ready, so on a cluster the start probe stays up 2 s.
BACKEND_PARAMS: dict[str, dict[str, dict[str, Any]]] = {"kubernetes": {"start": {"linger_s": 2}}}


class SpecError(BadInput):
    """A spec that cannot be run; the message is one line naming the bad value."""


class Strict(BaseModel):
    # strict: YAML's true is not 1, "5" is not 5; a number where a number is meant.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Resources(Strict):
    """What each sandbox may use, the same for every runtime so they are comparable."""

    cpus: float = Field(1.0, gt=0, le=1024, allow_inf_nan=False)
    """CPUs per sandbox (a cgroup quota for containers, vCPUs for VMs). One keeps a 2-core
    host's other core free for the harness. At most 1024, more than a host has: a quota or
    a vCPU count past it is a typo, not an experiment."""

    memory_mib: int = Field(512, gt=16, le=16 * 1024 * 1024)
    """Memory limit per sandbox in MiB; enough for fio's buffers at the default sizes. At most
    16 TiB, more than a host has (a cgroup limit past it is a typo)."""


class SshTarget(Strict):
    """A machine reached over SSH (paramiko), its host key checked against ``known_hosts`` or
    ``fingerprint``: an unknown or changed key is an error, never accepted."""

    host: str
    """Address or name; for a KubeVirt guest (reached through a port-forward) only the name
    its key is filed under in known_hosts."""

    user: str = "root"
    """Login name; root because the node facts (KSM, kata-runtime env) are root's to read."""

    port: int = Field(22, ge=1, le=65535)
    """TCP port of sshd (for a KubeVirt guest: the port forwarded to in its launcher pod)."""

    key_file: str | None = None
    """Private key file; None: the SSH agent and ~/.ssh's default keys."""

    known_hosts: str | None = None
    """known_hosts file the host key must be in; None: ~/.ssh/known_hosts (unless a
    fingerprint is given)."""

    fingerprint: str | None = Field(None, pattern=r"^SHA256:[A-Za-z0-9+/]{43}=?$")
    """The host key's SHA256 fingerprint as ``ssh-keygen -lf`` prints it (SHA256:...); given,
    it is the only key accepted and known_hosts is not read."""


class KubevirtSettings(Strict):
    """How the kubernetes backend runs runtimes of kind ``kubevirt`` (one VirtualMachineInstance
    per sandbox, booting the guest the local qemu runtime boots)."""

    containerdisk_image: str | None = None
    """Image of the workload disk; None: the name `sandbench image build` gives it, which must
    then be on the node or in a registry under that name."""

    datadisk_image: str | None = None
    """Image of the empty ext4 /data disk; None: the built one's name."""

    kernelboot_image: str | None = None
    """Image holding the guest kernel and initrd; None: the built one's name."""

    controller_timeout_s: float = Field(30.0, gt=0)
    """How long a new VMI may go unprocessed by KubeVirt (no phase past Pending, no launcher
    pod) before the harness says KubeVirt is not running: virt-controller acts in well under
    a second, so 30 s only ever catches a missing or stuck controller."""

    guest_ssh: SshTarget | None = None
    """Reach the guest over SSH through a port-forward to its launcher pod, for clusters whose
    serial console log is disabled; needs a guest with sshd (sandbench's own guest has none)."""


class KubernetesSettings(Strict):
    """Where and how the kubernetes backend runs pods; each can also be given as a flag."""

    kubeconfig: str | None = None
    """Path of a kubeconfig; None: $KUBECONFIG, then ~/.kube/config, then in-cluster config."""

    context: str | None = None
    """kubeconfig context; None: the current one."""

    node: str | None = None
    """Node every pod is pinned to; None: the first Ready node every RuntimeClass can use."""

    image: str | None = None
    """Workload image reference; None: the name `sandbench image build` gives, which must
    then be present on the node (imported, or pushed to a registry under that name)."""

    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """imagePullPolicy of every pod. Never on a cluster whose image was imported."""

    schedule_timeout_s: float = Field(30.0, gt=0)
    """How long a pod may stay unschedulable before the runtime is failed with the
    scheduler's reason: long enough for a busy scheduler, short of the round timeout."""

    clock_samples: int = Field(20, ge=3, le=1000)
    """Clock-offset exchanges per runtime; the one with the smallest round trip is kept."""

    kubelet_metrics: bool = True
    """Read the kubelet's own sandbox-creation and pod-start histograms around each start
    round (needs nodes/proxy get); skipped with a note when refused."""

    kubelet_url: str | None = None
    """Read the kubelet's metrics from this URL instead of through the API server (for a
    harness on the node, or an API server that will not proxy to the node's address, as
    with a node named 127.0.0.1); its certificate is not verified."""

    kubevirt: KubevirtSettings = Field(default_factory=KubevirtSettings)
    """Settings of the runtimes of kind kubevirt (runtimeclasses/kubevirt)."""

    ssh: SshTarget | None = None
    """The node, reached over SSH, for facts the API does not give (kernel command line, CPU
    governor, KSM, THP, kata-runtime env); None: only what the API says about the node."""


class WorkloadRun(Strict):
    """How one workload runs: its own rounds and warmups (defaults from the spec) and its
    parameters, which the workload validates."""

    rounds: int | None = Field(None, ge=1, le=MAX_ROUNDS)
    """Measured rounds; each round runs every case on every runtime once. None: the spec's.
    At most MAX_ROUNDS (10 000)."""

    warmup: int | None = Field(None, ge=0, le=MAX_ROUNDS)
    """Rounds run first and recorded with warmup=true, kept out of statistics. None: the spec's."""

    params: dict[str, Any] = Field(default_factory=dict)
    """Workload parameters; see ``sandbench run --help`` for each workload's."""


class Variant(Strict):
    """A second setting of one runtime, run interleaved with it in the same run (same-run A/B).
    Its name is listed in ``runtimes`` like any runtime's."""

    runtime: str
    """The runtime this is a variant of, by the backend's name for it (e.g. ``runc``)."""

    wrapper: list[str] = Field(default_factory=list)
    """A command prefix the runtime's binary runs under (local backend), e.g.
    ``["/usr/bin/env", "GOMAXPROCS=1"]`` or a script that sleeps and then runs ``"$@"``."""

    description: str = ""
    """What differs, in words, for the report."""


class Spec(Strict):
    name: str = "custom"
    """A name for the experiment, shown in the report."""

    backend: str = "local"
    """Where sandboxes run: ``local`` (this host) or a cluster backend."""

    runtimes: list[str] = Field(default_factory=list)
    """Runtimes to compare, by the names the backend's registry knows; none given: the
    backend's defaults (DEFAULT_RUNTIMES)."""

    optional_runtimes: list[str] = Field(default_factory=list)
    """Runtimes that came from the backend's defaults and are skipped, with a note, where
    they cannot run (OPTIONAL_DEFAULTS); set by sandbench, not meant to be written."""

    baseline: str | None = None
    """The runtime every other one is compared with; None: the first of ``runtimes``."""

    workloads: dict[str, WorkloadRun] = Field(default_factory=dict)
    """Workloads by name, each with its rounds and parameters."""

    rounds: int = Field(10, ge=1, le=MAX_ROUNDS)
    """Default measured rounds per workload. At most MAX_ROUNDS (10 000): each round is a
    fresh sandbox per case and runtime, so more would run for days."""

    warmup: int = Field(1, ge=0, le=MAX_ROUNDS)
    """Default warmup rounds per workload: the first sandboxes pay for cold caches."""

    timeout_s: float = Field(120.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    """Seconds one sandbox may take from request to exit before it is killed and failed. At
    most a day (MAX_TIMEOUT_S): beyond any sandbox of a benchmark, and the timers the backends
    wait on overflow past it."""

    resources: Resources = Field(default_factory=Resources)

    variants: dict[str, Variant] = Field(default_factory=dict)
    """Named variants of runtimes for same-run A/B, e.g. ``{runc-b: {runtime: runc, wrapper:
    [...]}}``; list a variant's name in ``runtimes`` to run it."""

    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    """Settings of the kubernetes backend; ignored by the others."""

    @model_validator(mode="before")
    @classmethod
    def _backend_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        backend = data.get("backend", "local")
        data = dict(data)
        # Only a spec that says nothing gets the defaults: an empty list is a mistake to show.
        if data.get("runtimes") is None and backend in DEFAULT_RUNTIMES:
            data["runtimes"] = list(DEFAULT_RUNTIMES[backend])
            data["optional_runtimes"] = [r for r in data["runtimes"] if r in OPTIONAL_DEFAULTS]
        workloads = data.get("workloads")
        if isinstance(workloads, dict):
            data["workloads"] = {name: _with_backend_params(backend, name, run)
                                 for name, run in workloads.items()}
        return data

    @field_validator("runtimes")
    @classmethod
    def _runtimes_unique(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value:
            defaults = DEFAULT_RUNTIMES.get(str(info.data.get("backend")))
            raise ValueError("[] names no runtime; name at least one" + (
                f", or leave the key out for the backend's defaults ({', '.join(defaults)})"
                if defaults else ""))
        dupes = sorted({r for r in value if value.count(r) > 1})
        if dupes:
            raise ValueError(f"runtime {dupes[0]!r} is listed twice")
        return value

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, value: dict[str, Variant]) -> dict[str, Variant]:
        for name in value:
            if not VARIANT_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid variant name: use letters, digits, "
                                 f"'-', '_' and '.', at most 63, starting with a letter or a "
                                 f"digit (e.g. runc-b)")
        return value

    @property
    def baseline_runtime(self) -> str:
        return self.baseline or self.runtimes[0]

    def rounds_of(self, workload: str) -> int:
        return self.workloads[workload].rounds or self.rounds

    def warmup_of(self, workload: str) -> int:
        run = self.workloads[workload]
        return self.warmup if run.warmup is None else run.warmup


def _with_backend_params(backend: str, workload: str, run: Any) -> Any:
    defaults = BACKEND_PARAMS.get(backend, {}).get(workload)
    if not defaults or not isinstance(run, dict | None):
        return run
    run = dict(run or {})
    params = run.get("params") or {}
    if isinstance(params, dict):
        run["params"] = {**defaults, **params}
    return run


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


def validation_message(exc: ValidationError, source: str) -> str:
    """Pydantic's error, as one line: where, the bad value, what would be accepted."""
    err = exc.errors()[0]
    where = _location(err["loc"])
    if err["type"] == "extra_forbidden":
        parent = err["loc"][:-1]
        return f"{source}: unknown key {str(err['loc'][-1])!r} in {_location(parent)}"
    if err["type"] == "value_error":
        # Our own validators' messages quote the value and say what would do.
        return f"{source}: {where}: {err['msg'].removeprefix('Value error, ')}"
    return f"{source}: {where}: {quoted(err['input'])} is not valid: {err['msg']}"


def parse_spec(data: dict[str, Any], source: str) -> Spec:
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_message(exc, source)) from exc
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
    #: kubernetes settings given as flags (--kubeconfig, --context, --node, --image...).
    kubernetes: dict[str, Any] | None = None

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
