"""What the durability policy costs (not run in CI): samples.jsonl is fsynced at the end of
each round, and run.json is replaced durably (fsync of the file and its directory).

Writes ROUNDS rounds of a realistic start round (3 runtimes x 5 metrics = 15 samples) with
RunWriter into DIR (default: a new directory under ./reports, the default --out), timing the
append of each sandbox's samples and the fsync at each round's end, and prints medians and
99th percentiles next to what a round of sandboxes itself takes.

    .venv/bin/python tests/benchmarks/fsync_cost.py [ROUNDS] [DIR]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from sandbench.model import Sample, Status, utc_now
from sandbench.results import RunWriter

METRICS = ("request_to_workload", "request_to_exit", "request_to_created", "start_to_workload",
           "exit_code")
RUNTIMES = ("native", "runc", "crun")


def sample(runtime: str, metric: str, round_: int) -> Sample:
    return Sample(run_id="fsync-cost", backend="local", runtime=runtime, workload="start",
                  metric=metric, unit="ms", value=12.345678, round=round_, warmup=False,
                  status=Status.OK, time=utc_now(), labels={"case": "start"},
                  clock="host_monotonic", output=f"outputs/sandbench-x-{round_:05d}.txt")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    parent = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("reports")
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix="fsync-cost-") as tmp:
        writer = RunWriter(Path(tmp) / "run", {"run_id": "fsync-cost"})
        appends, syncs = [], []
        for number in range(1, rounds + 1):
            for runtime in RUNTIMES:
                began = time.perf_counter()
                writer.append(sample(runtime, m, number) for m in METRICS)
                appends.append(time.perf_counter() - began)
            began = time.perf_counter()
            writer.sync()
            syncs.append(time.perf_counter() - began)
        began = time.perf_counter()
        writer.finish("completed")
        finish = time.perf_counter() - began
    ms = 1e3
    print(f"{rounds} rounds under {parent.resolve()}:")
    print(f"  append of one sandbox's 5 samples: median {statistics.median(appends) * ms:.3f} ms, "
          f"p99 {percentile(appends, 0.99) * ms:.3f} ms")
    print(f"  fsync at a round's end:            median {statistics.median(syncs) * ms:.3f} ms, "
          f"p99 {percentile(syncs, 0.99) * ms:.3f} ms, max {max(syncs) * ms:.3f} ms")
    print(f"  finish (fsync, run.json durably):  {finish * ms:.3f} ms")
    print("  for scale: a start round on native, runc and crun takes about 300 ms here")


if __name__ == "__main__":
    main()
