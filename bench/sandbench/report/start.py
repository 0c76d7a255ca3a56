"""Start latency charts: box plots and ECDFs of each phase metric, and the phase split.

Box plots are drawn from quartiles and whisker ends computed here, so no raw sample goes to
the page; ECDFs are thinned to at most ``ECDF_POINTS`` points a line for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import plotly.graph_objects as go

from sandbench.analysis import stats
from sandbench.report.concurrency import CURVE_ONLY
from sandbench.report.charts import (Chart, axis_name, chart, layout, metric_order, plot_text,
                                     wide_span)
from sandbench.report.labels import PALETTE, Runtimes, number
from sandbench.report.phases import Phase, phases

#: Points per ECDF line: past a few hundred a line looks the same and only weighs more.
ECDF_POINTS = 500
#: Tukey's whiskers: the furthest samples within 1.5 interquartile ranges of the box.
WHISKER = 1.5
#: Medians further apart than this (an emulated VM next to runc) get a log axis, or the
#: fast runtimes' boxes shrink to a line.
LOG_SPAN = 10.0
BY = ["metric", "labels", "runtime"]


def box_table(ok: pd.DataFrame) -> pd.DataFrame:
    """Per (metric, labels, runtime): n, min, q1, median, q3, max, mean and the whisker
    ends."""
    values = ok.groupby(BY, sort=False)["value"]
    table = pd.DataFrame({
        "n": values.count(), "min": values.min(), "q1": values.quantile(0.25),
        "median": values.median(), "q3": values.quantile(0.75), "max": values.max(),
        "mean": values.mean(),
    })
    spread = WHISKER * (table["q3"] - table["q1"])
    limits = pd.DataFrame({"low": table["q1"] - spread, "high": table["q3"] + spread})
    joined = ok.join(limits, on=BY)
    inside = joined[(joined["value"] >= joined["low"]) & (joined["value"] <= joined["high"])]
    ends = inside.groupby(BY, sort=False)["value"].agg(lowerfence="min", upperfence="max")
    return table.join(ends)


def ecdf(values: npt.ArrayLike, points: int = ECDF_POINTS) -> tuple[npt.NDArray[np.float64],
                                                                   npt.NDArray[np.float64]]:
    """Sorted values and their cumulative fractions, thinned evenly to ``points`` (the
    smallest and largest always kept)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    if not ordered.size:
        return ordered, ordered
    index = np.unique(np.linspace(0, ordered.size - 1, min(ordered.size, points)).round())
    picked = index.astype(np.int64)
    return ordered[picked], (picked + 1.0) / ordered.size


def start_charts(rows: pd.DataFrame, summary: pd.DataFrame, runtimes: Runtimes) -> list[Chart]:
    # A burst's totals and the harness's CPU have their curves (concurrency.py) instead.
    ok = stats.good(rows[(rows["workload"] == "start") & ~rows["metric"].isin(CURVE_ONLY)])
    boxes = box_table(ok)
    series = {key: group.to_numpy() for key, group in ok.groupby(BY, sort=False)["value"]}
    start = summary[(summary["workload"] == "start") & (summary["n"] > 0)
                    & ~summary["metric"].isin(CURVE_ONLY)]
    charts = _phase_charts(start, runtimes)
    for metric in metric_order(start, runtimes):
        for labels, group in start[start["metric"] == metric].groupby("labels", sort=True):
            unit = str(group["unit"].iloc[0])
            log = wide_span(group["median"], LOG_SPAN)
            charts.append(_box_chart(boxes, metric, str(labels), unit, log, runtimes))
            charts.append(_ecdf_chart(series, metric, str(labels), unit, log, runtimes))
    return charts


def _suffix(labels: str) -> tuple[str, str]:
    """The part of a chart's name and title that says which labels it shows."""
    return (f"-{labels}", f" ({labels})") if labels else ("", "")


def _box_chart(boxes: pd.DataFrame, metric: str, labels: str, unit: str, log: bool,
               runtimes: Runtimes) -> Chart:
    figure = go.Figure(layout=layout(unit, log=log, height=380, showlegend=False))
    for runtime in runtimes.order:
        if (metric, labels, runtime) not in boxes.index:
            continue
        box = boxes.loc[(metric, labels, runtime)]
        figure.add_trace(go.Box(
            name=plot_text(runtimes.name(runtime)), x=[axis_name(runtimes, runtime)],
            q1=[box["q1"]], median=[box["median"]], q3=[box["q3"]], mean=[box["mean"]],
            lowerfence=[box["lowerfence"]], upperfence=[box["upperfence"]],
            marker_color=runtimes.colours[runtime], boxpoints=False,
        ))
        figure.add_trace(_extremes(box, runtime, unit, runtimes))
    name, title = _suffix(labels)
    scale = " Log scale." if log else ""
    return chart(f"start-box-{metric}{name}", f"{metric}{title}: distribution", "start",
                 "Box: quartiles; line: median; dashes: mean; whiskers: the furthest samples "
                 "within 1.5 interquartile ranges; dots: the fastest and slowest samples when "
                 f"beyond the whiskers.{scale}", figure)


