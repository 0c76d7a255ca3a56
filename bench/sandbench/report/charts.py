"""The report's charts: what each one is called, and how its figure goes into the page.

The numbers of a chart are computed in start.py and bars.py; the page only hands the figure to
plotly.js. Figures travel as JSON inside ``<script type="application/json">``,
escaped so that no string from a run (a runtime name, a label) can close that element.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from sandbench.report.labels import EMULATED, Runtimes

#: The look of every chart. The page carries it once and hands it to each chart: in each
#: figure it would weigh ~7 kB and cost plotly.py 10 ms to copy.
TEMPLATE = "plotly_white"
#: Workloads shown first, in this order; any other follows by name.
WORKLOAD_ORDER = ["start", "syscall", "io", "net"]

# In JSON these characters occur only inside strings, where \u escapes mean the same thing;
# escaped, "</script>" and "<!--" cannot appear in the page's script element.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                              "\u2028": "\\u2028", "\u2029": "\\u2029"})


@dataclass(frozen=True)
class Chart:
    """One chart of the report."""

    #: Unique in a report; the page's ``data-chart`` attribute, so tests can find it.
    name: str
    title: str
    #: The workload it belongs to.
    section: str
    #: What to read in it, one or two sentences.
    caption: str
    #: The plotly figure as JSON that is safe inside a <script> element.
    figure: str
    #: Spans the page's width even where charts stand side by side.
    wide: bool = False


def script_json(value: Any) -> str:
    """JSON that can sit inside a <script> element without ending it."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).translate(_SCRIPT_SAFE)


def template_json() -> str:
    """The shared look (``TEMPLATE``) as JSON safe inside a <script> element."""
    look = pio.templates[TEMPLATE].to_plotly_json()
    return str(pio.json.to_json_plotly(look)).translate(_SCRIPT_SAFE)


def plot_text(text: str) -> str:
    """plotly.js reads a few HTML tags in its text; escaped, names from a run show as written."""
    return html.escape(text, quote=False)


def axis_name(runtimes: Runtimes, runtime: str) -> str:
    """A runtime's name under an axis tick: its emulation warning on a line of its own."""
    name = plot_text(runtime)
    return f"{name}<br>({EMULATED})" if runtime in runtimes.emulated else name


def chart(name: str, title: str, section: str, caption: str, figure: go.Figure, *,
          wide: bool = False) -> Chart:
    # plotly's own encoder turns numpy values and NaN into JSON; only the escaping is ours.
    return Chart(name=name, title=title, section=section, caption=caption,
                 figure=figure.to_json().translate(_SCRIPT_SAFE), wide=wide)


def wide_span(values: npt.ArrayLike, factor: float) -> bool:
    """Whether the positive values span more than ``factor``: then a log axis is needed to
    read the small ones at all."""
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array) & (array > 0)]
    return bool(array.size) and float(array.max() / array.min()) > factor


def layout(y_title: str, *, x_title: str = "", log: bool = False, height: int = 400,
           **extra: Any) -> dict[str, Any]:
    """What every chart shares: the legend on top, room for long names."""
    base: dict[str, Any] = {
        "template": "none",  # the page applies TEMPLATE
        "height": height,
        "margin": {"l": 70, "r": 20, "t": 20, "b": 60},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        "xaxis": {"title": {"text": plot_text(x_title)}},
        "yaxis": {"title": {"text": plot_text(y_title)}, "type": "log" if log else "linear"},
    }
    base.update(extra)
    return base


def workload_order(workloads: Iterable[str]) -> list[str]:
    present = set(workloads)
    known = [w for w in WORKLOAD_ORDER if w in present]
    return known + sorted(present - set(known))


def metric_order(rows: pd.DataFrame, runtimes: Runtimes) -> list[str]:
    """The metrics of some summary rows. Metrics of one unit come shortest first by the
    medians of the runtime that measured most of them, so start phases read in the order
    they happen; metrics of different units come by name."""
    metrics = sorted(rows["metric"].unique())
    if rows["unit"].nunique() != 1:
        return metrics
    counts = rows.groupby("runtime")["metric"].nunique()
    reference = max(runtimes.order, key=lambda r: int(counts.get(r, 0)), default="")
    mine = rows[rows["runtime"] == reference]
    medians = mine.groupby("metric")["median"].min().fillna(math.inf)
    return sorted(metrics, key=lambda m: (float(medians.get(m, math.inf)), m))
