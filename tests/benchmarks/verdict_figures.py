"""Figures for the verdicts on this machine: how often A/A comparisons cry wolf, and how many
rounds it takes to detect an injected 15% slowdown. Not part of the test suite (about 10
minutes on 2 cores); run it as

    .venv/bin/python tests/benchmarks/verdict_figures.py [--runs 20] [--long-rounds 200] [--out DIR]

Procedure.

1. False alarms. ``--runs`` runs of one spec (start and syscall, 10 rounds) whose runtimes are
   native, runc and an identical variant of each (native-aa, runc-aa: no wrapper, nothing
   differs). Three kinds of A/A comparison, each with sandbench's defaults (Mann-Whitney U,
   alpha 0.01, 10% threshold):
     same-run   each variant against its runtime, within each run;
     two-run    each run against the next (runtimes matched by name), as a nightly compares
                tonight with last night;
     split      each run's even balanced blocks of rounds against its odd ones.
   A false alarm is any metric judged regressed (or improved); the rate is given per metric
   compared and per comparison (any metric).

2. Detection. One long run of four variants of runc, interleaved round by round: runc-a and
   runc-b (the wrapper tests/data/slower_runtime.c at 0%), runc-15 (`runc create` made 15%
   slower) and runc-3 (3%). The rounds are cut into consecutive blocks of n rounds for each
   n, and each block's A/B verdict on request_to_created is taken: detection rate (runc-15
   regressed), 3% flag rate (runc-3 regressed) and A/A flag rate (runc-b) per n.

Runs go at nice -19, as the integration tests run them (--no-nice to measure as is); the load
average before and after is recorded with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from sandbench import runner
from sandbench.nightly import compare
from sandbench.nightly.compare import Verdict
from sandbench.results import Run, load_run

SLOWER_SOURCE = Path(__file__).parents[1] / "data" / "slower_runtime.c"
BLOCKS = (5, 8, 10, 15, 20, 30, 40, 60, 80, 100)


def sandbench(args: list[str], nice: bool) -> None:
    prefix = ["nice", "-n", "-19"] if nice else []
    result = subprocess.run([*prefix, sys.executable, "-m", "sandbench", *args],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"sandbench {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def one_run(spec: dict[str, Any], out: Path, nice: bool) -> Run:
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.yaml").write_text(json.dumps(spec))
    before = {p for p in out.iterdir() if p.is_dir()}
    sandbench(["run", str(out / "spec.yaml"), "--no-report", "--out", str(out)], nice)
    (run_dir,) = {p for p in out.iterdir() if p.is_dir()} - before
    return load_run(run_dir)


def tally(comparisons: list[compare.Comparison]) -> dict[str, Any]:
    metrics = [m for c in comparisons for m in c.metrics]
    judged = [m for m in metrics if m.verdict != Verdict.INCONCLUSIVE]
    alarms = [m for m in metrics if m.verdict in (Verdict.REGRESSED, Verdict.IMPROVED)]
    any_alarm = sum(1 for c in comparisons if any(
        m.verdict in (Verdict.REGRESSED, Verdict.IMPROVED) for m in c.metrics))
    return {
        "comparisons": len(comparisons), "metrics_compared": len(metrics),
        "metrics_judged": len(judged), "inconclusive": len(metrics) - len(judged),
        "false_alarms": len(alarms),
        "false_alarm_rate_per_metric": len(alarms) / len(metrics) if metrics else None,
        "comparisons_with_a_false_alarm": any_alarm,
        "alarms": [f"{m.runtime} {m.workload} {m.name}: {m.judgement.reason}" for m in alarms],
    }


def split(run: Run, odd: bool) -> Run:
    # Whole balanced blocks, not odd/even rounds (see tests/integration/test_ab.py's split).
    block = (run.samples["round"] - 1) // runner.order_period(len(run.meta["spec"]["runtimes"]))
    rows = run.samples[(block % 2 == 0) == odd].reset_index(drop=True)
    return Run(dir=run.dir, meta=run.meta, samples=pd.DataFrame(rows))


def false_alarms(runs: int, out: Path, nice: bool) -> dict[str, Any]:
    spec = {"name": "aa", "backend": "local",
            "runtimes": ["native", "native-aa", "runc", "runc-aa"],
            "variants": {"native-aa": {"runtime": "native"}, "runc-aa": {"runtime": "runc"}},
            "rounds": 10, "warmup": 1,
            "workloads": {"start": {}, "syscall": {"params": {"iterations": 100000}}}}
    done = []
    for index in range(runs):
        done.append(one_run(spec, out / "aa", nice))
        print(f"A/A run {index + 1}/{runs}: {done[-1].run_id}", file=sys.stderr)
    same_run = [compare.merge(compare.compare_all_variants(r)) for r in done]
    two_run = [compare.compare_runs(a, b) for a, b in zip(done, done[1:])]
    halves = [compare.compare_runs(split(r, True), split(r, False)) for r in done]
    return {"same-run": tally(same_run), "two-run": tally(two_run), "split": tally(halves)}


def detection(rounds: int, out: Path, nice: bool) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    wrapper = str(out / "slower-runtime")
    subprocess.run(["gcc", "-O2", "-o", wrapper, str(SLOWER_SOURCE)], check=True)
    variants = {"runc-a": "0", "runc-b": "0", "runc-15": "15", "runc-3": "3"}
    spec = {"name": "detect", "backend": "local", "runtimes": list(variants),
            "variants": {n: {"runtime": "runc", "wrapper": [wrapper, p]}
                         for n, p in variants.items()},
            "rounds": rounds, "warmup": 3, "workloads": {"start": {}}}
    run = one_run(spec, out / "detect", nice)
    rows = run.samples[~run.samples["warmup"] & (run.samples["metric"] == "request_to_created")
                       & (run.samples["status"] == "ok")]
    by_round = rows.pivot_table(index="round", columns="runtime", values="value")
    figures: dict[str, Any] = {"run": str(run.dir), "rounds": int(len(by_round)), "blocks": {}}
    for n in BLOCKS:
        starts = range(0, len(by_round) - n + 1, n)
        counts = {"blocks": len(starts), "15%": 0, "3%": 0, "0%": 0}
        for start in starts:
            block = by_round.iloc[start:start + n]
            for label, name in (("15%", "runc-15"), ("3%", "runc-3"), ("0%", "runc-b")):
                judgement = compare.judge(block["runc-a"].to_numpy(), block[name].to_numpy(),
                                          better="lower", threshold=0.10)
                counts[label] += judgement.verdict == Verdict.REGRESSED
        if counts["blocks"]:
            figures["blocks"][n] = counts
    full = {name: compare.judge(by_round["runc-a"].to_numpy(), by_round[name].to_numpy(),
                                better="lower", threshold=0.10)
            for name in ("runc-15", "runc-3", "runc-b")}
    figures["whole_run"] = {name: {"verdict": str(j.verdict), "change": j.change,
                                   "p_value": j.p_value} for name, j in full.items()}
    figures["cov_runc_a"] = float(by_round["runc-a"].std() / by_round["runc-a"].mean())
    return figures


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="A/A runs (default 20)")
    parser.add_argument("--long-rounds", type=int, default=200,
                        help="rounds of the detection run (default 200)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/sandbench-verdict-figures"))
    parser.add_argument("--no-nice", action="store_true", help="do not raise the priority")
    parser.add_argument("--skip-aa", action="store_true")
    parser.add_argument("--skip-detection", action="store_true")
    args = parser.parse_args()
    nice = not args.no_nice
    figures: dict[str, Any] = {"load_before": load_average(), "nice": nice}
    if not args.skip_aa:
        figures["false_alarms"] = false_alarms(args.runs, args.out, nice)
    if not args.skip_detection:
        figures["detection"] = detection(args.long_rounds, args.out, nice)
    figures["load_after"] = load_average()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
