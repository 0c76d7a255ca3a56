"""Start latency against concurrency: the curves of a run with concurrency as its axis.

One chart of start latency (p50, p90, p99 with their bootstrap intervals) against the number
of sandboxes started together, per runtime; then the burst's own totals (time to the last
sandbox's workload, throughput) and what the harness spent meanwhile. The numbers come from
analysis/concurrency.py (RunSummary.concurrency); this module only lays them out. Drawn only
when the run has more than one level.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from sandbench.report.charts import Chart, chart, layout, plot_text, wide_span
from sandbench.report.labels import Runtimes, number
from sandbench.workloads.start import (BURST_METRICS, BURST_THROUGHPUT, BURST_TO_LAST_WORKLOAD,
                                       HARNESS_CPU, PHASES)

#: The latency drawn against concurrency: runtime invoked to the workload's first instruction;
#: on a cluster, pod created to it (a cluster's concurrency is per node, all nodes pooled).
LATENCY = PHASES[0].metric.name
POD_LATENCY = "create_to_workload"
#: Metrics shown by their own curves here, not as one more start phase's box and ECDF.
CURVE_ONLY = frozenset(m.name for m in BURST_METRICS)
DASHES = {"p50": "solid", "p90": "dash", "p99": "dot"}
#: Values further apart than this (crun's lone start next to runsc's p99 at 32) get a log
#: axis, or the fast runtimes' curves flatten onto the floor.
LOG_SPAN = 10.0


def has_curves(curves: pd.DataFrame) -> bool:
    """Whether the run has more than one concurrency level to draw a curve through."""
    return not curves.empty and curves["concurrency"].nunique() > 1


def concurrency_charts(curves: pd.DataFrame, runtimes: Runtimes) -> list[Chart]:
    if not has_curves(curves):
        return []
    charts = []
    for metric, name, what in (
            (LATENCY, "start-concurrency-latency", "runtime invoked"),
            (POD_LATENCY, "start-concurrency-pod-latency", "pod created, as the watch saw it")):
        latency = curves[(curves["workload"] == "start") & (curves["metric"] == metric)]
        if not latency.empty:
            charts.append(_curve_chart(
                latency, runtimes, ("p50", "p90", "p99"), name,
                f"{metric} against concurrency",
                f"Each sandbox's start latency ({what} -> first workload instruction) by how "
                "many were started together: p50 solid, p90 dashed, p99 dotted; bars: 95% "
                "bootstrap intervals. Hover for the samples behind a point: with few, a p99 "
                "is the slowest one."))
    for metric, title, caption in (
        (BURST_TO_LAST_WORKLOAD.name, "whole burst: first request -> last workload",
         "The time from the burst's first request until its last sandbox ran its first "
         "instruction (median over bursts, 95% interval)."),
        (BURST_THROUGHPUT.name, "throughput: sandboxes started per second",
         "The burst's sandboxes over its total time (median over bursts, 95% interval); "
         "higher is better."),
        (HARNESS_CPU.name, "the harness's own CPU during a burst",
         "sandbench's CPU time (all its threads) over each burst's wall time, in % of one "
         "core: when it nears 100%, the harness, not the runtime, may be the bottleneck."),
    ):
        rows = curves[(curves["workload"] == "start") & (curves["metric"] == metric)]
        if not rows.empty:
            charts.append(_curve_chart(rows, runtimes, ("p50",), f"start-concurrency-{metric}",
                                       title, caption))
    return charts


def _curve_chart(rows: pd.DataFrame, runtimes: Runtimes, statistics: tuple[str, ...],
                 name: str, title: str, caption: str) -> Chart:
    unit = str(rows["unit"].iloc[0])
    levels = sorted(int(level) for level in rows["concurrency"].unique())
    log = wide_span(rows["value"], LOG_SPAN)
    figure = go.Figure(layout=layout(unit, x_title="sandboxes started together", log=log,
                                     height=420))
    figure.update_xaxes(type="log", tickvals=levels, ticktext=[str(level) for level in levels])
    for runtime in runtimes.order:
        for statistic in statistics:
            line = rows[(rows["runtime"] == runtime) & (rows["statistic"] == statistic)]
            if line.empty:
                continue
            line = line.sort_values("concurrency")
            label = runtimes.name(runtime) + (f" {statistic}" if len(statistics) > 1 else "")
            figure.add_trace(go.Scatter(
                name=plot_text(label), x=line["concurrency"].tolist(),
                y=line["value"].tolist(), mode="lines+markers",
                line={"color": runtimes.colours[runtime], "dash": DASHES[statistic]},
                error_y={"type": "data", "symmetric": False,
                         "array": (line["ci_high"] - line["value"]).tolist(),
                         "arrayminus": (line["value"] - line["ci_low"]).tolist()},
                hovertext=[f"{plot_text(label)} at {level}: {number(value)} {plot_text(unit)} "
                           f"[{number(low)}, {number(high)}], n={n}"
                           for level, value, low, high, n in zip(
                               line["concurrency"], line["value"], line["ci_low"],
                               line["ci_high"], line["n"])],
                hoverinfo="text",
            ))
    return chart(name, title, "start", caption + (" Log scale." if log else ""), figure,
                 wide=True)
