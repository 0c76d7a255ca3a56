"""Figures for issue 13's closing note: what each sandbox costs this host, the density slope,
and one figure cross-checked by hand. Not part of the test suite (about 10 minutes on 2 cores,
most of it QEMU under TCG); run it as

    nice -n 19 .venv/bin/python tests/benchmarks/footprint_figures.py [--rounds 8] [--out DIR]

  1. footprint, native, runc, crun, runsc and qemu: per-sandbox overhead (host PSS beyond the
     workload's RSS), host PSS, idle CPU, medians with 95% bootstrap intervals;
  2. density, runc and runsc at N = 1, 2, 4, 8, 16, 32 (two rounds): the least-squares slope
     (MiB per extra sandbox) and intercept with t-based intervals;
  3. one runsc sandbox held, its host PSS as sandbench measures it (cgroup + process tree,
     smaps_rollup) against an independent sum: the processes whose command line names the
     sandbox id (ps), each one's full /proc/PID/smaps Pss lines added up.

The host's load average and memory are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sandbench.analysis.summary import summarize_run
from sandbench.backends.local import footprint
from sandbench.backends.local.backend import LocalBackend
from sandbench.model import Observe
from sandbench.results import load_run
from sandbench.spec import Resources
from sandbench.workloads import get


def run(out: Path, spec: dict[str, object]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.yaml").write_text(json.dumps(spec))
    result = subprocess.run(["nice", "-n", "19", sys.executable, "-m", "sandbench", "run",
                             str(out / "spec.yaml"), "--out", str(out)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"sandbench run failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    (run_dir,) = [p for p in out.iterdir() if (p / "run.json").is_file()]
    return run_dir


def host_state(label: str) -> None:
    load = os.getloadavg()
    available = next(int(line.split()[1]) for line in open("/proc/meminfo")
                     if line.startswith("MemAvailable:"))
    print(f"[{label}] load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"MemAvailable {available / 1024:.0f} MiB", flush=True)


def per_sandbox(run_dir: Path) -> None:
    summary = summarize_run(load_run(run_dir))
    table = summary.table[summary.table["workload"] == "footprint"]
    print(f"\nper sandbox ({run_dir}):")
    for metric in ("overhead_pss_mib", "host_pss_mib", "host_uss_mib", "cgroup_memory_mib",
                   "idle_cpu_ms_per_s"):
        for row in table[table["metric"] == metric].itertuples():
            print(f"  {metric:20} {row.runtime:7} n={row.n:2} median {row.median:9.3f} "
                  f"[{row.ci_low:.3f}, {row.ci_high:.3f}]")
    for line in summary.decision:
        print(f"  decision: {line.text()}")


def density(run_dir: Path) -> None:
    summary = summarize_run(load_run(run_dir))
    print(f"\ndensity ({run_dir}):")
    for curve in summary.density:
        fit = curve.fit
        print(f"  {curve.runtime}: points {curve.points}; stopped {curve.stopped or 'never'}")
        if fit:
            print(f"    slope {fit.slope:.2f} MiB/sandbox [{fit.slope_low:.2f}, "
                  f"{fit.slope_high:.2f}], intercept {fit.intercept:.2f} "
                  f"[{fit.intercept_low:.2f}, {fit.intercept_high:.2f}], residual sd "
                  f"{fit.residual_sd:.2f}, n {fit.n}")


def cross_check(cache: Path) -> None:
    """One runsc sandbox measured two ways."""
    backend = LocalBackend(cache, Resources(), run_id="crosscheck")
    try:
        backend.prepare(["runsc"])
        driver = backend._driver("runsc")
        case = get("footprint").cases(get("footprint").params({"hold_s": 120}))[0]
        sandbox_id = "sandbench-crosscheck-0"
        backend._live.add(("runsc", sandbox_id))
        where = driver.hold(case, sandbox_id, 60)  # type: ignore[attr-defined]
        measured = footprint.measure(where, Observe(1.0, 0.5))
        ours = sum(p.pss_kib for p in measured.processes)
        ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True,
                            check=True).stdout
        pids = [int(line.split()[0]) for line in ps.splitlines()
                if sandbox_id in line and "ps -eo" not in line]
        by_hand = _pss_by_hand(pids)
        # The same processes sandbench counted, their full smaps summed by hand: the method
        # (smaps_rollup) against the long way, with the set of processes held equal.
        same_set = _pss_by_hand([p.pid for p in measured.processes])
        print(f"\ncross-check, one runsc sandbox: sandbench {ours} KiB over "
              f"{len(measured.processes)} processes "
              f"({', '.join(sorted(p.comm for p in measured.processes))}); "
              f"by hand (ps names the sandbox id; /proc/PID/smaps Pss lines summed) {by_hand} "
              f"KiB over {len(pids)} processes; difference {ours - by_hand:+d} KiB "
              f"({(ours - by_hand) / by_hand:+.1%}); sandbench's own {len(measured.processes)} "
              f"processes by hand: {same_set} KiB, difference {ours - same_set:+d} KiB")
        missing = {p.pid for p in measured.processes} - set(pids)
        if missing:
            print(f"  processes sandbench counted that ps does not name the sandbox in: "
                  f"{sorted(missing)} ({', '.join(p.comm for p in measured.processes if p.pid in missing)})")
    finally:
        backend.cleanup()


def _pss_by_hand(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/smaps"):
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--footprint-run", type=Path, default=None,
                        help="a footprint run already made: report it instead of running one")
    parser.add_argument("--only-cross-check", action="store_true")
    args = parser.parse_args()
    if args.only_cross_check:
        cross_check(Path(os.environ.get("SANDBENCH_CACHE", Path.home() / ".cache" / "sandbench")))
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="footprint-figures-"))
    cache = Path(os.environ.get("SANDBENCH_CACHE", Path.home() / ".cache" / "sandbench"))
    host_state("start")
    per_sandbox(args.footprint_run or run(out / "footprint", {
        "backend": "local", "runtimes": ["native", "runc", "crun", "runsc", "qemu"],
        "baseline": "native", "rounds": args.rounds, "warmup": 1,
        "workloads": {"footprint": {"params": {"hold_s": 10}}}}))
    host_state("after footprint")
    density(run(out / "density", {
        "backend": "local", "runtimes": ["runc", "runsc"], "baseline": "runc", "rounds": 2,
        "warmup": 0, "timeout_s": 600,
        "workloads": {"density": {"params": {"counts": [1, 2, 4, 8, 16, 32]}}}}))
    host_state("after density")
    cross_check(cache)
    host_state("end")
    print(f"\nruns in {out}")


if __name__ == "__main__":
    main()
