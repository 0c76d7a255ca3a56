"""A run's results on disk: ``run.json`` plus an append-only ``samples.jsonl``.

Layout of a run directory::

    run.json        metadata: resolved spec, versions, host facts, metrics, status, times
    samples.jsonl   one Sample per line, appended (and flushed) as soon as it exists
    outputs/        each sandbox's full stdout/stderr, named in the samples' ``output`` field

Format history (``format_version`` in run.json):

    1  the first version.

A reader of a newer version refuses it with a message; older versions are upgraded in
``_upgrade`` when there are any.
"""

from __future__ import annotations

import json
import os
import secrets
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from sandbench.errors import BadInput, quoted
from sandbench.model import FORMAT_VERSION, Metric, Sample, utc_now

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
OUTPUTS_DIR = "outputs"

#: Columns of the samples table, in order, also when a run has no samples yet.
COLUMNS = [
    "run_id", "backend", "runtime", "workload", "metric", "unit", "value", "round", "warmup",
    "status", "time", "labels", "reason", "raw", "clock", "output",
]


#: JSON's names for the types a message says were expected.
_JSON_NAMES: dict[type, str] = {dict: "an object", list: "an array", str: "a string",
                                bool: "true or false", int: "an integer", float: "a number",
                                type(None): "null"}
#: Keys of run.json sandbench reads, and the JSON types each may have.
META_SHAPE: dict[str, tuple[type, ...]] = {
    **{key: (dict,) for key in ("spec", "host", "host_state", "runtimes", "metrics",
                                "environment", "clocks")},
    "warnings": (list,), "valid": (bool, type(None)),
    **{key: (str, type(None)) for key in ("run_id", "status", "status_reason", "backend",
                                          "baseline", "started_at", "ended_at",
                                          "sandbench_version", "git_commit")},
}
#: Keys of run.json's spec that readers use as they are (the rest is shown as JSON).
SPEC_SHAPE: dict[str, tuple[type, ...]] = {"runtimes": (list,), "variants": (dict,),
                                           "workloads": (dict,), "name": (str, type(None))}
#: A sample line's keys that every reader groups or filters by.
REQUIRED_SAMPLE_KEYS = ("runtime", "workload", "metric", "status")
#: The JSON types of a sample line's keys (model.Sample.to_json writes them).
SAMPLE_SHAPE: dict[str, tuple[type, ...]] = {
    **{key: (str,) for key in REQUIRED_SAMPLE_KEYS}, "unit": (str, type(None)),
    "value": (int, float, type(None)), "round": (int,), "warmup": (bool,),
    "labels": (dict, type(None)),
    **{key: (str, type(None)) for key in ("run_id", "backend", "time", "reason", "raw",
                                          "clock", "output")},
}


class ResultsError(BadInput):
    """A run directory that cannot be read."""


def new_run_id() -> str:
    """Sortable by start time, unique enough for one host: ``20261127T142512Z-3f9a``."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


class RunWriter:
    """Writes one run. Samples go to disk the moment they are appended, so an interrupted or
    crashed run keeps everything measured before it stopped."""

    def __init__(self, run_dir: Path, meta: dict[str, Any]) -> None:
        self.dir = run_dir
        self.meta = dict(meta)
        self.meta.setdefault("format_version", FORMAT_VERSION)
        self.meta.setdefault("status", "running")
        self.meta.setdefault("started_at", utc_now())
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / OUTPUTS_DIR).mkdir(exist_ok=True)
        self._samples = open(run_dir / SAMPLES_FILE, "a", encoding="utf-8")
        self.count = 0
        self.save_meta()

    def save_meta(self) -> None:
        tmp = self.dir / (RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(self.meta, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, self.dir / RUN_FILE)

    def append(self, samples: Iterable[Sample]) -> None:
        for sample in samples:
            self._samples.write(json.dumps(sample.to_json(), sort_keys=True) + "\n")
            self.count += 1
        self._samples.flush()

    def save_output(self, name: str, text: str) -> str:
        """Keep a sandbox's full output; returns its path relative to the run directory."""
        rel = f"{OUTPUTS_DIR}/{name}.txt"
        (self.dir / rel).write_text(text, encoding="utf-8", errors="replace")
        return rel

    def finish(self, status: str, reason: str | None = None) -> None:
        self.meta["status"] = status
        self.meta["ended_at"] = utc_now()
        if reason:
            self.meta["status_reason"] = reason
        self.save_meta()
        self._samples.close()


def metrics_table(metrics: Iterable[Metric]) -> dict[str, dict[str, str]]:
    """The metrics a run measured, stored in run.json so the results explain themselves."""
    return {
        m.name: {"unit": m.unit, "better": str(m.better), "description": m.description}
        for m in metrics
    }


