"""Concurrency as an axis of the experiment: how many sandboxes start together, and when each
one arrives.

``concurrency: [1, 4, 16]`` runs every level in every round; ``arrival`` says when the
sandboxes of one burst are requested: ``burst`` all at once, ``rate`` N per second evenly
spaced, ``poisson`` at a mean rate with exponential gaps (seeded, so a run can be repeated).
The flags spell the same thing on one line: ``--concurrency 1,4,16``, ``--arrival rate:20``.
"""

from __future__ import annotations

import math
import random
from typing import Any, Literal

from pydantic import Field, model_validator

from sandbench.spec.settings import Strict

#: Most sandboxes one burst starts. Each is a thread of the harness and a runtime's processes;
#: past a few hundred on one host the burst measures the harness and the host's process table,
#: not the runtime.
MAX_CONCURRENCY = 256
#: Fastest arrival rate, per second: 1 ms between requests is already below what spawning a
#: runtime's process costs the harness.
MAX_PER_SECOND = 1000.0
PATTERNS = ("burst", "rate", "poisson")
#: How the patterns are written on the command line, for errors that say what is accepted.
ARRIVAL_SYNTAX = "burst, rate:N or poisson:N (N sandboxes per second, e.g. rate:20)"


class Arrival(Strict):
    """When the sandboxes of one burst are requested."""

    pattern: Literal["burst", "rate", "poisson"] = "burst"
    """``burst``: all at once (the default: the harshest case, and what the issue reports
    describe); ``rate``: ``per_second`` evenly spaced; ``poisson``: exponential gaps of mean
    1/``per_second``."""

    per_second: float | None = Field(None, gt=0, le=MAX_PER_SECOND, allow_inf_nan=False)
    """Sandboxes requested per second for ``rate`` and ``poisson`` (their mean); unused by
    ``burst``. At most MAX_PER_SECOND (1000)."""

    seed: int = 0
    """Seed of ``poisson``'s gaps, so the same spec requests at the same offsets; each burst
    draws its own from this seed and its round."""

    @model_validator(mode="after")
    def _rate_given(self) -> Arrival:
        if self.pattern == "burst" and self.per_second is not None:
            raise ValueError(f"per_second {self.per_second!r} is for rate and poisson; a burst "
                             "requests every sandbox at once (leave per_second out)")
        if self.pattern != "burst" and self.per_second is None:
            raise ValueError(f"{self.pattern} needs per_second, the sandboxes requested per "
                             f"second (e.g. {{pattern: {self.pattern}, per_second: 20}})")
        return self

    @property
    def label(self) -> str:
        """The ``arrival`` label of every sample of a burst: the flag's spelling."""
        if self.per_second is None:
            return self.pattern
        return f"{self.pattern}:{self.per_second:g}"


def offsets_s(arrival: Arrival, count: int, stream: int = 0) -> list[float]:
    """Seconds after the burst begins at which each of ``count`` sandboxes is requested,
    in arrival order (non-decreasing, the first at 0). ``stream`` (a burst's round) gives
    each poisson burst gaps of its own from the one seed."""
    if arrival.pattern == "burst" or count <= 1:
        return [0.0] * count
    assert arrival.per_second is not None
    if arrival.pattern == "rate":
        return [index / arrival.per_second for index in range(count)]
    rng = random.Random(f"{arrival.seed}:{stream}")
    times, now = [0.0], 0.0
    for _ in range(count - 1):
        now += rng.expovariate(arrival.per_second)
        times.append(now)
    return times


def check_levels(value: list[int]) -> list[int]:
    """The spec's ``concurrency``: at least one level, each 1 to MAX_CONCURRENCY, none twice."""
    if not value:
        raise ValueError("[] names no level; give at least one, e.g. [1, 4, 16] (or leave "
                         "the key out for [1], one sandbox at a time)")
    for level in value:
        if not 1 <= level <= MAX_CONCURRENCY:
            raise ValueError(f"{level!r} is not a concurrency level: give 1 to "
                             f"{MAX_CONCURRENCY} sandboxes started together")
    dupes = sorted({level for level in value if value.count(level) > 1})
    if dupes:
        raise ValueError(f"level {dupes[0]!r} is listed twice")
    return value


def parse_levels(text: str) -> list[Any]:
    """``--concurrency 1,4,16`` as a list for the spec (which checks the numbers); raises
    ValueError naming the part that is not a whole number."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise ValueError(f"--concurrency {text!r} names no level; give comma-separated levels "
                         f"from 1 to {MAX_CONCURRENCY}, e.g. --concurrency 1,4,16")
    levels: list[Any] = []
    for part in parts:
        try:
            levels.append(int(part))
        except ValueError:
            raise ValueError(f"--concurrency {text!r}: {part!r} is not a whole number; give "
                             f"comma-separated levels from 1 to {MAX_CONCURRENCY}, e.g. "
                             "--concurrency 1,4,16") from None
    return levels


def parse_arrival(text: str) -> dict[str, Any]:
    """``--arrival burst|rate:N|poisson:N`` as the spec's ``arrival`` mapping (which checks
    the rate); raises ValueError naming what is not accepted."""
    pattern, _, rate = text.strip().partition(":")
    if pattern not in PATTERNS:
        raise ValueError(f"--arrival {text!r}: unknown pattern {pattern!r}; give {ARRIVAL_SYNTAX}")
    if pattern == "burst":
        if rate:
            raise ValueError(f"--arrival {text!r}: burst takes no rate; give burst, or "
                             f"rate:{rate} / poisson:{rate}")
        return {"pattern": "burst"}
    try:
        per_second = float(rate)
    except ValueError:
        raise ValueError(f"--arrival {text!r}: {rate!r} is not a number of sandboxes per "
                         f"second; give {ARRIVAL_SYNTAX}") from None
    if not math.isfinite(per_second):
        raise ValueError(f"--arrival {text!r}: {rate!r} is not a rate; give {ARRIVAL_SYNTAX}")
    return {"pattern": pattern, "per_second": per_second}
