"""A results history: a directory of past runs and its index.

Layout::

    DIR/index.jsonl            one line per run found under DIR (this module writes it)
    DIR/RUN_ID/run.json        a run directory, as ``sandbench run --out DIR`` makes it
    DIR/RUN_ID/verdict.json    optional: ``sandbench compare ... --record`` wrote it; says
                               whether the run passed its regression gate
    DIR/2026-11/RUN_ID/...     runs may also sit one level down (a directory per month)

The index is derived data: it is rebuilt when missing, brought up to date (runs added,
changed or removed, found by run.json's and verdict.json's size and mtime) whenever it is
read, and a line of an index version this sandbench does not know is re-read from its run.
An object store prefix works the same way once synced to a directory (``aws s3 sync``,
``gsutil rsync``): only the runs that changed are read again.

Index format history (``index_version`` on each line): 1, the first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sandbench.results import RUN_FILE, ResultsError, load_meta

INDEX_FILE = "index.jsonl"
INDEX_VERSION = 1
VERDICT_FILE = "verdict.json"
#: Gate outcomes written by ``sandbench compare --record``; a run whose gate failed or was
#: refused (environment changed) is not a baseline for the next night until a person looks.
NOT_GOOD_GATES = {"failed", "refused"}


@dataclass(frozen=True)
class Entry:
    """One run of the history, as listed by ``sandbench history``."""

    run_id: str
    #: The run directory, relative to the history directory.
    path: str
    started_at: str
    status: str
    #: run.json's ``valid``: False when over 10% of samples failed; None if not recorded.
    valid: bool | None
    backend: str
    runtimes: list[str]
    host: str
    commit: str
    spec_name: str
    sandbench_version: str
    #: "passed", "failed", "refused" or "compared" from verdict.json; "" when never compared.
    gate: str = ""
    #: What the entry was read from: sizes and mtimes of run.json and verdict.json.
    stamp: list[int] = field(default_factory=list)
    index_version: int = INDEX_VERSION

    @property
    def good(self) -> bool:
        """A run fit to be the next baseline: completed, valid, and its gate not failed."""
        return self.status == "completed" and self.valid is not False \
            and self.gate not in NOT_GOOD_GATES

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _stamp(run_dir: Path) -> list[int]:
    stamp: list[int] = []
    for name in (RUN_FILE, VERDICT_FILE):
        try:
            info = (run_dir / name).stat()
            stamp += [info.st_size, info.st_mtime_ns]
        except FileNotFoundError:
            stamp += [0, 0]
    return stamp


def _gate(run_dir: Path) -> str:
    try:
        verdict = json.loads((run_dir / VERDICT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return ""
    return str(verdict.get("gate") or "") if isinstance(verdict, dict) else ""


def read_entry(history: Path, run_dir: Path) -> Entry:
    """The index line of one run directory; raises ResultsError for an unreadable run."""
    meta = load_meta(run_dir)
    spec = meta.get("spec") or {}
    host = meta.get("host") or {}
    return Entry(
        run_id=str(meta.get("run_id") or run_dir.name),
        path=run_dir.relative_to(history).as_posix(),
        started_at=str(meta.get("started_at") or ""),
        status=str(meta.get("status") or "unknown"),
        valid=meta.get("valid") if isinstance(meta.get("valid"), bool) else None,
        backend=str(meta.get("backend") or ""),
        runtimes=[str(r) for r in spec.get("runtimes") or meta.get("runtimes") or []],
        host=str(host.get("hostname") or ""),
        commit=str(meta.get("git_commit") or ""),
        spec_name=str(spec.get("name") or ""),
        sandbench_version=str(meta.get("sandbench_version") or ""),
        gate=_gate(run_dir),
        stamp=_stamp(run_dir),
    )


def run_dirs(history: Path) -> list[Path]:
    """Run directories directly under ``history`` or one level down."""
    found = [p.parent for p in history.glob(f"*/{RUN_FILE}")]
    found += [p.parent for p in history.glob(f"*/*/{RUN_FILE}")]
    return sorted(set(found))


def _read_index(path: Path) -> dict[str, Entry]:
    known: dict[str, Entry] = {}
    if not path.is_file():
        return known
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            if row.get("index_version") != INDEX_VERSION:
                continue  # another version's line: re-read from its run
            entry = Entry(**row)
        except (json.JSONDecodeError, TypeError, AttributeError):
            continue  # a torn or foreign line: the run is read again
        known[entry.path] = entry
    return known


def _write_index(path: Path, entries: Iterable[Entry]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for entry in entries:
            out.write(json.dumps(entry.to_json(), sort_keys=True) + "\n")
    os.replace(tmp, path)


def load_index(history: Path, *, rebuild: bool = False) -> list[Entry]:
    """Every run under ``history``, oldest first, with the index brought up to date (and
    written back when anything changed). Unreadable run directories are left out."""
    if not history.is_dir():
        raise ResultsError(f"{str(history)!r} is not a directory of runs")
    index = history / INDEX_FILE
    known = {} if rebuild else _read_index(index)
    entries: list[Entry] = []
    for run_dir in run_dirs(history):
        rel = run_dir.relative_to(history).as_posix()
        cached = known.get(rel)
        # A running run's line is read again: its owner may have died since, and a dead
        # owner's run is crashed though run.json never changes again.
        if cached is not None and cached.stamp == _stamp(run_dir) and cached.status != "running":
            entries.append(cached)
            continue
        try:
            entries.append(read_entry(history, run_dir))
        except ResultsError:
            continue
    entries.sort(key=lambda e: (e.started_at, e.run_id))
    if rebuild or entries != sorted(known.values(), key=lambda e: (e.started_at, e.run_id)):
        _write_index(index, entries)
    return entries


def last_good(entries: Iterable[Entry], *, before: str | None = None,
              backend: str | None = None) -> Entry | None:
    """The newest good run (see Entry.good), optionally started before the run ``before``
    (a run id) and of one backend."""
    listed = list(entries)
    limit = next((e.started_at for e in listed if e.run_id == before), None)
    good = [e for e in listed if e.good and e.run_id != before
            and (limit is None or e.started_at < limit)
            and (backend is None or e.backend == backend)]
    return good[-1] if good else None
