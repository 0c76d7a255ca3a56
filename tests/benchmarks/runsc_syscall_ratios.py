"""getpid, stat and write_4k under runsc (systrap) and runsc-ptrace against runc, as ratios
with 95% bootstrap intervals from sandbench's own summary (not run in CI; figures for issue 11).

    nice -n 19 .venv/bin/python tests/benchmarks/runsc_syscall_ratios.py [ROUNDS]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import load, machine

from sandbench.analysis.summary import summarize_run
from sandbench.report.labels import interval, number, ratio
from sandbench.results import load_run

OPS = ("getpid", "stat", "write_4k")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    out = Path(tempfile.mkdtemp(prefix="sandbench-runsc-syscall-"))
    before = load()
    try:
        # runc first: the baseline every ratio is to.
        subprocess.run([sys.executable, "-m", "sandbench", "run", "--runtimes",
                        "runc,runsc,runsc-ptrace", "--workloads", "syscall", "--rounds",
                        str(rounds), "--warmup", "1", "--out", str(out), "--no-report"],
                       check=True, stdout=subprocess.DEVNULL)
        (run_dir,) = list(out.iterdir())
        table = summarize_run(load_run(run_dir)).table
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"ns per operation, {rounds} sandboxes each (median [95% CI]), ratio to runc [95% CI]:")
    for op in OPS:
        rows = table[table["labels"].str.contains(f"op={op}")]
        for row in rows.itertuples():
            said = (f"{number(row.median)} {interval(row.ci_low, row.ci_high)}"
                    + ("" if row.runtime == "runc"
                       else f"  ratio {ratio(row.ratio)} {interval(row.ratio_low, row.ratio_high)}"))
            print(f"  {op:9} {row.runtime:13} {said}")
    print(f"  {machine()}\n  before: {before}; after: {load()}")


if __name__ == "__main__":
    main()
