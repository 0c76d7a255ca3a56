"""The net workload: TCP throughput (iperf3) and request/response latency (the probe's rr)
between the sandbox and a peer the backend runs at the far end of the sandbox's network path.

Four cases, each a sandbox of its own with a fresh peer; ``direction`` says who sends (the
data, or each request):

- ``send``: iperf3's client in the sandbox sends to the peer's iperf3 server
  (direction=sandbox_to_peer);
- ``receive``: the same with ``-R``, the peer sends to the sandbox (direction=peer_to_sandbox);
- ``rr``: the probe's TCP ping-pong, a message of ``message_bytes`` to the peer's echo and back,
  timed per round trip inside the sandbox on CLOCK_MONOTONIC (direction=sandbox_to_peer);
- ``rr_peer``: the other way round, the echo in the sandbox (it exits after the one
  connection) and the client at the peer, which retries until the sandbox listens and times
  the round trips on its own clock (direction=peer_to_sandbox): a server's wake-up path in
  the sandbox is what a service in it pays.

The workload names no address: its argv says model.PEER (and model.SANDBOX), and the backend
writes there the address it gave the peer (and the sandbox). Which path the traffic took and what the peer ran under are the
backend's labels (``net_path``, ``peer_runtime``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import Field

from sandbench.model import PEER, SANDBOX, Better, Case, Execution, Metric, Peer, Value
from sandbench.workloads.base import PROBE, Params, ParseError, Workload, probe_header

# Gbit/s, as every published network figure is (Kata's CI: 55 Gb/s); io's MiB/s is storage's.
THROUGHPUT = Metric("throughput", "Gbit/s", Better.HIGHER,
                    "iperf3 TCP throughput, bits received by the receiving end")
RR_P50 = Metric("rr_latency_p50", "µs", Better.LOWER, "TCP request/response round trip, median")
RR_P99 = Metric("rr_latency_p99", "µs", Better.LOWER,
                "TCP request/response round trip, 99th percentile")

#: The listening ports: iperf3's own default, and one beside it for the echo.
IPERF3_PORT = 5201
RR_PORT = 5202
#: Seconds the peer's client retries while the sandbox's echo is not listening yet: a VM
#: boots first (3-5 s under TCG here), and a busy host can take much longer.
RR_WAIT_S = 120
#: Where a round trip's time is read: in the sandbox, or at the peer (a native one locally).
RR_CLOCKS = {"rr": "sandbox_monotonic", "rr_peer": "peer_monotonic"}

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
        trips = [str(RR_PORT), str(params.round_trips), str(params.message_bytes)]
        for name, direction in (("rr", "sandbox_to_peer"), ("rr_peer", "peer_to_sandbox")):
            labels = {"direction": direction, "message_bytes": str(params.message_bytes)}
            if name == "rr":
                argv = [PROBE, "rr", PEER, *trips]
                peer = Peer((PROBE, "rr-serve", PEER, str(RR_PORT)), (RR_PORT,))
            else:
                argv = [PROBE, "rr-serve", SANDBOX, str(RR_PORT), "once"]
                peer = Peer((PROBE, "rr", SANDBOX, *trips, str(RR_WAIT_S)))
            cases.append(Case(self.name, name, argv, labels=labels, peer=peer,
                              expected=[(RR_P50, dict(labels)), (RR_P99, dict(labels))]))
        return cases

    def parse(self, case: Case, execution: Execution) -> list[Value]:
        if case.name == "rr":
            return parse_rr(execution.stdout, case.labels)
        if case.name == "rr_peer":
            probe_header(execution.stdout, "rr-serve")  # the sandbox served
            return parse_rr(execution.peer_stdout, case.labels, RR_CLOCKS["rr_peer"])
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


def parse_rr(stdout: str, labels: dict[str, str],
             clock: str = RR_CLOCKS["rr"]) -> list[Value]:
    """p50 and p99 of the probe's round trips, in µs (it reports ns), timed on ``clock``."""
    header, _ = probe_header(stdout, "rr")
    values = []
    for metric, key in ((RR_P50, "p50_ns"), (RR_P99, "p99_ns")):
        ns = header.get(key)
        if not isinstance(ns, int) or ns <= 0:
            raise ParseError(f"probe rr {key} is {json.dumps(ns)}, not a positive integer")
        values.append(Value(metric, ns / 1e3, dict(labels), clock=clock))
    return values
