"""Writing a run directory: made exclusively, samples appended durably as they come, run.json
replaced atomically, and a directory a stopped run measured nothing into taken back.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import dataclasses
import os
import secrets
from pathlib import Path
from typing import Any, Iterable

from sandbench import owner
from sandbench.errors import RunFailed
from sandbench.formats import RunMeta
from sandbench.model import FORMAT_VERSION, Metric, Sample, Status, utc_now
from sandbench.results.layout import OUTPUTS_DIR, RESERVE_FILE, RUN_FILE, SAMPLES_FILE
from sandbench.results.read import not_a_measurement

#: Bytes set aside at RESERVE_FILE: run.json is a few tens of KiB.
RESERVE_BYTES = 256 * 1024
#: Tries at a run directory name before giving up (a clash needs the same second and the same
#: 16-bit suffix, so a second try is already a surprise).
RUN_DIR_TRIES = 20


def new_run_id() -> str:
    """Sortable by start time, unique enough for one host: ``20261127T142512Z-3f9a``."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


class WriteFailed(RunFailed):
    """The run directory cannot be written (a full disk, a read-only filesystem)."""


def _failed(path: Path, exc: OSError) -> WriteFailed:
    full = " (the disk is full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return WriteFailed(f"cannot write {str(path)!r}: {exc.strerror or exc}{full}")


