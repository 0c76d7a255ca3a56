"""The harness's own cost per start sample, against an independent timer (not run in CI).

Times `runc run` of one bundle made the way sandbench makes it (same config.json, overlay
root, volume) with hyperfine, then runs sandbench's start workload on runc for as many rounds,
and prints both medians: sandbench's request_to_exit (create + start + exit, pidfd-timed)
and hyperfine's whole-command time for `runc run` (create + start + wait in one process).

    .venv/bin/python tests/benchmarks/harness_overhead.py [ROUNDS]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from sandbench.backends import mounts, oci_config
from sandbench.image import build_image
from sandbench.results import load_run


def bundle(root: Path, rootfs: Path) -> Path:
    merged = root / "rootfs"
    mounts.mount_overlay(rootfs, root / "upper", root / "work", merged)
    (root / "volume").mkdir()
    config = oci_config.config(sandbox_id="sandbench-hyperfine", argv=["/sandbench/probe", "start"],
                               env={}, rootfs=str(merged), volume=str(root / "volume"), cpus=1.0,
                               memory_mib=512)
    (root / "config.json").write_text(json.dumps(config))
    return root


def hyperfine_median(root: Path, rounds: int) -> float:
    out = root / "hyperfine.json"
    command = f"runc --root {root}/state run --bundle {root} sandbench-hyperfine"
    subprocess.run(["hyperfine", "--warmup", "2", "--runs", str(rounds), "-N", "--export-json",
                    str(out), "--output", "pipe", command], check=True)
    return float(statistics.median(json.loads(out.read_text())["results"][0]["times"])) * 1000


def sandbench_median(rounds: int, out: Path) -> float:
    subprocess.run([sys.executable, "-m", "sandbench", "run", "--runtimes", "runc", "--workloads",
                    "start", "--rounds", str(rounds), "--warmup", "2", "--out", str(out),
                    "--no-report"], check=True)
    (run_dir,) = list(out.iterdir())
    samples = load_run(run_dir).samples
    exits = samples[(samples["metric"] == "request_to_exit") & ~samples["warmup"]]["value"]
    return float(exits.median())


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    cache = Path(os.environ.get("SANDBENCH_CACHE", Path.home() / ".cache" / "sandbench"))
    image = build_image(cache)
    work = Path(tempfile.mkdtemp(prefix="sandbench-overhead-"))
    try:
        timed = hyperfine_median(bundle(work / "bundle", image.rootfs), rounds)
        ours = sandbench_median(rounds, work / "runs")
    finally:
        mounts.unmount_all(work)
        shutil.rmtree(work, ignore_errors=True)
    print(f"runc, {rounds} rounds: sandbench median request_to_exit {ours:.1f} ms; "
          f"hyperfine median `runc run` {timed:.1f} ms; difference {ours - timed:+.1f} ms")


if __name__ == "__main__":
    main()
