"""Wall time of `sandbench run` with its defaults (the quick profile on native, runc, crun and
runsc), report included, as a newcomer runs it (not run in CI; figure for issue 11: under
3 minutes on 2 cores with the image built).

    nice -n 19 .venv/bin/python tests/benchmarks/quick_profile_wall.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from machine import load, machine

from sandbench.results import load_run


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="sandbench-quick-"))
    before = load()
    try:
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "sandbench", "run", "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.monotonic() - started
        (run_dir,) = list(out.iterdir())
        samples = load_run(run_dir).samples
    finally:
        shutil.rmtree(out, ignore_errors=True)
    failed = int((samples["status"] == "failed").sum())
    # Where the time went: each workload from its first sample to its last (they run in turn).
    times = samples.assign(at=pd.to_datetime(samples["time"]))
    spans = ", ".join(f"{w} {(g['at'].max() - g['at'].min()).total_seconds():.0f} s"
                      for w, g in times.groupby("workload", sort=False))
    print(f"sandbench run (quick profile, runtimes {', '.join(sorted(set(samples['runtime'])))}): "
          f"{wall:.0f} s wall, {len(samples)} samples, {failed} failed "
          f"(target under 180 s)\n  by workload, first to last sample: {spans}\n  {machine()}\n  before: {before}; after: {load()}")


if __name__ == "__main__":
    main()
