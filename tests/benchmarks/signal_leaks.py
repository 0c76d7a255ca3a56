"""The signal reproduction of issue 10, at full size (not run in CI; the integration test
tests/integration/test_faults.py runs a bounded version): COUNT runs of
`sandbench run --workloads start --rounds 50 --runtimes runc,crun`, each sent SIGINT or
SIGTERM at a random moment up to 2.5 s after its run directory appears, then everything the
run could have left is looked for (containers, cgroups, mounts, processes, scratch, a run.json
still "running"). Prints each leak and the totals.

    .venv/bin/python tests/benchmarks/signal_leaks.py [COUNT] [SEED]
"""

from __future__ import annotations

import collections
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import cache_dir  # noqa: E402
from leaks import leftovers, private_cache, stop_at_random  # noqa: E402


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 10)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sandbench-signals-") as tmp:
        cache = private_cache(cache_dir(), Path(tmp) / "cache")
        out = Path(tmp) / "runs"
        out.mkdir()
        leaked, codes, tracebacks = 0, collections.Counter[int](), 0
        for number in range(1, count + 1):
            stopped = stop_at_random(cache, out, rng, runtimes="runc,crun")
            codes[stopped.returncode] += 1
            tracebacks += "Traceback" in stopped.stderr
            left = leftovers(cache, out)
            if left:
                leaked += 1
                print(f"#{number} signal {stopped.signum} at +{stopped.after_s:.2f} s left: {left}",
                      flush=True)
        runs = sum(1 for _ in out.iterdir())
    print(f"{count} signals ({runs} runs had started measuring) in "
          f"{time.monotonic() - began:.0f} s: {leaked} left something; exit codes "
          f"{dict(codes)}; {tracebacks} tracebacks")


if __name__ == "__main__":
    main()
