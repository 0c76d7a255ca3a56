"""Figures for the cross-run verdicts when the host's load changes between nights (issue 9).
Not part of the test suite (about 10 minutes on 2 cores); run it as

    .venv/bin/python tests/benchmarks/busier_host_figures.py [--pairs 4] [--rounds 40] [--out DIR]

Each pair is two runs of one spec (start, 40 rounds; native, crun and runc under the slowdown
wrapper tests/data/slower_runtime.c):

  A/A, busier    a quiet night, then one beside a CPU hog, the wrapper at 0% on both: every
                 regressed metric is a false alarm (target 0);
  15%, same      a quiet night, then a quiet one with runc's create 15% slower: detected when
                 runc request_to_created is regressed (target: yes, within 40 rounds);
  15%, busier    the same slowdown on a night beside a CPU hog: what the verdict says (host
                 drift, with the regression it measured, is the expected answer).

"Quiet" is whatever the host is doing without the hog; the load average and the runnable tasks
each run sampled are printed with the figures. Runs go at nice -19, as the tests run them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sandbench.nightly import compare
from sandbench.results import Run, load_run

SLOWER_SOURCE = Path(__file__).parents[1] / "data" / "slower_runtime.c"


def one_run(out: Path, wrapper: Path, percent: str, rounds: int, busy: bool) -> Run:
    out.mkdir(parents=True, exist_ok=True)
    spec = {"name": "drift", "backend": "local", "runtimes": ["native", "runc-w", "crun"],
            "variants": {"runc-w": {"runtime": "runc", "wrapper": [str(wrapper), percent]}},
            "rounds": rounds, "warmup": 2, "workloads": {"start": {}}}
    (out / "spec.yaml").write_text(json.dumps(spec))
    hog = subprocess.Popen(["sh", "-c", "while :; do :; done"],
                           start_new_session=True) if busy else None
    try:
        result = subprocess.run(["nice", "-n", "-19", sys.executable, "-m", "sandbench", "run",
                                 str(out / "spec.yaml"), "--no-report", "--out", str(out)],
                                capture_output=True, text=True, check=False)
    finally:
        if hog is not None:
            os.killpg(hog.pid, signal.SIGKILL)
            hog.wait()
    if result.returncode != 0:
        raise SystemExit(f"sandbench run failed:\n{result.stderr[-3000:]}")
    (run_dir,) = [p for p in out.iterdir() if (p / "run.json").is_file()]
    return load_run(run_dir)


def runnable(run: Run) -> float | None:
    return (run.meta.get("host_state", {}).get("during") or {}).get("others_runnable_mean")


def created(comparison: compare.Comparison) -> compare.MetricComparison:
    return next(m for m in comparison.metrics
                if m.runtime == "runc-w" and m.metric == "request_to_created")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="busier-host-"))
    wrapper = out / "slower-runtime"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", str(wrapper), str(SLOWER_SOURCE)], check=True)
    figures: dict[str, Any] = {"load_before": os.getloadavg()[0], "pairs": args.pairs,
                               "rounds": args.rounds}
    aa, same, busier = collections.Counter(), [], collections.Counter()
    aa_alarms: list[str] = []
    loads = []
    for pair in range(args.pairs):
        quiet = one_run(out / f"{pair}-quiet", wrapper, "0", args.rounds, False)
        busy = one_run(out / f"{pair}-busy", wrapper, "0", args.rounds, True)
        slower = one_run(out / f"{pair}-slower", wrapper, "15", args.rounds, False)
        slower_busy = one_run(out / f"{pair}-slower-busy", wrapper, "15", args.rounds, True)
        loads.append([runnable(r) for r in (quiet, busy, slower, slower_busy)])
        comparison = compare.compare_runs(quiet, busy)
        aa.update(str(m.verdict) for m in comparison.metrics)
        aa_alarms += [f"{m.runtime} {m.name}: {m.judgement.reason}" for m in comparison.regressed]
        found = created(compare.compare_runs(quiet, slower))
        same.append({"verdict": str(found.verdict), "change": round(found.judgement.change, 3),
                     "relative": round(found.relative.change, 3) if found.relative else None})
        busier[str(created(compare.compare_runs(quiet, slower_busy)).verdict)] += 1
        print(f"pair {pair + 1}/{args.pairs} done", file=sys.stderr)
    figures.update({
        "aa_busier_verdicts": dict(aa), "aa_busier_false_regressions": aa_alarms,
        "slowdown_same_state": same,
        "slowdown_same_state_detected": sum(1 for s in same if s["verdict"] == "regressed"),
        "slowdown_busier_verdicts": dict(busier),
        "others_runnable_quiet_busy_slower_slowerbusy": loads,
        "load_after": os.getloadavg()[0], "out": str(out),
    })
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