@dataclass
class Run:
    """A run read back from disk."""

    dir: Path
    meta: dict[str, Any]
    samples: pd.DataFrame
    #: Line numbers of samples.jsonl's damaged lines, dropped (see read_samples).
    damaged: list[int] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id", self.dir.name))

    def damage_warning(self) -> str | None:
        """One line saying samples.jsonl had damaged lines, which were left out; None if none."""
        if not self.damaged:
            return None
        shown = ", ".join(str(n) for n in self.damaged[:5]) + (", ..." if len(self.damaged) > 5
                                                               else "")
        return (f"{SAMPLES_FILE} of run {self.run_id}: {len(self.damaged)} damaged line(s) "
                f"left out (line {shown}): not JSON, so the samples they held are missing")


def load_meta(run_dir: Path) -> dict[str, Any]:
    """run.json, checked to be a run's: an object whose keys sandbench reads have their
    types; raises ResultsError (one line) for anything else."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise ResultsError(f"{str(run_dir)!r} is not a run directory: it has no {RUN_FILE}")
    try:
        meta = json.loads(path.read_bytes())
    except OSError as exc:
        raise ResultsError(f"cannot read {str(path)!r}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ResultsError(f"{str(path)!r} is not JSON: it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ResultsError(f"{str(path)!r} is nested too deeply to be a run's") from None
    if not isinstance(meta, dict):
        raise ResultsError(f"{str(path)!r} holds {_json_type(meta)}, not the object a "
                           f"{RUN_FILE} is")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise ResultsError(
            f"{str(path)!r} has format_version {quoted(version)}; this sandbench reads 1 to "
            f"{FORMAT_VERSION}: upgrade sandbench"
        )
    problem = _shape_problem(meta, META_SHAPE) or _shape_problem(meta.get("spec") or {},
                                                                  SPEC_SHAPE, "spec.")
    for key in ("metrics", "runtimes"):  # tables of objects, one per metric or runtime
        table = meta.get(key) or {}
        problem = problem or _shape_problem(table, {name: (dict,) for name in table}, f"{key}.")
    if problem:
        raise ResultsError(f"{str(path)!r}: {problem}")
    return _upgrade(meta)


def _shape_problem(data: dict[str, Any], shape: dict[str, tuple[type, ...]],
                   prefix: str = "") -> str | None:
    for key, kinds in shape.items():
        if key in data and not isinstance(data[key], kinds):
            return (f"{prefix}{key} is {quoted(data[key])}, not "
                    f"{' or '.join(_JSON_NAMES[k] for k in kinds)}")
    return None


def _json_type(value: Any) -> str:
    return next((name for kind, name in _JSON_NAMES.items() if isinstance(value, kind)), "value")


def _upgrade(meta: dict[str, Any]) -> dict[str, Any]:
    # Version 1 is the only one so far; an older version's conversion goes here.
    return meta


def _not_a_sample(row: Any) -> str | None:
    """Why a parsed line is not a sample; None when it is one."""
    if not isinstance(row, dict):
        return f"{quoted(row)} is {_json_type(row)}, not an object"
    for key in REQUIRED_SAMPLE_KEYS:
        if key not in row:
            return f"it has no {key!r}"
    for key, kinds in SAMPLE_SHAPE.items():
        value = row.get(key)
        # bool is an int to Python, not a number or a round to a reader.
        if key in row and (not isinstance(value, kinds)
                           or (isinstance(value, bool) and bool not in kinds)):
            return (f"{key} is {quoted(value)}, not "
                    f"{' or '.join(_JSON_NAMES[k] for k in kinds)}")
    return None


def read_samples(run_dir: Path) -> tuple[pd.DataFrame, list[int]]:
    """The samples as a DataFrame, and the numbers of the lines dropped as damaged: lines that
    are not JSON (a torn or corrupted write). A torn last line (a crash mid-write, no newline
    after it) is dropped and not counted: it is what an interrupted run leaves. A line that is
    JSON but not a sample means the file is not a run's: ResultsError, as for a file with no
    sample at all among damaged lines (a binary file)."""
    path = run_dir / SAMPLES_FILE
    rows: list[dict[str, Any]] = []
    damaged: list[int] = []
    try:
        data = path.read_bytes() if path.is_file() else b""
    except OSError as exc:
        raise ResultsError(f"cannot read {str(path)!r}: {exc.strerror}") from exc
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
            if number < len(lines):  # the last piece has no newline after it: torn
                damaged.append(number)
            continue
        problem = _not_a_sample(row)
        if problem:
            raise ResultsError(f"{str(path)!r} line {number}: {problem}; each line of a "
                               f"{SAMPLES_FILE} is one sample, a JSON object")
        rows.append(row)
    if damaged and not rows:
        raise ResultsError(f"{str(path)!r} holds no sample: none of its {len(damaged)} lines "
                           f"is JSON (is it a {SAMPLES_FILE}?)")
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    frame["warmup"] = frame["warmup"].astype(bool)
    return frame, damaged


def load_samples(run_dir: Path) -> pd.DataFrame:
    """The samples as a DataFrame (see read_samples); damaged lines are dropped."""
    return read_samples(run_dir)[0]


def load_run(run_dir: Path) -> Run:
    meta = load_meta(run_dir)
    samples, damaged = read_samples(run_dir)
    return Run(dir=run_dir, meta=meta, samples=samples, damaged=damaged)