def create_run_dir(out: Path) -> tuple[str, Path]:
    """A new, empty run directory under ``out`` and its run id. Made exclusively: two runs
    started in the same second never share one (a clash takes the next suffix)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _failed(out, exc) from None
    for _ in range(RUN_DIR_TRIES):
        run_id = new_run_id()
        try:
            (out / run_id).mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise _failed(out / run_id, exc) from None
        return run_id, out / run_id
    raise WriteFailed(f"no free run directory name under {str(out)!r} after "
                      f"{RUN_DIR_TRIES} tries")


def remove_if_empty(run_dir: Path, *, with_parent: bool = False) -> None:
    """Take back a run directory from create_run_dir that nothing was written into (and the
    directory it made it in, when that was new too)."""
    for directory in [run_dir, *([run_dir.parent] if with_parent else [])]:
        try:
            directory.rmdir()
        except OSError:
            return


def discard_unmeasured(run_dir: Path, *, with_parent: bool = False) -> None:
    """Take back a run directory a stopped run measured nothing into: what RunWriter made
    before its first sample (an empty samples file, an empty outputs directory, the reserve,
    a run.json that still says "running"), then the directory. Anything else is left."""
    samples = run_dir / SAMPLES_FILE
    try:
        if samples.exists() and samples.stat().st_size:
            return
        for name in (SAMPLES_FILE, RESERVE_FILE, RUN_FILE, RUN_FILE + ".tmp"):
            (run_dir / name).unlink(missing_ok=True)
        (run_dir / OUTPUTS_DIR).rmdir()
    except OSError:
        pass
    remove_if_empty(run_dir, with_parent=with_parent)


class RunWriter:
    """Writes one run. Samples go to disk the moment they are appended, so an interrupted or
    crashed run keeps everything measured before it stopped. Every write that fails raises
    WriteFailed naming the file; samples already appended stay whole."""

    def __init__(self, run_dir: Path, meta: dict[str, Any]) -> None:
        self.dir = run_dir
        self.meta = dict(meta)
        self.meta.setdefault("format_version", FORMAT_VERSION)
        self.meta.setdefault("status", "running")
        self.meta.setdefault("started_at", utc_now())
        # Whoever reads run.json while it says "running" can tell whether it still is.
        self.meta.setdefault("owner", owner.me())
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            if (run_dir / RUN_FILE).exists():
                raise WriteFailed(f"{str(run_dir)!r} already holds a run; runs never share a "
                                  "directory")
            (run_dir / OUTPUTS_DIR).mkdir(exist_ok=True)
            self._samples = os.open(run_dir / SAMPLES_FILE,
                                    os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _failed(run_dir, exc) from None
        self.count = 0
        self._reserve()
        self.save_meta()

    def _reserve(self) -> None:
        try:
            fd = os.open(self.dir / RESERVE_FILE, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            finally:
                os.close(fd)
        except OSError:
            # No room even now: the run's first write says so.
            (self.dir / RESERVE_FILE).unlink(missing_ok=True)

    def _release_reserve(self) -> bool:
        try:
            (self.dir / RESERVE_FILE).unlink()
        except FileNotFoundError:
            return False
        return True

    def save_meta(self) -> None:
        """run.json, replaced whole: a reader sees the old or the new one, never half."""
        document = RunMeta.read(self.meta).to_json()
        text = (json.dumps(document, indent=2, sort_keys=True, default=str) + "\n").encode()
        tmp = self.dir / (RUN_FILE + ".tmp")
        try:
            try:
                _write_durably(tmp, text)
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not self._release_reserve():
                    raise
                _write_durably(tmp, text)
            os.replace(tmp, self.dir / RUN_FILE)
            _fsync_dir(self.dir)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _failed(self.dir / RUN_FILE, exc) from None

    def append(self, samples: Iterable[Sample]) -> None:
        """Append whole lines, in one write; a write that fails is taken back, so the file
        never ends in a torn line. On a full disk the reserve makes room for these samples,
        then the run stops: what was measured is never the part that is lost."""
        lines = [json.dumps(_honest(sample).to_json(), sort_keys=True) + "\n"
                 for sample in samples]
        data = "".join(lines).encode()
        try:
            self._write_samples(data)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            if not (full and self._release_reserve()):
                raise _failed(self.dir / SAMPLES_FILE, exc) from None
            try:
                self._write_samples(data)
            except OSError as again:
                raise _failed(self.dir / SAMPLES_FILE, again) from None
            self.count += len(lines)
            raise WriteFailed(f"cannot go on writing {str(self.dir / SAMPLES_FILE)!r}: "
                              f"{exc.strerror} (the disk is full); every sample measured so "
                              "far is saved") from None
        self.count += len(lines)

    def _write_samples(self, data: bytes) -> None:
        before = os.fstat(self._samples).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._samples, view):]
        except OSError:
            try:
                os.ftruncate(self._samples, before)
            except OSError:
                pass
            raise

    def sync(self) -> None:
        """Make the samples so far durable (the end of a round): a crash of the machine, not
        only of the harness, then loses at most the round in flight."""
        try:
            os.fsync(self._samples)
        except OSError as exc:
            raise _failed(self.dir / SAMPLES_FILE, exc) from None

    def output_path(self, name: str) -> str:
        """Where a sandbox's full output goes, relative to the run directory."""
        return f"{OUTPUTS_DIR}/{name}.txt"

    def save_output(self, name: str, text: str) -> str:
        """Keep a sandbox's full output; returns its path relative to the run directory."""
        rel = self.output_path(name)
        try:
            (self.dir / rel).write_text(text, encoding="utf-8", errors="replace")
        except OSError as exc:
            raise _failed(self.dir / rel, exc) from None
        return rel

    def finish(self, status: str, reason: str | None = None) -> None:
        self.meta["status"] = status
        self.meta["ended_at"] = utc_now()
        if reason:
            self.meta["status_reason"] = reason
        if self._samples >= 0:
            try:
                os.fsync(self._samples)
            except OSError:
                pass  # what could not be written already failed the run, by name
            os.close(self._samples)
            self._samples = -1
        self.save_meta()
        self._release_reserve()


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def metrics_table(metrics: Iterable[Metric]) -> dict[str, dict[str, str]]:
    """The metrics a run measured, stored in run.json so the results explain themselves."""
    return {
        m.name: {"unit": m.unit, "better": str(m.better), "description": m.description}
        for m in metrics
    }


def _honest(sample: Sample) -> Sample:
    """The sample, or a failed one saying why its value cannot have been measured (a parser's
    NaN, a negative duration): never a value the reader would refuse the whole file for."""
    problem = not_a_measurement(sample.to_json())
    if problem is None:
        return sample
    return dataclasses.replace(sample, value=None, status=Status.FAILED,
                               reason=f"not a measurement: {problem}")
