"""How the report names things: runtimes (with their emulation warning), numbers, labels.

Every string a reader sees for a number is made here, so the templates and the charts agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbench.formats import RunMeta

#: Said next to every number of an emulated runtime: TCG is many times slower than KVM.
EMULATED = "emulated, not representative of KVM"
#: Colour-blind safe (Okabe and Ito), in the order runtimes are listed.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
           "#F0E442"]
#: What a mark looks like besides its colour, so it reads in grey and to a screen reader.
MARK_TEXT = {"better": "✔ better", "worse": "✘ worse", "same": "= same",
             "baseline": "baseline", "n/a": "n/a"}


@dataclass(frozen=True)
class Runtimes:
    """The runtimes of a run, in report order (the baseline first), with their display names."""

    order: list[str]
    names: dict[str, str]
    colours: dict[str, str]
    emulated: frozenset[str]

    def name(self, runtime: str) -> str:
        return self.names.get(runtime, runtime)


def runtimes(meta: RunMeta, seen: Iterable[str]) -> Runtimes:
    """Baseline first, then the spec's order, then any other runtime by name."""
    facts = meta.runtimes
    measured = {str(name) for name in seen}
    order: list[str] = []
    for name in [meta.baseline, *meta.spec.runtimes, *sorted(facts), *sorted(measured)]:
        if name and name not in order and (name in facts or name in measured):
            order.append(name)
    emulated = frozenset(n for n in order if meta.runtime_facts(n).get("emulated"))
    names = {n: f"{n} ({EMULATED})" if n in emulated else n for n in order}
    colours = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(order)}
    return Runtimes(order=order, names=names, colours=colours, emulated=emulated)


def number(value: Any) -> str:
    """Three significant digits, thousands separated; a dash when there is no value."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def interval(low: Any, high: Any) -> str:
    if number(low) == "—" or number(high) == "—":
        return "—"
    return f"[{number(low)}, {number(high)}]"


def ratio(value: Any) -> str:
    text = number(value)
    return text if text == "—" else f"{text}×"


def percent(value: Any) -> str:
    return "—" if number(value) == "—" else f"{float(value):.1%}"


def fact(value: Any) -> str:
    """A host or runtime fact as one line: lists joined, sizes in GiB."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ", ".join(fact(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={fact(v)}" for k, v in value.items())
    return str(value)


def memory(value: Any) -> str:
    try:
        return f"{int(value) / 2**30:.1f} GiB ({int(value):,} bytes)"
    except (TypeError, ValueError):
        return fact(value)


def labels_text(labels: Mapping[str, str], skip: Iterable[str] = ()) -> str:
    """``"target=rootfs, direct=true"``; "" when there are none left after ``skip``."""
    left = [key for key in labels if key not in set(skip)]
    return ", ".join(f"{key}={labels[key]}" for key in left)
