"""How large a change must be before it counts: a default and per-metric overrides.

Accepted on the command line (``--threshold``, repeatable)::

    10%                   the default for every metric
    median:10%            the same, in pytest-benchmark's ``--benchmark-compare-fail`` form
    request_to_exit=5%    one metric's own threshold
    request_to_exit=median:5%   the same, in the pytest-benchmark form

Only the median is compared (it is what sandbench reports), so ``mean:5%`` is refused rather
than silently read as the median; so is pytest-benchmark's absolute form (``median:0.001``,
seconds), because sandbench metrics come in many units. A threshold is a fraction of the base
median and applies in the direction that is worse for the metric.

A relative threshold alone makes noise of short phases: a 1.5 ms teardown that reads 3 ms on a
loaded host has moved +100%, far past any threshold, yet by less than the harness's own wake-up
floor on a busy host (README, "The floor of an exit"). So a change must also be larger than a
minimum absolute change, as the Chrome perf dashboard's ``min_absolute_change`` does. Accepted
by ``--min-change`` (repeatable), in the metric's own unit::

    1                     every millisecond metric: a change under 1 ms is no change (default)
    0                     no minimum for millisecond metrics
    end_to_exit=0.5       one metric's own minimum, in its unit (here ms)
    ns_per_op=2           the same for a nanosecond metric

Metrics in other units have no minimum unless one is given for them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sandbench.errors import BadInput

#: Default threshold: pytest-benchmark users' habitual ``median:10%``; half Firecracker's 20%,
#: as sandbench's interleaved rounds keep the noise lower than sequential A/B builds.
DEFAULT = 0.10
#: Default minimum change of a millisecond metric: the harness's wake-up floor on a loaded host
#: is of the order of a millisecond (README), so a smaller move cannot be told from it.
DEFAULT_MIN_MS = 1.0
#: The unit the default minimum change applies to.
MS = "ms"

_PERCENT = re.compile(r"^(?:(?P<stat>[a-z_]+):)?(?P<number>[0-9]*\.?[0-9]+)(?P<percent>%?)$")


class ThresholdError(BadInput, ValueError):
    """A threshold that cannot be read; the message quotes it and says what is accepted."""


@dataclass(frozen=True)
class Thresholds:
    """The threshold of each metric, as a fraction (0.10 is 10%)."""

    default: float = DEFAULT
    per_metric: Mapping[str, float] = field(default_factory=dict)
    #: The minimum absolute change of every millisecond metric, in ms.
    min_change_ms: float = DEFAULT_MIN_MS
    #: Per-metric minimum absolute changes, each in its metric's unit.
    min_change: Mapping[str, float] = field(default_factory=dict)

    def of(self, metric: str) -> float:
        return self.per_metric.get(metric, self.default)

    def minimum(self, metric: str, unit: str) -> float:
        """The smallest absolute change of METRIC (in UNIT) that can count; 0 for none."""
        if metric in self.min_change:
            return self.min_change[metric]
        return self.min_change_ms if unit == MS else 0.0

    def min_change_text(self) -> str:
        """The minimum changes in words, for the report, the terminal and JUnit."""
        every = (f"{self.min_change_ms:g} ms for millisecond metrics" if self.min_change_ms > 0
                 else "none for millisecond metrics")
        return every + "".join(f"; {name} {value:g}" for name, value
                               in sorted(self.min_change.items()))

    def to_json(self) -> dict[str, object]:
        return {"default": self.default, "per_metric": dict(self.per_metric),
                "min_change_ms": self.min_change_ms, "min_change": dict(self.min_change)}


def _fraction(text: str, whole: str) -> float:
    match = _PERCENT.match(text.strip())
    if match is None:
        raise ThresholdError(f"threshold {whole!r} is not a percentage; give e.g. 10%, "
                             f"median:10% or request_to_exit=5%")
    stat = match["stat"]
    if stat is not None and stat != "median":
        raise ThresholdError(f"threshold {whole!r} names {stat!r}; sandbench compares medians "
                             f"only, so give median:N% or N%")
    if not match["percent"]:
        raise ThresholdError(f"threshold {whole!r} is absolute; sandbench metrics come in many "
                             f"units, so give a percentage such as median:10%")
    value = float(match["number"]) / 100.0
    if value <= 0:
        raise ThresholdError(f"threshold {whole!r} must be above 0%")
    return value


def _metric_name(metric: str, option: str, what: str, example: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", metric.strip()):
        raise ThresholdError(f"{what} {option!r}: {metric!r} is not a metric name; give "
                             f"NAME=VALUE with a name of letters, digits, '_', '.' or '-', "
                             f"e.g. {example}")
    return metric.strip()


#: A plain decimal number, as the help shows them: not Python's float() grammar, which also
#: takes '1_000', '-0', 'infinity' and digits of other scripts ('１', '١').
_AMOUNT = re.compile(r"^\+?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


def _amount(text: str, whole: str) -> float:
    value = float(text.strip()) if _AMOUNT.match(text.strip()) else math.nan
    if not math.isfinite(value) or value < 0:
        raise ThresholdError(f"minimum change {whole!r} is not a number >= 0 in the metric's "
                             f"unit; give e.g. 1 (ms, every millisecond metric), 0 (none) or "
                             f"end_to_exit=0.5")
    return value


def _read(options: Iterable[str], default: float, read: Callable[[str, str], float],
          what: str, example: str) -> tuple[float, dict[str, float]]:
    """The every-metric value and the per-metric ones (NAME=VALUE) of one repeatable flag;
    later ones win."""
    per_metric: dict[str, float] = {}
    for option in options:
        metric, sep, value = option.partition("=")
        if sep:
            per_metric[_metric_name(metric, option, what, example)] = read(value, option)
        else:
            default = read(option, option)
    return default, per_metric


def parse(options: Iterable[str], default: float = DEFAULT,
          min_changes: Iterable[str] = ()) -> Thresholds:
    """Thresholds from ``--threshold`` and ``--min-change`` values; later ones win. Raises
    ThresholdError."""
    default, per_metric = _read(options, default, _fraction, "threshold", "request_to_exit=5%")
    min_change_ms, min_change = _read(min_changes, DEFAULT_MIN_MS, _amount, "minimum change",
                                      "end_to_exit=0.5")
    return Thresholds(default, per_metric, min_change_ms, min_change)
