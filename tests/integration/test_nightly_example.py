"""The CronJob example's script, run two nights on this host with the local backend in place
of the cluster: the first night becomes the baseline, the second is compared, recorded,
reported and kept. Night 2 runs beside a CPU hog, as a shared runner's nights differ: the
gate must call that host drift, not a regression."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml

from conftest import cpu_hog

pytestmark = pytest.mark.integration


def night_script(new: Path) -> str:
    text = resources.files("sandbench").joinpath("examples", "nightly-cronjob.yaml").read_text()
    cronjob = list(yaml.safe_load_all(text))[1]
    script = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    # The cluster is replaced by this host, the standard profile by a small run.
    local = script.replace("--profile standard --backend kubernetes",
                           "--runtimes native,runc --workloads start --rounds 6")
    local = local.replace('--image "$WORKLOAD_IMAGE" ', "").replace("--backend kubernetes",
                                                                     "--backend local")
    assert "kubernetes" not in local
    return local.replace("/work/new", str(new))


def test_two_nights_of_the_cronjob_script(tmp_path: Path, workload_image: object) -> None:
    history = tmp_path / "history"
    env = {**os.environ, "HISTORY": str(history), "ALLOW_ENV_CHANGE": "",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for night in (1, 2):
        with cpu_hog() if night == 2 else contextlib.nullcontext():
            result = subprocess.run(["sh", "-c", night_script(tmp_path / f"new{night}")],
                                    env=env, capture_output=True, text=True, timeout=600,
                                    check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    first, second = sorted(p for p in history.iterdir() if p.is_dir())
    assert (first / "report.html").is_file() and not (first / "verdict.json").exists()
    verdict = json.loads((second / "verdict.json").read_text())
    assert verdict["gate"] == "passed" and verdict["base"]["run_id"] == first.name
    assert (second / "junit.xml").is_file()
    assert "Verdict: Against the baseline run" in (second / "report.html").read_text()
    index = [json.loads(line) for line in (history / "index.jsonl").read_text().splitlines()]
    assert [entry["gate"] for entry in index] == ["", "passed"]
