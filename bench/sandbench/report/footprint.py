"""The report's Footprint section and its decision summary, laid out from the RunSummary.

Per-sandbox cost comes from the summary table's rows of the footprint workload; the density
curve and its fit from RunSummary.density; declared against measured from the RuntimeClass
comparison (backends.kubernetes.overhead); the decision lines from RunSummary.decision. Nothing
here computes a statistic: it formats what those computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from sandbench.analysis.footprint import DensityCurve
from sandbench.analysis.summary import RunSummary
from sandbench.backends.kubernetes import overhead
from sandbench.report.charts import Chart, chart, layout, plot_text
from sandbench.report.labels import Runtimes, interval, number

#: The per-sandbox metrics shown, in this order.
PER_SANDBOX = ("overhead_pss_mib", "host_pss_mib", "host_uss_mib", "cgroup_memory_mib",
               "idle_cpu_ms_per_s", "workload_rss_mib", "pod_overhead_mib",
               "pod_working_set_mib")


def decision(summary: RunSummary, runtimes: Runtimes) -> list[dict[str, Any]]:
    """The decision summary: one line per runtime against the baseline."""
    return [{"runtime": runtimes.name(line.runtime), "baseline": line.baseline,
             "figures": [{"what": f.what, "text": f.text, "source": f.source}
                         for f in line.figures],
             "text": line.text()} for line in summary.decision]


def per_sandbox(summary: RunSummary, runtimes: Runtimes) -> list[dict[str, str]]:
    table = summary.table
    rows = table[table["workload"] == "footprint"]
    out = []
    for runtime in [r for r in runtimes.order if r in set(rows["runtime"])]:
        mine = rows[rows["runtime"] == runtime].set_index("metric")
        cells = {}
        for metric in PER_SANDBOX:
            if metric in mine.index and int(mine.loc[metric, "n"]) > 0:
                row = mine.loc[metric]
                cells[metric] = f"{number(row['median'])} {interval(row['ci_low'], row['ci_high'])}"
            else:
                cells[metric] = "—"
        counted = _counted(summary, runtime)
        out.append({"runtime": runtimes.name(runtime), "counted": counted, **cells})
    return out


def _counted(summary: RunSummary, runtime: str) -> str:
    good = summary.good
    mine = good[(good["workload"] == "footprint") & (good["runtime"] == runtime)
                & (good["metric"] == "host_pss_mib")]
    labels = sorted({str((v or {}).get("counted", "")) for v in mine["label_values"]})
    return "; ".join(labels) or "—"


def density_rows(curves: list[DensityCurve], runtimes: Runtimes) -> list[dict[str, str]]:
    out = []
    for curve in curves:
        fit = curve.fit
        reached = max((n for n, _ in curve.points), default=0)
        out.append({
            "runtime": runtimes.name(curve.runtime),
            "points": ", ".join(f"{n}: {number(v)}" for n, v in curve.points) or "—",
            "slope": f"{number(fit.slope)} {interval(fit.slope_low, fit.slope_high)}"
                     if fit else "— (fewer than 3 points or 2 counts)",
            "intercept": f"{number(fit.intercept)} "
                         f"{interval(fit.intercept_low, fit.intercept_high)}" if fit else "—",
            "residual": number(fit.residual_sd) if fit else "—",
            "reached": str(reached) if reached else "none",
            "stopped": "; ".join(f"N={n}: {why}" for n, why in sorted(curve.stopped.items()))
                       or "every count was held",
        })
    return out


def density_chart(curves: list[DensityCurve], runtimes: Runtimes) -> list[Chart]:
    if not any(c.points for c in curves):
        return []
    figure = go.Figure()
    for curve in curves:
        if not curve.points:
            continue
        colour = runtimes.colours.get(curve.runtime, "#000000")
        name = plot_text(runtimes.name(curve.runtime))
        figure.add_trace(go.Scatter(x=[n for n, _ in curve.points], y=[v for _, v in curve.points],
                                    mode="markers", name=name, marker={"color": colour}))
        if curve.fit is not None:
            xs = np.array([0, max(n for n, _ in curve.points)], dtype=float)
            figure.add_trace(go.Scatter(x=xs, y=curve.fit.intercept + curve.fit.slope * xs,
                                        mode="lines", name=f"{name} fit",
                                        line={"color": colour, "dash": "dot"}))
    figure.update_layout(**layout("total host PSS, or pods' working set (MiB)",
                                  x_title="sandboxes held together"))
    return [chart("density", "Density: host PSS of N sandboxes held together", "footprint",
                  "Each point is one measurement of N idle sandboxes together; the dotted line "
                  "is the least-squares fit whose slope is the cost of one more sandbox and "
                  "whose intercept is the fixed cost (shared binaries land there).", figure,
                  wide=True)]


def declared(summary: RunSummary) -> list[dict[str, str]]:
    """Each RuntimeClass's declared podFixed memory beside this run's measured overhead."""
    rows = []
    for row in overhead.compare(summary):
        found = row.recommendation
        rows.append({
            "runtime_class": row.runtime_class,
            "measured_as": row.runtime or "not measured in this run",
            "declared": row.declared or "none",
            "median": number(row.median_mib) if row.median_mib is not None else "—",
            "quantile": f"{number(found.measured)} "
                        f"{interval(found.measured_low, found.measured_high)}" if found else "—",
            "recommended": f"{found.value_mib}Mi {interval(found.low_mib, found.high_mib)}"
                           if found else "—",
        })
    return rows


def section(summary: RunSummary, runtimes: Runtimes) -> dict[str, Any] | None:
    """The Footprint section's tables; None when the run measured neither workload."""
    workloads = set(summary.table["workload"])
    if not workloads & {"footprint", "density"}:
        return None
    return {"per_sandbox": per_sandbox(summary, runtimes),
            "density": density_rows(summary.density, runtimes),
            "declared": declared(summary) if "footprint" in workloads else [],
            "local": summary.run.info.backend == "local"}
