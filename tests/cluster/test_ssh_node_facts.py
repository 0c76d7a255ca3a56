"""The spec's kubernetes.ssh option: the test cluster's node is this machine, so a real sshd on
127.0.0.1 (tests/sshd.py) is the node's sshd. Its facts land in run.json; a host key that
changed stops the run before anything is measured or created."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import sandbench
from sshd import Sshd, running_sshd

pytestmark = pytest.mark.cluster

IMAGE = os.environ.get("SANDBENCH_WORKLOAD_IMAGE", "")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Sshd]:
    with running_sshd(tmp_path / "sshd") as running:
        yield running


def run(tmp_path: Path, server: Sshd, known_hosts: Path) -> tuple[int, str, Path]:
    spec: dict[str, Any] = {
        "profile": "quick", "backend": "kubernetes", "runtimes": ["runc"],
        "kubernetes": {"image": IMAGE, "pull_policy": "Never", "kubelet_metrics": False,
                       "ssh": {"host": "127.0.0.1", "port": server.port,
                               "key_file": str(server.client_key),
                               "known_hosts": str(known_hosts)}},
        "workloads": {"start": {"rounds": 1, "warmup": 0}},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "runs"
    result = sandbench("run", str(path), "--out", str(out), "--no-report")
    return result.returncode, result.stderr, out


def test_node_facts_over_ssh_land_in_run_metadata(tmp_path: Path, server: Sshd) -> None:
    code, stderr, out = run(tmp_path, server, server.known_hosts())
    assert code == 0, stderr[-3000:]
    (run_dir,) = list(out.iterdir())
    meta = json.loads((run_dir / "run.json").read_text())
    facts = meta["environment"]["node_ssh"]
    assert facts["kernel"] == platform.release() == meta["environment"]["node"]["kernel"]
    assert facts["host_key"] == server.fingerprint
    assert facts["kata"] == {"installed": False}
    assert meta["host"]["kernel_cmdline"] == Path("/proc/cmdline").read_text().strip()
    assert meta["host"]["thp"] == facts["thp"]["enabled"]


def test_a_changed_node_key_stops_the_run_before_it_starts(tmp_path: Path, server: Sshd) -> None:
    known = server.known_hosts()
    server.restart_with_new_host_key()
    code, stderr, out = run(tmp_path, server, known)
    assert code == 1
    assert "node facts over SSH (kubernetes.ssh): host key of" in stderr
    assert "has CHANGED" in stderr
    assert not out.exists()
