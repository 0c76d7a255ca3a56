"""The harness's own cost per start sample, against an independent timer (not run in CI).

Times, with hyperfine, `runc run` and `runc create` of one bundle made the way sandbench makes
it (same config.json, overlay root, volume), then runs sandbench's start workload on runc for as
many rounds, and prints the pairs of medians that measure the same thing:

- sandbench's request_to_created against hyperfine's `runc create` (the container deleted
  before each run): the same one command, so the difference is the harness's own cost;
- sandbench's request_to_exit (create, then start, then exit: two runc processes) against
  `runc run` (create + start + wait in one process), for scale.

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

from sandbench.backends.local import mounts, oci_config
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


def hyperfine_median(root: Path, rounds: int, verb: str) -> float:
    out = root / f"hyperfine-{verb}.json"
    runc = f"runc --root {root}/state"
    command = f"{runc} {verb} --bundle {root} sandbench-hyperfine"
    subprocess.run(["hyperfine", "--warmup", "2", "--runs", str(rounds), "-N", "--export-json",
                    str(out), "--output", "null", "--prepare",
                    f"{runc} delete --force sandbench-hyperfine", command], check=True)
    subprocess.run([*runc.split(), "delete", "--force", "sandbench-hyperfine"], check=False)
    return float(statistics.median(json.loads(out.read_text())["results"][0]["times"])) * 1000


def sandbench_medians(rounds: int, out: Path) -> dict[str, float]:
    subprocess.run([sys.executable, "-m", "sandbench", "run", "--runtimes", "runc", "--workloads",
                    "start", "--rounds", str(rounds), "--warmup", "2", "--out", str(out),
                    "--no-report"], check=True)
    (run_dir,) = list(out.iterdir())
    samples = load_run(run_dir).samples
    measured = samples[~samples["warmup"]]
    return {m: float(measured[measured["metric"] == m]["value"].median())
            for m in ("request_to_created", "request_to_exit")}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    cache = Path(os.environ.get("SANDBENCH_CACHE", Path.home() / ".cache" / "sandbench"))
    image = build_image(cache)
    work = Path(tempfile.mkdtemp(prefix="sandbench-overhead-"))
    try:
        root = bundle(work / "bundle", image.rootfs)
        created = hyperfine_median(root, rounds, "create")
        ran = hyperfine_median(root, rounds, "run")
        ours = sandbench_medians(rounds, work / "runs")
    finally:
        mounts.unmount_all(work)
        shutil.rmtree(work, ignore_errors=True)
    print(f"runc, {rounds} rounds, medians in ms:\n"
          f"  sandbench request_to_created {ours['request_to_created']:.1f}  vs  hyperfine "
          f"`runc create` {created:.1f}  (harness cost {ours['request_to_created'] - created:+.1f})\n"
          f"  sandbench request_to_exit {ours['request_to_exit']:.1f}  vs  hyperfine `runc run` "
          f"{ran:.1f}  (create and start as two runc processes, for scale)")


if __name__ == "__main__":
    main()
