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

Index format history (``index_version`` on each line): 1, the first. A line is read and written
through formats.HistoryEntry, verdict.json's gate through formats.GateRecord.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from sandbench.formats import INDEX_VERSION, NOT_GOOD_GATES, GateRecord, HistoryEntry, RunMeta
from sandbench.results import RUN_FILE, ResultsError, load_meta

__all__ = ["INDEX_FILE", "INDEX_VERSION", "NOT_GOOD_GATES", "VERDICT_FILE", "Entry",
           "last_good", "load_index", "read_entry", "run_dirs"]

INDEX_FILE = "index.jsonl"
VERDICT_FILE = "verdict.json"


#: One run of the history (a line of the index); its model is formats.HistoryEntry.
Entry = HistoryEntry


def _stamp(run_dir: Path) -> list[int]:
    stamp: list[int] = []
    for name in (RUN_FILE, VERDICT_FILE):
        try:
            info = (run_dir / name).stat()
            stamp += [info.st_size, info.st_mtime_ns]
        except OSError:  # missing, or a symlink loop: read as absent
            stamp += [0, 0]
    return stamp


def _gate(run_dir: Path) -> str:
    try:
        record = GateRecord.model_validate_json((run_dir / VERDICT_FILE).read_bytes())
    except (OSError, ValidationError):
        return ""
    return record.gate or ""


def read_entry(history: Path, run_dir: Path) -> Entry:
    """The index line of one run directory; raises ResultsError for an unreadable run."""
    meta = RunMeta.read(load_meta(run_dir))
    return Entry(
        run_id=meta.run_id,
        path=run_dir.relative_to(history).as_posix(),
        started_at=meta.started_at,
        status=meta.status,
        valid=meta.valid,
        backend=meta.backend,
        runtimes=meta.spec.runtimes or list(meta.runtimes),
        host=str(meta.host.get("hostname") or ""),
        commit=meta.git_commit or "",
        spec_name=meta.spec.name or "",
        sandbench_version=meta.sandbench_version or "",
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
    try:
        lines = path.read_bytes().splitlines() if path.is_file() else []
    except OSError:
        return known  # derived data: every run is read again
    for line in lines:
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or row.get("index_version") != INDEX_VERSION:
                continue  # another version's line: re-read from its run
            entry = Entry.model_validate(row)
        except (ValueError, RecursionError):  # not JSON or UTF-8, or not an index line
            continue  # the run is read again
        known[entry.path] = entry
    return known


def _write_index(path: Path, entries: Iterable[Entry]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            for entry in entries:
                out.write(json.dumps(entry.to_json(), sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError:
        # The index only saves reading runs again: a history on a read-only mount, or with
        # something else in the index's place, is still listed, only read in full each time.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Scan:
    """What a history directory holds: its runs, and the run directories that could not be
    read, each with why."""

    entries: list[Entry]
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def scan(history: Path, *, rebuild: bool = False) -> Scan:
    """Every run under ``history``, oldest first, with the index brought up to date (and
    written back when anything changed); a run directory that cannot be read is set aside
    with its reason, and the others are listed."""
    if not history.is_dir():
        raise ResultsError(f"{str(history)!r} is not a directory of runs")
    index = history / INDEX_FILE
    known = {} if rebuild else _read_index(index)
    entries: list[Entry] = []
    unreadable: list[tuple[str, str]] = []
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
        except ResultsError as exc:
            unreadable.append((rel, str(exc)))
    entries.sort(key=lambda e: (e.started_at, e.run_id))
    if rebuild or entries != sorted(known.values(), key=lambda e: (e.started_at, e.run_id)):
        _write_index(index, entries)
    return Scan(entries, unreadable)


def load_index(history: Path, *, rebuild: bool = False) -> list[Entry]:
    """The runs of :func:`scan`; unreadable run directories are left out."""
    return scan(history, rebuild=rebuild).entries


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
