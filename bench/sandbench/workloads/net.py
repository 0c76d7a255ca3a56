"""The net workload: TCP throughput (iperf3) and request/response latency (the probe's rr)
between the sandbox and a peer the backend runs at the far end of the sandbox's network path.

Three cases, each a sandbox of its own with a fresh peer:

- ``send``: iperf3's client in the sandbox sends to the peer's iperf3 server
  (direction=sandbox_to_peer);
- ``receive``: the same with ``-R``, the peer sends to the sandbox (direction=peer_to_sandbox);
- ``rr``: the probe's TCP ping-pong, a message of ``message_bytes`` to the peer's echo and back,
  timed per round trip inside the sandbox on CLOCK_MONOTONIC (direction=round_trip; the
  sandbox starts each exchange).

The workload names no address: its argv says model.PEER, and the backend writes there the
address it gave the peer. Which path the traffic took and what the peer ran under are the
backend's labels (``net_path``, ``peer_runtime``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import Field

from sandbench.model import PEER, Better, Case, Execution, Metric, Peer, Value
from sandbench.workloads.base import PROBE, Params, ParseError, Workload, probe_header

# Gbit/s, as every published network figure is (Kata's CI: 55 Gb/s); io's MiB/s is storage's.
THROUGHPUT = Metric("throughput", "Gbit/s", Better.HIGHER,
                    "iperf3 TCP throughput, bits received by the receiving end")
RR_P50 = Metric("rr_latency_p50", "µs", Better.LOWER, "TCP request/response round trip, median")
RR_P99 = Metric("rr_latency_p99", "µs", Better.LOWER,
                "TCP request/response round trip, 99th percentile")

#: The peer's ports: iperf3's own default, and one beside it for the echo.
IPERF3_PORT = 5201
RR_PORT = 5202

DIRECTIONS = {"send": "sandbox_to_peer", "receive": "peer_to_sandbox"}


class NetParams(Params):
    duration_s: int = Field(2, ge=1, le=3600)
    """Seconds each iperf3 test counts (iperf3 -t). Loopback-fast paths reach steady state
    within a second; a VM under emulation takes longer to ramp up, so raise it for qemu."""

    omit_s: int = Field(0, ge=0, le=600)
    """Seconds iperf3 runs before it starts counting (iperf3 -O): TCP slow start left out."""

    round_trips: int = Field(2000, ge=10, le=10_000_000)
    """Timed round trips of the rr case (a tenth more go first, untimed). 2000 gives a p99
    from 20 values above it; at gVisor's 50-100 µs per round trip that is well under a second."""

    message_bytes: int = Field(1, ge=1, le=65536)
    """Bytes each way per round trip; 1, as netperf's TCP_RR, so the path's cost, not copying,
    is measured."""


class Net(Workload):
    name = "net"
    description = "TCP throughput (iperf3) both ways and request/response latency to a peer"
    params_model = NetParams
    metrics = (THROUGHPUT, RR_P50, RR_P99)
    headline_note = "throughput each way, round trips"

    def cases(self, params: Params) -> list[Case]:
        assert isinstance(params, NetParams)
        iperf3 = [PROBE, "iperf3", "-c", PEER, "-p", str(IPERF3_PORT),
                  "-t", str(params.duration_s), "-O", str(params.omit_s)]
        server = Peer(("iperf3", "-s", "-B", PEER, "-p", str(IPERF3_PORT)), (IPERF3_PORT,))
        cases = [Case(self.name, case, iperf3 + (["-R"] if case == "receive" else []),
                      labels={"direction": direction}, peer=server,
                      expected=[(THROUGHPUT, {"direction": direction})])
                 for case, direction in DIRECTIONS.items()]
        rr = [PROBE, "rr", PEER, str(RR_PORT), str(params.round_trips), str(params.message_bytes)]
        labels = {"direction": "round_trip", "message_bytes": str(params.message_bytes)}
        echo = Peer((PROBE, "rr-serve", PEER, str(RR_PORT)), (RR_PORT,))
        cases.append(Case(self.name, "rr", rr, labels=labels, peer=echo,
                          expected=[(RR_P50, dict(labels)), (RR_P99, dict(labels))]))
        return cases

    def parse(self, case: Case, execution: Execution) -> list[Value]:
        if case.name == "rr":
            return parse_rr(execution.stdout, case.labels)
        header, rest = probe_header(execution.stdout, "iperf3")
        del header  # only its presence: the probe ran and exec'd iperf3
        return [parse_iperf3(rest, case.labels)]


def parse_iperf3(text: str, labels: dict[str, str]) -> Value:
    """The throughput of one iperf3 -J client report: bits per second the receiving end got
    (``end.sum_received``), whichever way the data went."""
    report = _iperf3_json(text)
    if report.get("error"):
        raise ParseError(f"iperf3 failed: {report['error']}")
    received = report.get("end", {}).get("sum_received", {})
    bps = received.get("bits_per_second") if isinstance(received, dict) else None
    if not isinstance(bps, (int, float)) or not math.isfinite(bps) or bps <= 0:
        raise ParseError(f"iperf3 end.sum_received.bits_per_second is {json.dumps(bps)}, "
                         "not a positive number")
    return Value(THROUGHPUT, bps / 1e9, dict(labels), clock="iperf3")


def _iperf3_json(text: str) -> dict[str, Any]:
    start = text.find("{")
    if start < 0:
        raise ParseError(f"no iperf3 JSON in the output: {text.strip()[-200:]!r}")
    try:
        report, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise ParseError(f"iperf3 JSON is not valid ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(report, dict):
        raise ParseError("iperf3 JSON is not an object")
    return report


def parse_rr(stdout: str, labels: dict[str, str]) -> list[Value]:
    """p50 and p99 of the probe's round trips, in µs (it reports ns)."""
    header, _ = probe_header(stdout, "rr")
    values = []
    for metric, key in ((RR_P50, "p50_ns"), (RR_P99, "p99_ns")):
        ns = header.get(key)
        if not isinstance(ns, int) or ns <= 0:
            raise ParseError(f"probe rr {key} is {json.dumps(ns)}, not a positive integer")
        values.append(Value(metric, ns / 1e3, dict(labels), clock="sandbox_monotonic"))
    return values
