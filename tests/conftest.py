"""Shared fixtures: the real workload image (built once, cached like a user's) and helpers
to run the real `sandbench` command."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbench.backends.local import find_binary, runtime_table
from sandbench.image import WorkloadImage, build_image

GOLDEN = Path(__file__).parent / "data" / "golden"


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal delivers it. A shell that starts a job in the background without
    job control (`cmd &` in a script, nohup, CI runners) starts it with SIGINT ignored, and an
    ignored signal stays ignored across exec: every `sandbench` a test then interrupts with
    SIGINT would never see it, and the interrupt tests would wait out their timeouts. A handler
    here is reset to the default in each child at exec, as a user's interactive run has it."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def cache_dir() -> Path:
    configured = os.environ.get("SANDBENCH_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "sandbench"


@pytest.fixture(scope="session")
def sandbench_cache() -> Path:
    return cache_dir()


@pytest.fixture(scope="session")
def runsc(sandbench_cache: Path) -> str:
    """The runsc the local backend would run (on PATH, or built into the cache by `make
    test`); a test that needs it fails, not skips, without it."""
    binary = find_binary(runtime_table()["runsc"], sandbench_cache)
    if binary is None:
        pytest.fail("runsc is neither on PATH nor built in the cache: `make test` builds it "
                    "(tests/cluster/build-gvisor.sh)")
    return binary


@pytest.fixture(scope="session")
def workload_image(sandbench_cache: Path) -> WorkloadImage:
    return build_image(sandbench_cache)


def sandbench(*args: str, cwd: Path | None = None, timeout: float = 600,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "sandbench", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, check=False,
                          env={**os.environ, "COLUMNS": "250", **(env or {})})


def run_spec(spec: dict[str, Any], folder: Path, *args: str, timeout: float = 600) -> Path:
    """`sandbench run` a spec (written as YAML under ``folder``) through the real command, as
    a user runs it, with ``args`` after it; the one run directory it made (under
    ``folder``/runs). Anything but a clean exit fails the calling test with the output."""
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = folder / "runs"
    result = sandbench("run", str(path), "--out", str(out), *args, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run_dir,) = list(out.iterdir())
    return run_dir


def start_run(spec: dict[str, Any], folder: Path) -> subprocess.Popen[str]:
    """`sandbench run` a spec (as run_spec does, without a report) left running, for a test
    to interrupt (see interrupt)."""
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return subprocess.Popen([sys.executable, "-m", "sandbench", "run", str(path), "--out",
                             str(folder / "runs"), "--no-report"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


@contextlib.contextmanager
def cpu_hog() -> Iterator[None]:
    """One CPU-bound process for as long as the block runs: the "busy machine" a CI runner
    or a shared nightly host is, on one of its cores. Killed on the way out, whatever
    happens; it stops by itself after 15 minutes should the test process die first."""
    # Its own process group, killed whole: SIGKILL to `timeout` alone would orphan the loop.
    hog = subprocess.Popen(["timeout", "900", "sh", "-c", "while :; do :; done"],
                           start_new_session=True)
    try:
        yield
    finally:
        os.killpg(hog.pid, signal.SIGKILL)
        hog.wait()


def interrupt(child: subprocess.Popen[str], timeout_s: float = 180) -> str:
    """SIGINT a running `sandbench` as Ctrl-C would and wait for it; its stderr. A child still
    running when the wait runs out is killed, so it cannot go on creating sandboxes under the
    tests that follow (its leftovers would be theirs to trip over)."""
    child.send_signal(signal.SIGINT)
    try:
        _, stderr = child.communicate(timeout=timeout_s)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return stderr
