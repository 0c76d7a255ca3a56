"""Trends over a results history: per metric, each runtime's nightly median with its interval,
nights that regressed against the night before marked, and change points (changepoint.py,
E-Divisive means) drawn where a series shifted, so a slow drift shows even when no single
night crossed the threshold.

The runs are those of the history directory (history.py) with the report's backend, completed,
oldest first, the report's own run last; only the series the report's run measured are shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from sandbench.analysis import changepoint, stats
from sandbench.analysis.summary import RunSummary, summarize_run
from sandbench.analysis.thresholds import Thresholds
from sandbench.nightly import compare, history
from sandbench.report.charts import Chart, chart, layout, plot_text
from sandbench.report.labels import Runtimes, number
from sandbench.results import ResultsError, load_run

#: Nights shown: two months of nightly runs keep a report quick to make and to open.
LIMIT = 60
SECTION = "trends"

Key = tuple[str, str, str, str]


@dataclass
class Point:
    """One night of one series."""

    run_id: str
    time: str
    median: float
    ci_low: float
    ci_high: float
    n: int
    values: np.ndarray[Any, Any]
    regressed: str = ""


@dataclass
class Series:
    key: Key
    unit: str
    better: str
    points: list[Point] = field(default_factory=list)
    change_points: list[changepoint.ChangePoint] = field(default_factory=list)


@dataclass(frozen=True)
class Trends:
    charts: list[Chart]
    #: Rows of the change-point table, newest first.
    change_points: list[dict[str, str]]
    runs: int
    history: str


def _runs(summary: RunSummary, directory: Path, limit: int) -> list[RunSummary]:
    """The history's runs, summarised, oldest first, then the report's own (summarised
    already)."""
    run = summary.run
    entries = [e for e in history.load_index(directory)
               if e.status == "completed" and e.backend == run.info.backend
               and e.run_id != run.run_id]
    loaded = []
    for entry in entries[-(limit - 1):] if limit > 1 else []:
        try:
            loaded.append(summarize_run(load_run(directory / entry.path)))
        except ResultsError:
            continue
    return [*loaded, summary]


def _series(runs: list[RunSummary], wanted: set[Key]) -> dict[Key, Series]:
    found: dict[Key, Series] = {}
    for past in runs:
        for row in past.table.itertuples(index=False):
            key: Key = (str(row.runtime), str(row.workload), str(row.metric), str(row.labels))
            if key not in wanted or not row.n:
                continue
            series = found.setdefault(key, Series(key, str(row.unit), str(row.better)))
            series.points.append(Point(past.run.run_id,
                                       past.run.info.started_at,
                                       float(row.median), float(row.ci_low), float(row.ci_high),
                                       int(row.n), past.values.get(key, np.array([]))))
    return found


def _judge(series: Series, thresholds: Thresholds) -> None:
    for before, after in zip(series.points, series.points[1:]):
        metric = series.key[2]
        judgement = compare.judge(before.values, after.values, better=series.better,
                                  threshold=thresholds.of(metric),
                                  min_change=thresholds.minimum(metric, series.unit),
                                  unit=series.unit)
        if judgement.verdict == compare.Verdict.REGRESSED:
            after.regressed = judgement.reason
    medians = [p.median for p in series.points]
    series.change_points = changepoint.change_points(medians)


def _time(text: str) -> str:
    try:
        return dt.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return text


#: Where each runtime's change-point labels go, so labels of one night do not overlap.
LABEL_POSITIONS = ("top left", "top right", "bottom left", "bottom right")


def _traces(series: Series, runtimes: Runtimes, figure: go.Figure) -> None:
    runtime = series.key[0]
    colour = runtimes.colours.get(runtime, "#000000")
    points = series.points
    x = [p.time for p in points]
    median = np.array([p.median for p in points])
    hover = [f"{plot_text(p.run_id)}<br>median {number(p.median)} {plot_text(series.unit)}"
             f"<br>n = {p.n}" for p in points]
    figure.add_trace(go.Scatter(
        x=x, y=median, mode="lines+markers", name=plot_text(runtimes.name(runtime)),
        line={"color": colour}, hovertext=hover, hoverinfo="text+name",
        error_y={"type": "data", "symmetric": False,
                 "array": np.maximum(np.array([p.ci_high for p in points]) - median, 0),
                 "arrayminus": np.maximum(median - np.array([p.ci_low for p in points]), 0)}))
    bad = [p for p in points if p.regressed]
    if bad:
        figure.add_trace(go.Scatter(
            x=[p.time for p in bad], y=[p.median for p in bad], mode="markers",
            name=f"{plot_text(runtime)}: regressed vs the night before",
            marker={"symbol": "x", "size": 13, "color": "#b42318"},
            hovertext=[plot_text(p.regressed) for p in bad], hoverinfo="text"))
    place = runtimes.order.index(runtime) if runtime in runtimes.order else 0
    for cp in series.change_points:
        figure.add_vline(x=points[cp.index].time, line_dash="dot", line_color=colour,
                         annotation_text=f"{plot_text(runtime)} {cp.relative_change:+.1%}",
                         annotation_font_color=colour,
                         annotation_position=LABEL_POSITIONS[place % len(LABEL_POSITIONS)])


def _chart(group: list[Series], runtimes: Runtimes) -> Chart:
    _, workload, metric, labels = group[0].key
    unit, better = group[0].unit, group[0].better
    figure = go.Figure(layout=layout(unit, height=340))
    for series in sorted(group, key=lambda s: runtimes.order.index(s.key[0])
                         if s.key[0] in runtimes.order else len(runtimes.order)):
        _traces(series, runtimes, figure)
    name = f"{metric} [{labels}]" if labels else metric
    return chart(f"trend-{workload}-{metric}-{labels}", f"{workload}: {name} ({unit}) over time",
                 SECTION, f"Median per run with its 95% bootstrap interval; {better} is better. "
                 "✕: regressed against the run before; dotted line: a change point.",
                 figure, wide=True)


def _change_rows(all_series: list[Series]) -> list[dict[str, str]]:
    rows = []
    for series in all_series:
        runtime, workload, metric, labels = series.key
        for cp in series.change_points:
            point = series.points[cp.index]
            rows.append({"time": _time(point.time), "run_id": point.run_id, "runtime": runtime,
                         "workload": workload, "metric": f"{metric} [{labels}]" if labels
                         else metric, "before": number(cp.before), "after": number(cp.after),
                         "change": f"{cp.relative_change:+.1%}", "p": f"{cp.p_value:.2g}",
                         "unit": series.unit})
    return sorted(rows, key=lambda r: r["time"], reverse=True)


def trends(summary: RunSummary, directory: Path, runtimes: Runtimes, *, limit: int = LIMIT,
           thresholds: Thresholds | None = None) -> Trends:
    """Trend charts and change points of the summarised run's series over the history in
    ``directory``."""
    runs = _runs(summary, directory, limit)
    wanted: set[Key] = {(str(r), str(w), str(m), str(labels)) for r, w, m, labels in
                        summary.good[stats.GROUP].drop_duplicates().itertuples(index=False)}
    found = _series(runs, wanted)
    for series in found.values():
        _judge(series, thresholds or Thresholds())
    groups: dict[tuple[str, str, str], list[Series]] = {}
    for key, series in sorted(found.items()):
        groups.setdefault(key[1:], []).append(series)
    charts = [_chart(group, runtimes) for _, group in sorted(groups.items())]
    return Trends(charts, _change_rows(list(found.values())), len(runs), str(directory))


def context(found: Trends | None) -> Mapping[str, Any] | None:
    """What the template shows beside the charts."""
    if found is None:
        return None
    return {"runs": found.runs, "history": found.history, "change_points": found.change_points,
            "charts": len(found.charts)}
