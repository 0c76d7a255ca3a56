"""The terminal summary at the end of a run: one table per workload, a row per measured thing
with its labels as columns, a column per runtime, each cell the median and its ratio to the
baseline. Only the workload's headline metrics unless ``verbose``; the numbers come from the
run's summary (stats), computed once.

It is made to be read in a 100-column terminal: labels that are the same on every row of a
table go to its caption, a table of one unit says it in its title, and a label value repeated
from the row above is left blank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sandbench import workloads
from sandbench.formats import RunMeta
from sandbench.report.charts import workload_order
from sandbench.report.labels import EMULATED, Runtimes, runtimes

#: The mark after a ratio: better, worse, or no clear difference.
SIGNS = {"better": "+", "worse": "!", "same": "="}


@dataclass(frozen=True)
class SummaryTable:
    """One workload's table, as text."""

    workload: str
    title: str
    #: Sentences under the table: which rows are shown, labels every row shares.
    caption: str
    header: list[str]
    #: How many leading columns name the row (left-aligned); the rest are numbers.
    names: int
    rows: list[list[str]]


def number(value: float) -> str:
    """A number as a table shows it: three significant digits, thousands grouped; "-" for
    NaN (nothing measured)."""
    if not math.isfinite(value):
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _cell(row: pd.Series) -> str:
    if row["n"] == 0:
        return f"failed ×{row['failed']}" if row["failed"] else "-"
    text = f"{number(row['median'])}"
    if row["mark"] not in ("baseline", "n/a") and math.isfinite(row["ratio"]):
        text += f" ×{row['ratio']:.2f}{SIGNS[row['mark']]}"
    elif row["mark"] != "baseline" and row["median"] <= 0:
        text += " (≤0, no ratio)"
    if row["failed"]:
        text += f" ({row['failed']} failed)"
    return text


def runtime_header(name: str, meta: RunMeta, names: Runtimes) -> str:
    if name == meta.baseline:
        return f"{name}\n(baseline)"
    return f"{name}\n(emulated)" if name in names.emulated else name


def summary_tables(summary: pd.DataFrame, meta: RunMeta, *,
                   verbose: bool = False) -> list[SummaryTable]:
    """The tables of a run's summary (stats.summarize's rows), in report order: one per
    workload, or one per metric of a workload whose rows also have labels (io's job and
    target), which would not fit otherwise."""
    if summary.empty:
        return []
    names = runtimes(meta, summary["runtime"].unique())
    tables = []
    for workload in workload_order(summary["workload"]):
        rows, shown = _headline(workload, summary.loc[summary["workload"] == workload], verbose)
        parts = [rows]
        if rows["labels"].ne("").any() and rows["metric"].nunique() > 1:
            rank = _metric_rank(workload)
            metrics = sorted(rows["metric"].unique(), key=lambda m: (rank.get(m, len(rank)), m))
            parts = [rows.loc[rows["metric"] == metric] for metric in metrics]
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            tables.append(_table(workload, part, meta, names, shown if last else ""))
    return tables


def _headline(workload: str, rows: pd.DataFrame, verbose: bool) -> tuple[pd.DataFrame, str]:
    """The rows shown, and which they are in words ("" when all of them)."""
    known = workloads.WORKLOADS.get(workload)
    if verbose or known is None or not known.headline:
        note = known.headline_note if known and not known.headline and not verbose else ""
        return rows, note
    picked = rows.loc[rows["metric"].isin(known.headline)]
    if picked.empty:  # a backend that measures none of the headline: show what there is
        return rows, ""
    hidden = sorted(set(rows["metric"]) - set(picked["metric"]))
    note = known.headline_note or "the headline metrics"
    more = f"; -v adds {', '.join(hidden)}" if hidden else ""
    return picked, f"{note}{more}"


def _metric_rank(workload: str) -> dict[str, int]:
    known = workloads.WORKLOADS.get(workload)
    return {m.name: i for i, m in enumerate(known.metrics)} if known else {}


def _table(workload: str, rows: pd.DataFrame, meta: RunMeta, names: Runtimes,
           shown: str) -> SummaryTable:
    groups = list(rows.groupby(["metric", "labels"], sort=False))
    labels = [dict(group["label_values"].iloc[0]) for _, group in groups]
    # Labels every row has first, then by fewest values: io's target before its job.
    keys = sorted({k for found in labels for k in found},
                  key=lambda k: (not all(k in found for found in labels),
                                 len({found.get(k) for found in labels}), k))
    shared = [k for k in keys if all(k in found for found in labels)
              and len({found[k] for found in labels}) == 1]
    columns = [k for k in keys if k not in shared]
    metrics, units = rows["metric"].unique(), rows["unit"].unique()
    lead = (["metric"] if len(metrics) > 1 else []) + columns + (["unit"] if len(units) > 1 else [])
    rank = _metric_rank(workload)
    lines = []
    for ((metric, _), group), found in zip(groups, labels):
        cells = {str(r["runtime"]): _cell(r) for _, r in group.iterrows()}
        name = ([str(metric)] if len(metrics) > 1 else []) + [found.get(k, "") for k in columns]
        unit = [str(group["unit"].iloc[0])] if len(units) > 1 else []
        order = (rank.get(str(metric), len(rank)), str(metric), *name)
        lines.append((order, name + unit + [cells.get(r, "-") for r in names.order]))
    lines.sort(key=lambda line: line[0])
    body = _blank_repeats([line for _, line in lines], len(lead) - (len(units) > 1))
    return SummaryTable(
        workload=workload, title=_title(workload, metrics, units, rows), caption=_caption(
            shown, {k: labels[0][k] for k in shared}), header=lead + [
            runtime_header(r, meta, names) for r in names.order],
        names=len(lead), rows=body)


def _title(workload: str, metrics: Any, units: Any, rows: pd.DataFrame) -> str:
    title = workload
    if len(metrics) == 1:
        title += f": {metrics[0]}"
    if len(units) == 1:
        better = rows["better"].unique()
        title += f" ({units[0]}" + (f", {better[0]} is better)" if len(better) == 1 else ")")
    return title


def _caption(shown: str, shared: Mapping[str, str]) -> str:
    parts = [f"shown: {shown}"] if shown else []
    if shared:
        parts.append("every row " + ", ".join(f"{k}={v}" for k, v in shared.items()))
    return "; ".join(parts)


def _blank_repeats(rows: list[list[str]], width: int) -> list[list[str]]:
    """Leave a name cell blank when it and every name cell left of it repeat the row above."""
    out, previous = [], [""] * width
    for row in rows:
        same = 0
        while same < width and row[same] == previous[same]:
            same += 1
        out.append([""] * same + row[same:])
        previous = row[:width]
    return out


def legend(meta: RunMeta, summary: pd.DataFrame) -> list[str]:
    """What the marks mean, and which runtimes are emulated; printed under the tables."""
    names = runtimes(meta, summary["runtime"].unique())
    baseline = meta.baseline
    lines = []
    if baseline:
        lines.append(f"median ×ratio to {baseline}: + better, ! worse, = no clear difference "
                     "(the 95% interval of the ratio holds 1)")
    lines += [f"{name}: {EMULATED}" for name in names.order if name in names.emulated]
    return lines
