"""The offset between the harness's wall clock and a sandbox's, measured, not assumed.

A clock pod of the same RuntimeClass (so a Kata guest's own clock is what is measured) runs
`probe clock PORT`. Over a port-forward through the API server the harness sends one byte
and notes its wall time before sending and after the reply; the reply is the sandbox's
CLOCK_REALTIME read in between. offset = midpoint - sandbox time, uncertain by half the round
trip. Of N exchanges the one with the smallest round trip is kept (NTP's rule). gVisor's
Kubernetes benchmark calibrates the same way; Kata's metrics assumed the clocks agree.

The offset is measured at a run's start and again at its end (a guest's clock can drift or
be stepped by NTP over a long run): when it moved by more than the two measurements' combined
uncertainty, and more than DRIFT_FLOOR_NS, the samples read across clocks are flagged.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from kubernetes.stream import portforward

from sandbench.model import Clock, ClockOffset, MissingOffset

PORT = 7123
METHOD = "min-RTT exchange with a clock pod of the same RuntimeClass"
#: How long a direct connection to the clock pod's IP may take before port-forward is tried.
DIRECT_TIMEOUT_S = 2.0
#: A drift below this is not flagged however certain both offsets are: the phases it affects
#: last tens of milliseconds or more and are reported to 0.001 ms, but the watch event
#: they start from is received with scheduling jitter of about a millisecond on a busy host.
DRIFT_FLOOR_NS = 500_000


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


def best_offset(exchanges: list[Exchange], path: str = "port-forward") -> ClockOffset:
    """The offset from the exchange with the smallest round trip."""
    best = min(exchanges, key=lambda e: e.round_trip_ns)
    return ClockOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, best.offset_ns,
                       (best.round_trip_ns + 1) // 2,
                       f"{METHOD} over {path} (best of {len(exchanges)})")


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


def measure(core: Any, namespace: str, pod: str, samples: int,
            pod_ip: str | None = None) -> ClockOffset:
    """The clock pod's offset: straight to its IP when this host reaches it (the harness on a
    node or inside the cluster), else over port-forward through the API server. The direct
    path has the shorter round trip, and it is the only one into gVisor's netstack: containerd
    (1.6 to 2.x) forwards a port by dialling it in the pod's network namespace on the host,
    where a gVisor pod listens on nothing (google/gvisor#3811)."""
    direct_error = ""
    if pod_ip:
        try:
            sock = socket.create_connection((pod_ip, PORT), timeout=DIRECT_TIMEOUT_S)
        except OSError as exc:
            direct_error = f"pod IP {pod_ip}: {exc}; "
        else:
            with sock:
                sock.settimeout(10)
                return best_offset([_exchange(sock) for _ in range(samples)],
                                   f"a direct connection to the pod IP {pod_ip}")
    try:
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
    except Exception as exc:
        raise ConnectionError(f"{direct_error}port-forward: {exc}") from exc


@dataclass(frozen=True)
class Drift:
    """A runtime's offset at the start of a run and at its end."""

    runtime: str
    start: ClockOffset
    end: ClockOffset | MissingOffset
    #: The phases read across the two clocks, which a drift makes uncertain.
    affects: tuple[str, ...]

    @property
    def drift_ns(self) -> int | None:
        return self.end.offset_ns - self.start.offset_ns if isinstance(self.end,
                                                                       ClockOffset) else None

    @property
    def limit_ns(self) -> int | None:
        """How far the offset may move before it counts: both uncertainties, or the floor."""
        if not isinstance(self.end, ClockOffset):
            return None
        return max(self.start.uncertainty_ns + self.end.uncertainty_ns, DRIFT_FLOOR_NS)

    @property
    def drifted(self) -> bool | None:
        """None when the end offset could not be measured: the drift is unknown."""
        if self.drift_ns is None or self.limit_ns is None:
            return None
        return abs(self.drift_ns) > self.limit_ns

    def record(self) -> dict[str, object]:
        """run.json's environment.clock_drift entry for this runtime."""
        end = self.end
        return {"start_offset_ns": self.start.offset_ns,
                "start_uncertainty_ns": self.start.uncertainty_ns,
                "end_offset_ns": end.offset_ns if isinstance(end, ClockOffset) else None,
                "end_uncertainty_ns": end.uncertainty_ns if isinstance(end, ClockOffset)
                else None,
                "end_error": end.reason if isinstance(end, MissingOffset) else None,
                "drift_ns": self.drift_ns, "limit_ns": self.limit_ns, "drifted": self.drifted,
                "affects": list(self.affects)}

    def warning(self) -> str | None:
        phases = ", ".join(self.affects)
        if isinstance(self.end, MissingOffset):
            return (f"{self.runtime}: the clock offset could not be measured again at the end "
                    f"of the run ({self.end.reason}); whether it drifted is unknown, so "
                    f"{phases} rest on the start's offset alone")
        if not self.drifted:
            return None
        assert self.drift_ns is not None and self.limit_ns is not None
        return (f"{self.runtime}: the clock offset moved {self.drift_ns / 1e6:+.3f} ms between "
                f"the run's start and end, more than the {self.limit_ns / 1e6:.3f} ms its two "
                f"measurements allow: {phases} may be off by up to that much")
