"""The offset between the harness's wall clock and a sandbox's, measured, not assumed.

A clock pod of the same RuntimeClass (so a Kata guest's own clock is what is measured) runs
`probe clock PORT`. Over a port-forward through the API server the harness sends one byte
and notes its wall time before sending and after the reply; the reply is the sandbox's
CLOCK_REALTIME read in between. offset = midpoint - sandbox time, uncertain by half the round
trip. Of N exchanges the one with the smallest round trip is kept (NTP's rule). gVisor's
Kubernetes benchmark calibrates the same way; Kata's metrics assumed the clocks agree.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from kubernetes.stream import portforward

from sandbench.model import Clock, ClockOffset

PORT = 7123
METHOD = "min-RTT exchange with a clock pod of the same RuntimeClass over port-forward"


@dataclass(frozen=True)
class Exchange:
    sent_ns: int
    received_ns: int
    sandbox_ns: int

    @property
    def round_trip_ns(self) -> int:
        return self.received_ns - self.sent_ns

    @property
    def offset_ns(self) -> int:
        return (self.sent_ns + self.received_ns) // 2 - self.sandbox_ns


def best_offset(exchanges: list[Exchange]) -> ClockOffset:
    """The offset from the exchange with the smallest round trip."""
    best = min(exchanges, key=lambda e: e.round_trip_ns)
    return ClockOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, best.offset_ns,
                       (best.round_trip_ns + 1) // 2, f"{METHOD} (best of {len(exchanges)})")


def _exchange(sock: socket.socket) -> Exchange:
    sent = time.time_ns()
    sock.sendall(b"t")
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(64)
        if not chunk:
            raise ConnectionError("the clock pod closed the connection")
        data += chunk
    received = time.time_ns()
    return Exchange(sent, received, int(data.strip()))


def measure(core: Any, namespace: str, pod: str, samples: int) -> ClockOffset:
    forward = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace,
                          ports=str(PORT))
    sock = forward.socket(PORT)
    sock.setblocking(True)
    sock.settimeout(10)
    try:
        return best_offset([_exchange(sock) for _ in range(samples)])
    finally:
        sock.close()
        forward.close()
