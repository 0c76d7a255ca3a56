"""The decision summary: per runtime, one plain line of what it costs against the baseline.

"runsc vs runc: start +41 ms [38, 45], syscalls ×14.2 [13.8, 14.9] (getpid), io ×0.61
[0.55, 0.70] (seqread rootfs), memory +40 MiB [39, 41] per sandbox". What is added (start
latency, memory) is a difference of medians; what is multiplied (syscall and I/O speed) is the
summary table's own ratio and interval, read from the same RunSummary, never recomputed. A
figure whose interval holds no change reads "same"; one the run did not measure reads "not
measured"; an emulated runtime's line says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sandbench.analysis import stats

Values = dict[tuple[str, ...], stats.Floats]


@dataclass(frozen=True)
class Figure:
    """One figure of a decision line."""

    #: What it is ("start", "syscalls", "io", "memory").
    what: str
    #: The figure in words: "+41 ms [38, 45]", "×14.2 [13.8, 14.9]", "same", "not measured".
    text: str
    #: Which measurement it comes from ("request_to_workload", "getpid").
    source: str


@dataclass(frozen=True)
class DecisionLine:
    runtime: str
    baseline: str
    figures: list[Figure]
    emulated: bool

    def text(self) -> str:
        figures = ", ".join(f"{f.what} {f.text}" for f in self.figures)
        mark = " (emulated, not representative of KVM)" if self.emulated else ""
        return f"{self.runtime} vs {self.baseline}{mark}: {figures}"


#: Where each figure comes from: (what, workload, metric, labels wanted, added or multiplied,
#: unit). The first of a figure's candidates the run measured wins.
CANDIDATES: list[tuple[str, str, str, dict[str, str], str, str]] = [
    ("start", "start", "request_to_workload", {}, "added", "ms"),
    ("start", "start", "create_to_workload", {}, "added", "ms"),
    ("syscalls", "syscall", "ns_per_op", {"op": "getpid"}, "multiplied", ""),
    ("io", "io", "bandwidth", {}, "multiplied", ""),
    ("memory", "footprint", "overhead_pss_mib", {}, "added", "MiB per sandbox"),
    ("memory", "footprint", "pod_overhead_mib", {}, "added", "MiB per pod"),
]
WHATS = ("start", "syscalls", "io", "memory")


def _rows(table: pd.DataFrame, runtime: str, workload: str, metric: str,
          wanted: dict[str, str]) -> pd.DataFrame:
    rows = table[(table["runtime"] == runtime) & (table["workload"] == workload)
                 & (table["metric"] == metric) & (table["n"] > 0)]
    keep = pd.Series([all(labels.get(k) == v for k, v in wanted.items())
                      for labels in rows["label_values"]], index=rows.index, dtype=bool)
    return rows.loc[keep].sort_values("labels")


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _added(row: pd.Series, values: Values, baseline: str, unit: str) -> str:
    key = (str(row["runtime"]), str(row["workload"]), str(row["metric"]), str(row["labels"]))
    base = (baseline, *key[1:])
    if base not in values or min(len(values[key]), len(values[base])) < stats.MIN_SAMPLES_TO_JUDGE:
        return "not comparable (too few samples)"
    low, high = stats.difference_ci(values[key], values[base])
    if low <= 0 <= high:
        return "same"
    diff = float(np.median(values[key]) - np.median(values[base]))
    return f"{diff:+.3g} {unit} [{_number(low)}, {_number(high)}]"


def _multiplied(row: pd.Series) -> str:
    if row["mark"] == "same":
        return "same"
    if row["mark"] in ("n/a", "baseline") or not math.isfinite(float(row["ratio_low"])):
        return "not comparable (too few samples)"
    return f"×{_number(float(row['ratio']))} [{_number(float(row['ratio_low']))}, " \
           f"{_number(float(row['ratio_high']))}]"


def decision_lines(table: pd.DataFrame, values: Values, baseline: str,
                   emulated: frozenset[str] = frozenset(),
                   order: list[str] | None = None) -> list[DecisionLine]:
    """One line per runtime other than the baseline (in ``order``, then any other), from the
    summary table and its values."""
    if not baseline or table.empty:
        return []
    lines = []
    seen = [str(r) for r in dict.fromkeys(table["runtime"])]
    ordered = [r for r in (order or []) if r in seen] + [r for r in seen if r not in (order or [])]
    for runtime in [r for r in ordered if r != baseline]:
        figures = []
        for what in WHATS:
            figures.append(_figure(table, values, runtime, baseline, what))
        lines.append(DecisionLine(runtime, baseline, figures, runtime in emulated))
    return lines


def _figure(table: pd.DataFrame, values: Values, runtime: str, baseline: str,
            what: str) -> Figure:
    for name, workload, metric, wanted, how, unit in CANDIDATES:
        if name != what:
            continue
        rows = _rows(table, runtime, workload, metric, wanted)
        if rows.empty or _rows(table, baseline, workload, metric, wanted).empty:
            continue
        row = rows.iloc[0]
        source = metric + (f" ({row['labels']})" if row["labels"] else "")
        text = _added(row, values, baseline, unit) if how == "added" else _multiplied(row)
        if how == "multiplied" and text not in ("same",) and not text.startswith("not"):
            text += f" ({'time' if table.loc[row.name, 'better'] == 'lower' else 'speed'})"
        return Figure(what, text, source)
    return Figure(what, "not measured", "")
