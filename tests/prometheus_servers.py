"""Debian's real Prometheus and Pushgateway (and any server started like them) on 127.0.0.1, each on a free port with its own
temporary storage, killed on the way out."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sshd import free_port

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
PUSHGATEWAY = shutil.which("prometheus-pushgateway")
#: Long enough for a loaded 2-core host; readiness is polled, never assumed after a sleep.
READY_TIMEOUT_S = 60.0


def need(binary: str | None, package: str) -> str:
    if binary is None:
        pytest.skip(f"{package} is not installed (apt-get install -y {package}; "
                    "`make test` installs it)")
    return binary


@dataclass(frozen=True)
class Server:
    url: str
    log: Path

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=30) as response:
            body = response.read().decode()
        return json.loads(body) if path.startswith("/api/") else body


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, ready: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}{ready}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {READY_TIMEOUT_S} s: {log.read_text()}")


@contextlib.contextmanager
def serve(argv: list[str], port: int, log: Path, ready: str = "/-/ready") -> Iterator[Server]:
    """The server ``argv`` starts, once ``ready`` answers 200 on ``port``; killed after."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, url, log, ready)
        yield Server(url, log)
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def prometheus(storage: Path) -> Iterator[Server]:
    """A Prometheus server on the TSDB blocks in ``storage``, scraping nothing. Retention is
    a century: it is counted back from the newest block, and a run's samples are as old as
    the run."""
    binary = need(PROMETHEUS, "prometheus")
    config = storage.parent / "prometheus.yml"
    config.write_text("global: {}\n")
    port = free_port()
    with serve([binary, f"--config.file={config}", f"--storage.tsdb.path={storage}",
                 "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}"],
                port, storage.parent / "prometheus.log") as server:
        yield server


@contextlib.contextmanager
def pushgateway(workdir: Path) -> Iterator[Server]:
    """A Pushgateway keeping what it is pushed in memory only."""
    binary = need(PUSHGATEWAY, "prometheus-pushgateway")
    port = free_port()
    with serve([binary, f"--web.listen-address=127.0.0.1:{port}"], port,
                workdir / "pushgateway.log") as server:
        yield server
