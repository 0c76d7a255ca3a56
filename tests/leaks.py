"""What a test's own sandbench runs left on this machine, and runs to stop at random times.

Other agents and CI runs share the machine, its runtimes' state roots and its cgroups, so a
leak is counted only when it is provably one of the test's runs: every run gets a private
cache directory (the shared image linked in, scratch of its own), and its run ids come from
the --out directory.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbench import owner
from sandbench.backends.local import mounts, netpath
from sandbench.results import load_meta

#: What a private cache shares with the user's: the built image and the accelerator decision.
SHARED = ("images", "accel")


def private_cache(shared: Path, private: Path) -> Path:
    """A cache directory with the shared image but a scratch directory of its own."""
    private.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        if (shared / name).exists() and not (private / name).exists():
            (private / name).symlink_to(shared / name)
    return private


def _containers() -> dict[str, str]:
    """Every container in sandbench's state roots, id -> its state root's runtime."""
    found = {}
    runsc = sorted(Path.home().glob(".cache/sandbench/gvisor/*/bin/runsc"))
    for root in Path("/run/sandbench").glob("*"):
        binary = {"crun": "crun", "runsc": str(runsc[-1]) if runsc else "runsc"}.get(
            root.name.split("-")[0], "runc")
        listed = subprocess.run([binary, "--root", str(root), "list", "-q"],
                                capture_output=True, text=True, check=False).stdout.split()
        found.update({c: root.name for c in listed})
    return found


def _cgroups() -> set[str]:
    return {str(c) for h in Path("/sys/fs/cgroup").iterdir() if (h / "sandbench").is_dir()
            for c in (h / "sandbench").iterdir() if c.is_dir()}


def _processes_in(root: Path) -> list[str]:
    """Processes whose command line or working directory is under ``root``."""
    needle = str(root)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if needle in cmdline or cwd.startswith(needle) or "(deleted)" in cwd and needle in cwd:
            found.append(f"process {entry.name} ({cmdline.strip()[:80]}, cwd {cwd})")
    return found


def leftovers(cache: Path, out: Path) -> list[str]:
    """Containers, cgroups, network namespaces, mounts, processes and scratch left by the runs in ``out`` that
    used ``cache``; and any run.json still saying "running" once its owner is gone."""
    prefixes = [owner.sandbox_prefix(run.name) + "-" for run in out.iterdir() if run.is_dir()]
    found = [f"{rt} container {c}" for c, rt in _containers().items()
             if c.startswith(tuple(prefixes)) and prefixes]
    found += [f"cgroup {c}" for c in sorted(_cgroups())
              if prefixes and Path(c).name.startswith(tuple(prefixes))]
    found += [f"network namespace {n}" for n in netpath.present()
              if prefixes and netpath.sandbox_of(n).startswith(tuple(prefixes))]
    scratch = cache / "scratch"
    found += [f"mount {m}" for m in mounts.mounts_under(scratch)] if scratch.exists() else []
    found += [f"scratch {d}" for d in sorted(scratch.iterdir())] if scratch.is_dir() else []
    found += _processes_in(cache)
    for run in out.iterdir():
        # Read as readers do: a run whose owner died reads as crashed, not running.
        if (run / "run.json").is_file() and load_meta(run)["status"] == "running":
            found.append(f"run {run.name} still says running")
    return found


@dataclass
class Stopped:
    """One run stopped by a signal."""

    signum: int
    after_s: float
    returncode: int
    stderr: str
    leftovers: list[str] = field(default_factory=list)


def stop_at_random(cache: Path, out: Path, rng: random.Random, *, latest_s: float = 2.5,
                   runtimes: str = "native,runc,crun", after_samples: int = 0,
                   second_signal: bool = False, workloads: str = "start") -> Stopped:
    """Start a run, send it SIGINT or SIGTERM at a random moment up to ``latest_s`` after its
    run directory appears (Python's imports take seconds on a busy machine, and are not what
    is tested) or after its first ``after_samples`` samples, a second Ctrl-C soon after when
    asked (the double Ctrl-C), and wait for it to end."""
    before = set(out.iterdir()) if out.exists() else set()
    child = subprocess.Popen(
        [sys.executable, "-m", "sandbench", "run", "--workloads", workloads, "--rounds", "50",
         "--runtimes", runtimes, "--out", str(out), "--no-report", "--cache-dir", str(cache)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"})
    _wait_until_started(out, before, child, after_samples)
    after = rng.uniform(0.0, latest_s)
    signum = rng.choice([signal.SIGINT, signal.SIGTERM])
    time.sleep(after)
    child.send_signal(signum)
    if second_signal:
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=300)
    return Stopped(int(signum), after, child.returncode, stderr)


def _wait_until_started(out: Path, before: set[Path], child: subprocess.Popen[str],
                        samples: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and child.poll() is None:
        new = set(out.iterdir()) - before if out.exists() else set()
        if new and not samples:
            return
        for run in new:
            try:
                if sum(1 for _ in open(run / "samples.jsonl")) >= samples:
                    return
            except OSError:
                pass
        time.sleep(0.02)
    raise AssertionError(f"the run in {out} never started: {child.poll()}")
