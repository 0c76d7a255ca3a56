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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sandbench.errors import BadInput

#: Default threshold: pytest-benchmark users' habitual ``median:10%``; half Firecracker's 20%,
#: as sandbench's interleaved rounds keep the noise lower than sequential A/B builds.
DEFAULT = 0.10

_PERCENT = re.compile(r"^(?:(?P<stat>[a-z_]+):)?(?P<number>[0-9]*\.?[0-9]+)(?P<percent>%?)$")


class ThresholdError(BadInput, ValueError):
    """A threshold that cannot be read; the message quotes it and says what is accepted."""


@dataclass(frozen=True)
class Thresholds:
    """The threshold of each metric, as a fraction (0.10 is 10%)."""

    default: float = DEFAULT
    per_metric: Mapping[str, float] = field(default_factory=dict)

    def of(self, metric: str) -> float:
        return self.per_metric.get(metric, self.default)

    def to_json(self) -> dict[str, object]:
        return {"default": self.default, "per_metric": dict(self.per_metric)}


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


def parse(options: Iterable[str], default: float = DEFAULT) -> Thresholds:
    """Thresholds from ``--threshold`` values; later ones win. Raises ThresholdError."""
    per_metric: dict[str, float] = {}
    for option in options:
        metric, sep, value = option.partition("=")
        if sep:
            if not re.fullmatch(r"[A-Za-z0-9_.\-]+", metric.strip()):
                raise ThresholdError(f"threshold {option!r}: {metric!r} is not a metric name")
            per_metric[metric.strip()] = _fraction(value, option)
        else:
            default = _fraction(option, option)
    return Thresholds(default, per_metric)
