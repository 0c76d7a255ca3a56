"""The net workload's figures for issue 15 (not run in CI): iperf3 throughput and
request/response latency, both ways each, under native, runc, crun, runsc (systrap) and qemu (TCG where KVM does
not work here, as its samples' accel label says), as medians with 95% bootstrap intervals and
ratios to runc from sandbench's own summary; then one independent cross-check: iperf3 run by
hand between two namespaces made here with `ip` (not sandbench's code), against sandbench's
native figure.

    nice -n 19 .venv/bin/python tests/benchmarks/net_figures.py [ROUNDS] [RUNTIMES]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import load, machine

from sandbench.analysis.summary import summarize_run
from sandbench.report.labels import interval, number, ratio
from sandbench.results import load_run

RUNTIMES = "runc,native,crun,runsc,qemu"
DURATION_S = 3
#: The hand-made pair: names and addresses apart from sandbench's (sbnet-..., 10.213.0.0/30).
HAND = ("netfig-a", "netfig-b")
HAND_ADDRESSES = ("10.214.0.1", "10.214.0.2")


def spec(rounds: int, runtimes: str) -> str:
    return (f"runtimes: [{runtimes}]\nbaseline: runc\ntimeout_s: 300\n"
            f"workloads:\n  net: {{rounds: {rounds}, warmup: 1, params: "
            f"{{duration_s: {DURATION_S}, round_trips: 5000}}}}\n")


def sandbench_table(rounds: int, runtimes: str) -> list[str]:
    out = Path(tempfile.mkdtemp(prefix="sandbench-net-figures-"))
    try:
        (out / "spec.yaml").write_text(spec(rounds, runtimes))
        subprocess.run([sys.executable, "-m", "sandbench", "run", str(out / "spec.yaml"),
                        "--out", str(out / "runs"), "--no-report"], check=True,
                       stdout=subprocess.DEVNULL)
        (run_dir,) = list((out / "runs").iterdir())
        run = load_run(run_dir)
        table = summarize_run(run).table
        accel = {r: run.meta["runtimes"].get(r, {}).get("accel") for r in run.meta["runtimes"]}
    finally:
        shutil.rmtree(out, ignore_errors=True)
    lines = []
    for metric in ("throughput", "rr_latency_p50", "rr_latency_p99"):
        for row in table[(table["metric"] == metric)].itertuples():
            said = (f"{number(row.median)} {interval(row.ci_low, row.ci_high)} {row.unit}"
                    + ("" if row.runtime == "runc"
                       else f"  ratio {ratio(row.ratio)} {interval(row.ratio_low, row.ratio_high)}"))
            name = row.runtime + (f" ({accel[row.runtime]})" if accel.get(row.runtime) else "")
            lines.append(f"  {metric:15} {row.labels[:40]:40} {name:12} n={row.n} {said}")
    return lines


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def by_hand(repeats: int) -> dict[str, float]:
    """Gbit/s medians of iperf3 -t DURATION_S between two namespaces joined by a veth, each
    way, as a person would run it."""
    a, b = HAND
    results: dict[str, list[float]] = {"sandbox_to_peer": [], "peer_to_sandbox": []}
    try:
        _ip("netns", "add", a)
        _ip("netns", "add", b)
        _ip("-n", a, "link", "add", "v", "type", "veth", "peer", "name", "v", "netns", b)
        for netns, address in zip(HAND, HAND_ADDRESSES):
            _ip("-n", netns, "addr", "add", f"{address}/30", "dev", "v")
            _ip("-n", netns, "link", "set", "v", "up")
        server = subprocess.Popen(["ip", "netns", "exec", a, "iperf3", "-s", "-B",
                                   HAND_ADDRESSES[0]], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            for _ in range(repeats):
                for direction, extra in (("sandbox_to_peer", []), ("peer_to_sandbox", ["-R"])):
                    done = subprocess.run(["ip", "netns", "exec", b, "iperf3", "-J", "-c",
                                           HAND_ADDRESSES[0], "-t", str(DURATION_S), *extra],
                                          capture_output=True, text=True, check=True)
                    report = json.loads(done.stdout)
                    results[direction].append(
                        report["end"]["sum_received"]["bits_per_second"] / 1e9)
        finally:
            server.kill()
            server.wait()
    finally:
        for netns in HAND:
            subprocess.run(["ip", "netns", "delete", netns], check=False)
    return {d: statistics.median(v) for d, v in results.items()}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    runtimes = sys.argv[2] if len(sys.argv) > 2 else RUNTIMES
    before = load()
    lines = sandbench_table(rounds, runtimes)
    middle = load()
    hand = by_hand(rounds)
    print(f"net, {rounds} sandboxes per case and runtime, iperf3 -t {DURATION_S}, 5000 round "
          "trips of 1 byte (median [95% CI], ratio to runc [95% CI]):")
    print("\n".join(lines))
    print(f"by hand, iperf3 between two namespaces over a veth, median of {rounds}: "
          + ", ".join(f"{d} {number(v)} Gbit/s" for d, v in hand.items()))
    print(f"  {machine()}\n  before: {before}; after sandbench: {middle}; after: {load()}")


if __name__ == "__main__":
    main()