def _extremes(box: pd.Series, runtime: str, unit: str, runtimes: Runtimes) -> go.Scatter:
    """The fastest and slowest samples where the whiskers stop short of them: the reach of a
    tail without sending every outlier to the page."""
    beyond = [(what, box[what]) for what, fence in (("min", "lowerfence"), ("max", "upperfence"))
              if box[what] != box[fence]]
    return go.Scatter(
        x=[axis_name(runtimes, runtime)] * len(beyond), y=[value for _, value in beyond],
        mode="markers", marker_color=runtimes.colours[runtime], showlegend=False,
        hovertext=[f"{what} {number(value)} {plot_text(unit)}" for what, value in beyond],
        hoverinfo="text",
    )


def _ecdf_chart(series: Mapping[Any, npt.NDArray[np.float64]], metric: str, labels: str,
                unit: str, log: bool, runtimes: Runtimes) -> Chart:
    figure = go.Figure(layout=layout("fraction of sandboxes", height=380, showlegend=True))
    figure.update_xaxes(title_text=plot_text(unit), type="log" if log else "linear")
    for runtime in runtimes.order:
        values = series.get((metric, labels, runtime))
        if values is None:
            continue
        x, y = ecdf(values)
        # From 0 at the fastest sample, so the first step shows as a step.
        x, y = np.concatenate([x[:1], x]), np.concatenate([[0.0], y])
        figure.add_trace(go.Scatter(
            name=plot_text(runtimes.name(runtime)), x=x, y=y, mode="lines", line_shape="hv",
            line_color=runtimes.colours[runtime],
        ))
    name, title = _suffix(labels)
    scale = " Log scale." if log else ""
    return chart(f"start-ecdf-{metric}{name}", f"{metric}{title}: cumulative distribution",
                 "start", "The fraction of sandboxes that got there within a given time; "
                 f"further left is faster, a long tail shows as a slow climb to 1.{scale}", figure)


def _phase_charts(start: pd.DataFrame, runtimes: Runtimes) -> list[Chart]:
    charts = []
    for labels, group in start.groupby("labels", sort=True):
        split = {str(runtime): phases(dict(zip(rows["metric"], rows["median"])))
                 for runtime, rows in group.groupby("runtime", sort=False)}
        if any(len(p) >= 2 for p in split.values()):
            unit = str(group["unit"].iloc[0])
            charts.append(_phase_chart(split, str(labels), unit, runtimes))
    return charts


def _phase_chart(split: Mapping[str, list[Phase]], labels: str, unit: str,
                 runtimes: Runtimes) -> Chart:
    order = [r for r in runtimes.order if split.get(r)]
    # A segment takes the colour of the event it ends at, so one event has one colour on
    # every runtime's bar and the legend lists events in the order they first happen.
    ends = sorted({p.end_event: p.start + p.length for r in order for p in split[r]}.items(),
                  key=lambda item: item[1])
    figure = go.Figure(layout=layout(
        "", barmode="overlay", height=140 + 50 * len(order),
        # Runtimes in report order, top down, whichever events each one has.
        yaxis={"autorange": "reversed", "categoryorder": "array",
               "categoryarray": [axis_name(runtimes, r) for r in order]},
    ))
    figure.update_xaxes(title_text=f"{plot_text(unit)} from the first event (medians)")
    for i, (event, _) in enumerate(ends):
        bars = [(r, p) for r in order for p in split[r] if p.end_event == event]
        figure.add_trace(go.Bar(
            name=f"→ {plot_text(event)}", orientation="h",
            y=[axis_name(runtimes, r) for r, _ in bars], x=[p.length for _, p in bars],
            base=[p.start for _, p in bars], marker_color=PALETTE[i % len(PALETTE)],
            hovertext=[f"{plot_text(p.name)}: {number(p.length)} {plot_text(unit)}"
                       for _, p in bars],
            hoverinfo="text",
        ))
    name, title = _suffix(labels)
    return chart(f"start-phases{name}", f"Where start time goes{title}", "start",
                 "Each segment runs from one event to the next, by the median time of each "
                 "event, and is coloured by the event it ends at; a bar ends at the median "
                 "of the longest span measured.", figure, wide=True)
