"""A run's results on disk: ``run.json`` plus an append-only ``samples.jsonl``.

Layout of a run directory::

    run.json        metadata: resolved spec, versions, host facts, metrics, status, times
    samples.jsonl   one Sample per line, appended (and flushed) as soon as it exists
    outputs/        each sandbox's full stdout/stderr, named in the samples' ``output`` field

Format history (``format_version`` in run.json):

    1  the first version.

A reader of a newer version refuses it with a message; an older version is upgraded step by
step through ``UPGRADES`` (none so far), then checked against formats.RunMeta, the model
run.json is written through and its JSON Schema (``sandbench schema run``) comes from.
"""

from __future__ import annotations

import json
import os
import secrets
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from functools import cached_property
from typing import Any, Callable, Iterable

import pandas as pd
from pydantic import ValidationError

from sandbench.errors import BadInput
from sandbench.formats import RunMeta
from sandbench.model import FORMAT_VERSION, Metric, Sample, utc_now

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
OUTPUTS_DIR = "outputs"

#: Columns of the samples table, in order, also when a run has no samples yet.
COLUMNS = [
    "run_id", "backend", "runtime", "workload", "metric", "unit", "value", "round", "warmup",
    "status", "time", "labels", "reason", "raw", "clock", "output",
]


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
        tmp.write_text(json.dumps(RunMeta.read(self.meta).to_json(), indent=2, sort_keys=True, default=str) + "\n")
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

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id", self.dir.name))

    @cached_property
    def info(self) -> RunMeta:
        """run.json through its model: what the rest of the package reads."""
        return RunMeta.read(self.meta)


def load_meta(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise ResultsError(f"{str(run_dir)!r} is not a run directory: it has no {RUN_FILE}")
    try:
        meta: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ResultsError(
            f"{str(path)!r} has format_version {version!r}; this sandbench reads 1 to "
            f"{FORMAT_VERSION}: upgrade sandbench"
        )
    meta = _upgrade(meta, path)
    try:
        RunMeta.read(meta)
    except ValidationError as exc:
        raise ResultsError(f"{str(path)!r} is not sandbench run metadata: "
                           f"{_first_error(exc)}") from exc
    return meta


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
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "(top)"
    return f"{where}: {error['msg']} (got {error.get('input')!r:.80})"


def load_samples(run_dir: Path) -> pd.DataFrame:
    """The samples as a DataFrame; a torn last line (a crash mid-write) is dropped."""
    path = run_dir / SAMPLES_FILE
    rows: list[dict[str, Any]] = []
    if path.is_file():
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    frame["warmup"] = frame["warmup"].astype(bool)
    return frame


def load_run(run_dir: Path) -> Run:
    return Run(dir=run_dir, meta=load_meta(run_dir), samples=load_samples(run_dir))
