"""The experiment: what to run, where, how often, validated into types.

A spec names a backend, the runtimes to compare, the workloads with their parameters, rounds,
warmups, a timeout and the baseline runtime. Workload parameters are checked against each
workload's own model by the runner's registries, so this module needs to know no workload by
name.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from sandbench.spec.concurrency import Arrival, check_levels
from sandbench.spec.settings import KubernetesSettings, Resources, Strict

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
    #: Where the spec came from ("the file x.yaml", "profile quick"), for errors found later
    #: (a workload's params are checked when the run is planned); never written to run.json.
    _source: str = PrivateAttr(default="the spec")
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

    concurrency: list[int] = Field(default_factory=lambda: [1])
    """Sandboxes started together, one burst per level in every round, e.g. ``[1, 4, 16]``.
    [1], the default, is one sandbox at a time, as a start is measured on its own; more than
    one level (or any level above 1) makes concurrency an axis: every start sample is then
    labelled with its concurrency, arrival and position in the burst. Only workloads that
    can run concurrently (start) may have levels above 1."""

    arrival: Arrival = Field(default_factory=Arrival)
    """When the sandboxes of a burst are requested: all at once (``burst``, the default),
    ``rate`` or ``poisson`` at ``per_second``."""

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

    @field_validator("concurrency")
    @classmethod
    def _levels(cls, value: list[int]) -> list[int]:
        return check_levels(value)

    @property
    def concurrency_axis(self) -> bool:
        """Whether concurrency is an axis of this run: any level but the lone default [1],
        or a fan-out over nodes on the kubernetes backend (kubernetes.nodes: its pods go
        together, one burst per round, even at [1]). Without it, samples carry no
        concurrency labels and no burst metrics, as before."""
        return self.concurrency != [1] or (self.backend == "kubernetes"
                                           and self.kubernetes.nodes is not None)

    @model_validator(mode="after")
    def _fan_out_fits(self) -> Spec:
        nodes, pull = self.kubernetes.nodes, self.kubernetes.pull
        if nodes is not None and self.backend != "kubernetes":
            raise ValueError(f"kubernetes.nodes {nodes!r} fans pods out over a cluster's "
                             f"nodes; backend {self.backend!r} has none: leave it out, or "
                             "give --backend kubernetes")
        if self.backend == "kubernetes" and self.concurrency_axis and pull != "warm":
            raise ValueError(f"kubernetes.pull {pull!r} puts the image in its state on one "
                             "node before each pod, one pod at a time; pods started together "
                             f"(concurrency {self.concurrency}"
                             + (f", nodes {nodes!r}" if nodes else "") + ") measure warm "
                             "starts: leave pull out, or concurrency at [1]")
        return self

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

    def pull_states(self) -> tuple[str, ...]:
        """The image states every round of a workload that times starts measures: one, or
        cold and warm; none for a backend that pulls no images (the local backend starts
        sandboxes from an unpacked root filesystem)."""
        if self.backend != "kubernetes":
            return ()
        pull = self.kubernetes.pull
        return ("cold", "warm") if pull == "both" else (pull,)

    def rounds_of(self, workload: str) -> int:
        return self.workloads[workload].rounds or self.rounds

    @property
    def source(self) -> str:
        return self._source

    def from_source(self, source: str) -> Spec:
        """This spec, saying it came from ``source``."""
        copy = self.model_copy()
        copy._source = source
        return copy

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
