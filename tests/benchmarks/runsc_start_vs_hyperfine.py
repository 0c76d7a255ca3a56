"""sandbench's runsc request_to_exit against hyperfine's `runsc run` of the same bundle (not
run in CI; figures for issue 11).

The bundle is made the way sandbench makes one (same config.json, overlay root, volume), and
runsc gets the flags local.yaml gives it. sandbench's request_to_exit is `runsc create`, then
`runsc start`, then the sentry's exit seen through a pidfd. hyperfine times `runsc run`: create
+ start + wait in one process, which then also destroys the sandbox, so its time holds a
teardown that sandbench's request_to_exit leaves out (sandbench deletes after it ends). A
shell `create && start && wait` cannot stand in: the probe exits before `runsc wait` asks, and
runsc then cannot say the exit status (exit 128, tests/cluster/GVISOR-NOTES.md).

The target is that the medians agree within 5% or 2 ms. The two alternate in blocks, so a
change in the host's load during the benchmark falls on both.

    nice -n 19 .venv/bin/python tests/benchmarks/runsc_start_vs_hyperfine.py [ROUNDS [BLOCKS]]
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

from machine import load, machine

from sandbench.backends.local import mounts, oci_config
from sandbench.backends.local.backend import find_binary, runtime_table
from sandbench.image import build_image
from sandbench.results import load_run

SANDBOX = "sandbench-hyperfine-runsc"


def bundle(root: Path, rootfs: Path) -> Path:
    merged = root / "rootfs"
    mounts.mount_overlay(rootfs, root / "upper", root / "work", merged)
    (root / "volume").mkdir()
    config = oci_config.config(sandbox_id=SANDBOX, argv=["/sandbench/probe", "start"], env={},
                               rootfs=str(merged), volume=str(root / "volume"), cpus=1.0,
                               memory_mib=512)
    (root / "config.json").write_text(json.dumps(config))
    return root


def hyperfine_times(root: Path, runsc: str, flags: list[str], rounds: int) -> list[float]:
    """Times in ms of `runsc run` of the bundle."""
    out = root / "hyperfine.json"
    prefix = " ".join([runsc, "--root", str(root / "state"), *flags])
    subprocess.run(["hyperfine", "--warmup", "2", "--runs", str(rounds), "-N", "--export-json",
                    str(out), "--output", "null", "--prepare",
                    f"{prefix} delete --force {SANDBOX}",
                    f"{prefix} run --bundle {root} {SANDBOX}"], check=True)
    subprocess.run([*prefix.split(), "delete", "--force", SANDBOX], check=False)
    # The first gofer of a --root bind-mounts an empty network namespace there.
    subprocess.run(["umount", str(root / "state" / "null-netns")], check=False)
    return [t * 1000 for t in json.loads(out.read_text())["results"][0]["times"]]


def sandbench_times(rounds: int, out: Path) -> list[float]:
    subprocess.run([sys.executable, "-m", "sandbench", "run", "--runtimes", "runsc",
                    "--workloads", "start", "--rounds", str(rounds), "--warmup", "2", "--out",
                    str(out), "--no-report"], check=True, stdout=subprocess.DEVNULL)
    (run_dir,) = list(out.iterdir())
    samples = load_run(run_dir).samples
    exits = samples[~samples["warmup"] & (samples["metric"] == "request_to_exit")]
    return [float(v) for v in exits["value"]]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    blocks = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    cache = Path(os.environ.get("SANDBENCH_CACHE", Path.home() / ".cache" / "sandbench"))
    entry = runtime_table()["runsc"]
    runsc = find_binary(entry, cache)
    if runsc is None:
        sys.exit("runsc is neither on PATH nor built in the cache: make gvisor")
    image = build_image(cache)
    work = Path(tempfile.mkdtemp(prefix="sandbench-runsc-hyperfine-"))
    before = load()
    try:
        root = bundle(work / "bundle", image.rootfs)
        theirs: list[float] = []
        mine: list[float] = []
        for block in range(blocks):
            theirs += hyperfine_times(root, runsc, list(entry.flags),
                                      rounds // blocks)
            mine += sandbench_times(rounds // blocks, work / f"runs{block}")
        ran, ours = statistics.median(theirs), statistics.median(mine)
    finally:
        mounts.unmount_all(work)
        shutil.rmtree(work, ignore_errors=True)
    print(f"runsc ({' '.join(entry['flags'])}), {len(mine)} and {len(theirs)} rounds in "
          f"{blocks} alternating blocks, medians [quartiles]:\n"
          f"  sandbench request_to_exit {ours:.1f} ms {_quartiles(mine)}\n"
          f"  vs hyperfine `runsc run` {ran:.1f} ms {_quartiles(theirs)} (its teardown "
          f"included): {_gap(ours, ran)}\n"
          f"  {machine()}\n  before: {before}; after: {load()}")


def _quartiles(times: list[float]) -> str:
    low, _, high = statistics.quantiles(times, n=4)
    return f"[{low:.1f}, {high:.1f}]"


def _gap(ours: float, theirs: float) -> str:
    gap = ours - theirs
    met = abs(gap) <= 2 or abs(gap) <= 0.05 * theirs
    return (f"{gap:+.1f} ms, {gap / theirs:+.1%} (target within 5% or 2 ms: "
            f"{'met' if met else 'not met'})")


if __name__ == "__main__":
    main()
