"""Reading a run directory back: run.json checked against its model (older format versions
upgraded first), samples.jsonl into a table with damaged lines counted and left out.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from pydantic import ValidationError

from sandbench import owner
from sandbench.errors import BadInput, quoted
from sandbench.formats import RunMeta
from sandbench.model import FORMAT_VERSION
from sandbench.results.layout import RUN_FILE, SAMPLES_FILE

#: Columns of the samples table, in order, also when a run has no samples yet.
COLUMNS = [
    "run_id", "backend", "runtime", "workload", "metric", "unit", "value", "round", "warmup",
    "status", "time", "labels", "reason", "raw", "clock", "output",
]


#: JSON's names for the types a message says were expected.
_JSON_NAMES: dict[type, str] = {dict: "an object", list: "an array", str: "a string",
                                bool: "true or false", int: "an integer", float: "a number",
                                type(None): "null"}
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


#: Units of durations: a measured one is never negative, nor longer than any sandbox may run.
DURATION_UNITS = frozenset({"ns", "ns/op", "µs", "us", "ms", "s"})
#: The longest duration a sample can hold, in ns: a day, the longest --timeout a sandbox gets.
LONGEST_NS = 86_400 * 1e9
_NS = {"ns": 1.0, "ns/op": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


class ResultsError(BadInput):
    """A run directory that cannot be read."""


def liveness(meta: dict[str, Any]) -> dict[str, Any]:
    """A run.json that says "running" but whose owner is dead (SIGKILL, OOM, a power cut) is
    read as "crashed": it will never finish. Runs of other hosts, and runs without a recorded
    owner, are taken at their word."""
    if meta.get("status") == "running" and owner.alive(meta.get("owner")) is False:
        recorded = meta["owner"]
        meta = {**meta, "status": "crashed",
                "status_reason": f"its harness (pid {recorded.get('pid')}) is gone without "
                                 "recording an end: killed, or the machine restarted"}
    return meta


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

    @cached_property
    def info(self) -> RunMeta:
        """run.json through its model: what the rest of the package reads."""
        return RunMeta.read(self.meta)

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
    meta = _upgrade(meta, path)
    try:
        RunMeta.read(meta)
    except ValidationError as exc:
        raise ResultsError(f"{str(path)!r} is not sandbench run metadata: "
                           f"{_first_error(exc)}") from exc
    return liveness(meta)


def _json_type(value: Any) -> str:
    return next((name for kind, name in _JSON_NAMES.items() if isinstance(value, kind)), "value")


#: How an older run.json becomes the next version: ``{N: function from a version-N document
#: to version N + 1}``. Empty: version 1 is the first. A new version adds its step here, and
#: the step says what changed (asv's results files and pyperf's format history do the same).
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _upgrade(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    version = int(meta["format_version"])
    while version < FORMAT_VERSION:
        if version not in UPGRADES:
            raise ResultsError(f"{str(path)!r} has format_version {version!r}, which no "
                               f"sandbench wrote; this sandbench reads 1 to {FORMAT_VERSION}")
        meta = {**UPGRADES[version](meta), "format_version": version + 1}
        version += 1
    return meta


def _first_error(exc: ValidationError) -> str:
    """The model's first complaint in one line, naming the value: a wrong value before a
    missing key, as it says more about what the file is."""
    errors = exc.errors()
    error = next((e for e in errors if e["type"] != "missing"), errors[0])
    where = ".".join(str(part) for part in error["loc"]) or "(top)"
    if error["type"] == "missing":
        return f"{where} is missing"
    return f"{where} is {quoted(error.get('input'))}: {error['msg'].lower()}"


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
    return _not_a_time(row.get("time")) or not_a_measurement(row)


def _not_a_time(value: object) -> str | None:
    if value is None:
        return None
    try:
        dt.datetime.fromisoformat(str(value))
    except ValueError:
        return f"time is {quoted(value)}, not an ISO 8601 time"
    return None


def not_a_measurement(row: dict[str, Any]) -> str | None:
    """Why a sample's value cannot have been measured (not finite; ok without a value; a
    duration that is negative or longer than a day); None when it can. The writer turns such
    a sample into a failed one, the reader refuses a file that holds one."""
    value, unit = row.get("value"), row.get("unit")
    what = f"{row['runtime']} {row['workload']} {row['metric']} round {row.get('round')}"
    if value is None:
        return f"{what} has status ok and no value" if row["status"] == "ok" else None
    if not math.isfinite(value):
        return f"{what} has value {quoted(value)}, not a finite number"
    if unit in DURATION_UNITS and row["status"] == "ok":
        if value < 0:
            return f"{what} lasted {quoted(value)} {unit}: a measured duration is not negative"
        if value * _NS[unit] > LONGEST_NS:
            return (f"{what} lasted {quoted(value)} {unit}: longer than any sandbox may run "
                    "(a day)")
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
    if not path.is_file():
        # RunWriter makes it, empty, before run.json: a run that measured nothing has one too.
        what = "a directory" if path.is_dir() else "missing" if not os.path.lexists(path) \
            else "not a regular file"
        raise ResultsError(f"{str(path)!r} is {what}; every run directory holds its samples "
                           f"in a {SAMPLES_FILE} file (empty when nothing was measured), so "
                           "this run's samples are lost")
    try:
        data = path.read_bytes()
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
    if samples.empty and not damaged and meta.get("status") == "completed" \
            and meta.get("valid") is True:
        # A run the runner judged ran every sandbox, and each gives a sample (a failure too).
        raise ResultsError(f"{str(run_dir / SAMPLES_FILE)!r} is empty, yet {RUN_FILE} says the "
                           "run completed and is valid: its samples are lost")
    return Run(dir=run_dir, meta=meta, samples=samples, damaged=damaged)
