"""The files sandbench writes, as models: run.json, one line of samples.jsonl, verdict.json and
a line of a history's index.jsonl. Each is read and written through its model here, and the
JSON Schema of run.json and of a sample is generated from these models (``sandbench schema``),
as asv's schema.py does for its results files.

The models type what sandbench reads and leave open what is genuinely open: the host facts,
a backend's ``environment``, each runtime's facts and the spec's details are whatever the
backend or the spec recorded, kept as they are (extra keys are allowed everywhere, so a newer
sandbench's additions survive an older one's rewrite). Fields that every run.json has had since
format 1 are required; the rest default to "not recorded" and are written only when set, so a
file keeps the shape it was written in.

Versions: run.json and samples.jsonl carry ``format_version`` (model.FORMAT_VERSION; sandbench.results
says how an older version is upgraded), verdict.json ``format_version`` (COMPARE_VERSION) and
an index line ``index_version`` (INDEX_VERSION).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from sandbench.model import FORMAT_VERSION, Sample

#: Version of a comparison's JSON (``compare --json``, verdict.json).
COMPARE_VERSION = 1
#: Version of a history index line; a line of another version is re-read from its run.
INDEX_VERSION = 1
#: Gate outcomes written by ``sandbench compare --record``; a run whose gate failed or was
#: refused (environment changed) is not a baseline for the next night until a person looks.
NOT_GOOD_GATES = frozenset({"failed", "refused"})

#: A run's status. "crashed" is never written: a reader sees it for a run.json that still says
#: "running" while its owner is dead (results.liveness).
RunStatus = Literal["running", "completed", "interrupted", "failed", "crashed"]


class _Open(BaseModel):
    """A record that keeps keys it does not know: they are written back as they were read."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)


class MetricInfo(_Open):
    """One row of run.json's metrics table: what a metric means, so results explain
    themselves."""

    unit: str
    better: Literal["lower", "higher"] = "lower"
    description: str = ""


class VariantInfo(_Open):
    """A runtime variant of the spec (same-run A/B): the runtime it varies, and how."""

    runtime: str


class SpecInfo(_Open):
    """The resolved spec the run ran (spec.Spec dumped). Only what other code reads is typed:
    the rest (rounds, workloads and their params, resources, backend settings) is kept as
    recorded, since the spec's shape is the spec module's to change."""

    name: str | None = None
    backend: str | None = None
    baseline: str | None = None
    runtimes: list[str] = Field(default_factory=list)
    """The runtimes run, in the spec's order (the report's order after the baseline)."""
    optional_runtimes: list[str] = Field(default_factory=list)
    variants: dict[str, VariantInfo] = Field(default_factory=dict)
    """Same-run A/B: each variant's name and the runtime it varies."""


class RunMeta(_Open):
    """run.json: a run's metadata, written at its start and rewritten at its end."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)

    format_version: int = Field(ge=1, le=FORMAT_VERSION)
    """Version of the results format (run.json and samples.jsonl); see sandbench.results."""
    run_id: str
    """Sortable by start time: ``20261127T142512Z-3f9a``; also every sample's run_id."""
    backend: str = ""
    """Where the sandboxes ran ("local", "kubernetes"); "" when a hand-made run does not say."""
    status: RunStatus
    """running until the run ends; interrupted keeps what was measured before Ctrl-C."""
    status_reason: str | None = None
    """Why the run ended as it did, when not completed."""
    valid: bool | None = None
    """False when more than 10% of samples failed; absent until the run ends."""
    started_at: str
    """ISO 8601 in UTC with microseconds, as model.utc_now writes it."""
    ended_at: str | None = None
    """As started_at; absent while the run is running (or when it crashed)."""

    @field_validator("started_at", "ended_at")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        # Exports stamp series with these: a time that does not parse is no run's.
        if value is not None:
            try:
                dt.datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("not an ISO 8601 time") from None
        return value
    baseline: str | None = None
    """The runtime every other one is compared with in the report; None for no baseline."""
    sandbench_version: str | None = None
    git_commit: str | None = None
    """sandbench's own commit, when it runs from a git checkout."""
    spec: SpecInfo = Field(default_factory=SpecInfo)
    host: dict[str, Any] = Field(default_factory=dict)
    """Facts of the harness host (kernel, CPU, cores, cgroup layout...): facts/host.py."""
    host_state: dict[str, Any] = Field(default_factory=dict)
    """The host's load, frequency and affinity at "start" and "end" (facts/host.py)."""
    harness: dict[str, Any] | None = None
    """A run with concurrency as its axis: what the harness itself spent during its bursts
    (bursts, cpu_percent_of_core_mean and _max, lateness_ms_max, how); absent otherwise."""
    runtimes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Each runtime's facts as its backend reports them (version, binary, accel...)."""
    environment: dict[str, Any] = Field(default_factory=dict)
    """Everything else the backend records, in its own shape (image, cluster, node, clocks)."""
    metrics: dict[str, MetricInfo] = Field(default_factory=dict)
    """Every metric the run could measure, by name."""
    clocks: dict[str, str] = Field(default_factory=dict)
    """Each clock a sample's ``clock`` names, in words."""
    warnings: list[str] = Field(default_factory=list)
    """What makes the numbers less trustworthy (a busy host, too many failures...)."""
    cleanup: list[Any] = Field(default_factory=list)
    """Sandboxes or objects the cleanup at the end found left over and deleted."""
    owner: dict[str, Any] | None = None
    """The harness process that writes the run (pid, boot id, start time: owner.py), so a
    reader can tell a run still running from one whose harness died."""

    @classmethod
    def read(cls, data: Any) -> RunMeta:
        """run.json's content (already upgraded to FORMAT_VERSION); raises
        pydantic.ValidationError when it is not run metadata."""
        return cls.model_validate(data)

    def to_json(self) -> dict[str, Any]:
        """The document to write: only what was set, so a file keeps its shape. The open parts
        are returned as the backend gave them (results/write.py writes them with ``default=str``)."""
        return self.model_dump(exclude_unset=True)

    def runtime_facts(self, runtime: str) -> dict[str, Any]:
        return self.runtimes.get(runtime) or {}

    def better(self, metric: str) -> str:
        """Which direction is better for ``metric``; lower when the run does not say."""
        info = self.metrics.get(metric)
        return info.better if info is not None else "lower"


