"""Bar charts of medians with their bootstrap intervals, one per (workload, metric), one bar per
runtime for each combination of labels: ns per syscall per op, I/O per target and job, and any
workload the report does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sandbench.report.charts import Chart, chart, layout, metric_order, plot_text, wide_span
from sandbench.report.labels import Runtimes, interval, labels_text, number

#: When the medians on one chart span more than this factor, a log axis keeps the small ones
#: readable. Higher than for start latency's boxes: on a log axis bar lengths mislead.
LOG_SPAN = 100.0
#: Units of facts recorded as metrics (the direct_io flag, 1 or 0, of runs before io samples
#: were labelled direct=true|false): the tables show them, a bar of a flag would say nothing.
UNCHARTED_UNITS = {"flag"}


@dataclass(frozen=True)
class BarStyle:
    """How a workload's labels lay out on the x axis."""

    #: The label under each bar group; the others name the group of groups (multicategory).
    inner: str | None = None
    #: The order the other labels are named in; any label not listed follows by name.
    outer: tuple[str, ...] = ()
    #: Log y axis; None decides from the medians' span (``LOG_SPAN``).
    log: bool | None = None
    caption: str = ""


STYLES = {
    # getpid takes tens of ns and open_close microseconds: only a log axis shows both.
    "syscall": BarStyle(inner="op", log=True,
                        caption="Median time per call, log scale; whiskers: 95% bootstrap "
                                "interval of the median. Lower is better."),
    "io": BarStyle(inner="job", outer=("target", "direct"),
                   caption="Median per target (rootfs or volume), direct or buffered I/O, and "
                           "fio job; whiskers: 95% bootstrap interval of the median."),
    "net": BarStyle(inner="direction", outer=("path",),
                    caption="Median per direction (and, on a cluster, per node path); "
                            "whiskers: 95% bootstrap interval of the median. Every runtime "
                            "talks to the same kind of peer over the same kind of path (the "
                            "notes above say which)."),
}


def bar_charts(summary: pd.DataFrame, workload: str, runtimes: Runtimes) -> list[Chart]:
    rows = summary[(summary["workload"] == workload) & (summary["n"] > 0)
                   & ~summary["unit"].isin(UNCHARTED_UNITS)]
    style = STYLES.get(workload, BarStyle(caption="Median; whiskers: 95% bootstrap interval."))
    return [_bar_chart(rows[rows["metric"] == metric], workload, metric, style, runtimes)
            for metric in metric_order(rows, runtimes)]


def _category(labels: Mapping[str, str], style: BarStyle) -> tuple[str, str]:
    """(group, bar) names on the x axis for one combination of labels."""
    keys = [k for k in style.outer if k in labels] + sorted(set(labels) - set(style.outer))
    ordered = {k: labels[k] for k in keys}
    inner = style.inner
    if inner is not None and inner in labels:
        return labels_text(ordered, skip=[inner]), labels[inner]
    return "", labels_text(ordered) or "(no labels)"


def _use_log(rows: pd.DataFrame, style: BarStyle) -> bool:
    if style.log is not None:
        return style.log
    return wide_span(rows["median"], LOG_SPAN)


def _bar_chart(rows: pd.DataFrame, workload: str, metric: str, style: BarStyle,
               runtimes: Runtimes) -> Chart:
    unit = str(rows["unit"].iloc[0])
    categories = [_category(labels, style) for labels in rows["label_values"]]
    rows = rows.assign(group=[g for g, _ in categories], bar=[b for _, b in categories])
    rows = rows.sort_values(["group", "bar"], kind="stable")
    nested = bool((rows["group"] != "").any())
    log = _use_log(rows, style)
    # The legend even for one runtime: it is where a runtime says it is emulated.
    figure = go.Figure(layout=layout(unit, log=log, barmode="group", height=420,
                                     showlegend=True))
    for runtime in runtimes.order:
        mine = rows[rows["runtime"] == runtime]
        if not mine.empty:
            figure.add_trace(_bars(mine, runtime, unit, nested, runtimes))
    better = str(rows["better"].iloc[0])
    return chart(f"{workload}-bars-{metric}", f"{metric} ({unit}), {better} is better",
                 workload, style.caption, figure)


def _bars(rows: pd.DataFrame, runtime: str, unit: str, nested: bool,
          runtimes: Runtimes) -> go.Bar:
    median = rows["median"].to_numpy(dtype=float)
    bars = [plot_text(b) for b in rows["bar"]]
    x: Any = [[plot_text(g) for g in rows["group"]], bars] if nested else bars
    hover = [f"median {number(m)} {plot_text(unit)}<br>95% CI {interval(lo, hi)}<br>n = {n}"
             for m, lo, hi, n in zip(median, rows["ci_low"], rows["ci_high"], rows["n"])]
    return go.Bar(
        name=plot_text(runtimes.name(runtime)), x=x, y=median,
        error_y={"type": "data", "symmetric": False,
                 "array": np.maximum(rows["ci_high"].to_numpy(dtype=float) - median, 0),
                 "arrayminus": np.maximum(median - rows["ci_low"].to_numpy(dtype=float), 0)},
        marker_color=runtimes.colours[runtime],
        # Hatched, so an emulated runtime's bars stand apart even without the legend.
        marker_pattern_shape="/" if runtime in runtimes.emulated else "",
        hovertext=hover, hoverinfo="text+name",
    )
