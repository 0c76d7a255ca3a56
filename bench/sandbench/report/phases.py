"""Start latency split into phases, from metrics named ``<from>_to_<to>``.

A backend measures whichever spans it can: chained ones (create_to_scheduled,
scheduled_to_running) or ones from a common origin (request_to_created, request_to_kernel,
request_to_workload, request_to_exit), and sometimes a span that starts later
(start_to_workload). Placing each event on one time line, from the medians of those spans,
gives every backend's phases the same way: the gaps between consecutive events.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

SEPARATOR = "_to_"


@dataclass(frozen=True)
class Phase:
    """The gap between two consecutive events, in the metrics' unit."""

    start_event: str
    end_event: str
    start: float
    length: float

    @property
    def name(self) -> str:
        return f"{self.start_event} → {self.end_event}"


def spans(metrics: Mapping[str, float]) -> dict[tuple[str, str], float]:
    """The ``<from>_to_<to>`` metrics as (from, to) -> finite median."""
    out: dict[tuple[str, str], float] = {}
    for metric, value in metrics.items():
        start, sep, end = metric.partition(SEPARATOR)
        if sep and start and end and math.isfinite(value):
            out[(start, end)] = value
    return out


def positions(spans_: Mapping[tuple[str, str], float]) -> dict[str, float]:
    """Each event's time after the origin: the event most spans start from."""
    if not spans_:
        return {}
    origin = Counter(start for start, _ in spans_).most_common(1)[0][0]
    at = {origin: 0.0}
    # Each pass places the events one span away from a placed one; a chain of k spans needs
    # k passes, and an event no span connects to the origin is never placed.
    for _ in range(len(spans_)):
        placed = len(at)
        for (start, end), value in spans_.items():
            if start in at and end not in at:
                at[end] = at[start] + value
            elif end in at and start not in at:
                at[start] = at[end] - value
        if len(at) == placed:
            break
    return at


def phases(metrics: Mapping[str, float]) -> list[Phase]:
    """The phases of one runtime's start, in time order, from its metrics' medians."""
    events = sorted(positions(spans(metrics)).items(), key=lambda item: item[1])
    return [
        Phase(start_event=a, end_event=b, start=at_a, length=at_b - at_a)
        for (a, at_a), (b, at_b) in zip(events, events[1:])
    ]