# -- verdict.json --------------------------------------------------------------------------

class SideRecord(BaseModel):
    """One side's summary of a metric; None where the number is NaN (JSON has none)."""

    n: int
    failed: int
    median: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    cov: float | None = None


class JudgementRecord(BaseModel):
    verdict: str
    reason: str
    change: float | None = None
    change_low: float | None = None
    change_high: float | None = None
    p_value: float | None = None
    p_new_larger: float | None = None


class MetricRecord(BaseModel):
    """One metric compared: both sides, then the judgement's fields inline (as JudgementRecord),
    then the same judgement on the ratio to each run's baseline (two runs only)."""

    runtime: str
    workload: str
    metric: str
    labels: str
    unit: str
    better: str
    threshold: float
    base: SideRecord
    new: SideRecord
    verdict: str
    reason: str
    change: float | None = None
    change_low: float | None = None
    change_high: float | None = None
    p_value: float | None = None
    p_new_larger: float | None = None
    relative: JudgementRecord | None = None
    reference: str = ""
    #: The smallest absolute change of the median, in ``unit``, that could count (0: none).
    min_change: float = 0.0


class RunRef(BaseModel):
    run_id: str
    dir: str


class ThresholdsRecord(BaseModel):
    default: float = 0.10
    per_metric: dict[str, float] = Field(default_factory=dict)
    #: Minimum absolute changes (thresholds.py). A comparison written before they existed was
    #: judged without one: 0.
    min_change_ms: float = Field(0.0, ge=0, allow_inf_nan=False)
    min_change: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict)


class DifferenceRecord(BaseModel):
    fact: str
    base: str
    new: str
    gating: bool


class RemeasureRecord(_Open):
    """``compare --remeasure``: the run that measured borderline metrics again."""

    run_id: str
    dir: str
    metrics: list[str] = Field(default_factory=list)
    """Each metric re-measured: "runtime workload metric[labels]"."""


class ComparisonRecord(_Open):
    """``sandbench compare --json``: a comparison of two runs or of two runtimes of one."""

    format: Literal["sandbench-compare"]
    format_version: int = Field(default=COMPARE_VERSION, ge=1, le=COMPARE_VERSION)
    base: RunRef
    new: RunRef
    mode: Literal["runs", "variants"]
    pairs: list[tuple[str, str]]
    alpha: float
    min_samples: int | None = None
    test: str | None = None
    thresholds: ThresholdsRecord = Field(default_factory=ThresholdsRecord)
    counts: dict[str, int] = Field(default_factory=dict)
    environment: list[DifferenceRecord] = Field(default_factory=list)
    metrics: list[MetricRecord]
    remeasured: RemeasureRecord | None = None
    """Set when borderline metrics were measured again; their verdicts are the second's."""


class VerdictRecord(ComparisonRecord):
    """verdict.json (``compare --record``): the comparison and the gate's decision on it."""

    gate: str | None = None
    """"passed", "failed", "refused" (environment changed) or "compared" (no --fail-on)."""
    fail_on: str | None = None
    allow_env_change: bool = False


class GateRecord(_Open):
    """All a history reads of verdict.json: the gate's outcome."""

    gate: str | None = None


# -- index.jsonl ---------------------------------------------------------------------------

class HistoryEntry(BaseModel):
    """One run of a history (one line of index.jsonl), as listed by ``sandbench history``."""

    # A line with keys this version does not know is foreign: its run is read again.
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    run_id: str
    path: str
    """The run directory, relative to the history directory."""
    started_at: str
    status: str
    valid: bool | None
    """run.json's ``valid``: False when over 10% of samples failed; None if not recorded."""
    backend: str
    runtimes: list[str]
    host: str
    commit: str
    spec_name: str
    sandbench_version: str
    gate: str = ""
    """"passed", "failed", "refused" or "compared" from verdict.json; "" when never compared."""
    stamp: list[int] = Field(default_factory=list)
    """What the entry was read from: sizes and mtimes of run.json and verdict.json."""
    index_version: int = INDEX_VERSION

    @property
    def good(self) -> bool:
        """A run fit to be the next baseline: completed, valid, and its gate not failed."""
        return self.status == "completed" and self.valid is not False \
            and self.gate not in NOT_GOOD_GATES

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# -- JSON Schema -----------------------------------------------------------------------------

#: What ``sandbench schema NAME`` prints: run.json, and one line of samples.jsonl.
SCHEMAS: dict[str, TypeAdapter[Any]] = {
    "run": TypeAdapter(RunMeta),
    "sample": TypeAdapter(Sample),
}
SCHEMA_TITLES = {
    "run": f"sandbench run.json (format_version {FORMAT_VERSION})",
    "sample": f"sandbench samples.jsonl: one line (format_version {FORMAT_VERSION})",
}


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the file ``name`` (a key of SCHEMAS)."""
    if name not in SCHEMAS:
        raise KeyError(f"no schema {name!r}; known: {', '.join(SCHEMAS)}")
    schema = SCHEMAS[name].json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **schema, "title": SCHEMA_TITLES[name]}


def schema_text(name: str) -> str:
    return json.dumps(json_schema(name), indent=2, sort_keys=True) + "\n"
