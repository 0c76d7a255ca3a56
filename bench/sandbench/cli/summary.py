"""The terminal summary at the end of a run: one row per measured thing, one column per
runtime, each cell the median and its ratio to the baseline. The numbers come from stats."""

from __future__ import annotations

import math

import pandas as pd

from sandbench.analysis import stats
from sandbench.results import Run

#: Metrics shown in the terminal; the report has all of them. IO latencies and the direct-I/O
#: flag would triple the table without changing the picture a summary gives.
HEADLINE_EXCLUDED = {"clat_p50", "clat_p99", "direct_io"}


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
        sign = {"better": "+", "worse": "!", "same": "="}[row["mark"]]
        text += f" ×{row['ratio']:.2f}{sign}"
    if row["failed"]:
        text += f" ({row['failed']} failed)"
    return text


def summary_rows(run: Run) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table: workload, metric (with labels), unit, then one
    column per runtime in the run's order."""
    summary = stats.summarize(run)
    summary = summary.loc[~summary["metric"].isin(HEADLINE_EXCLUDED)]
    runtimes = [r for r in run.info.spec.runtimes if r in set(summary["runtime"])]
    runtimes += sorted(set(summary["runtime"]) - set(runtimes))
    rows = []
    for (workload, metric, labels), group in summary.groupby(
            ["workload", "metric", "labels"], sort=False):
        cells = {r["runtime"]: _cell(r) for _, r in group.iterrows()}
        name = f"{metric} [{labels}]" if labels else metric
        rows.append([workload, name, str(group["unit"].iloc[0]),
                     *[cells.get(r, "-") for r in runtimes]])
    baseline = run.info.baseline
    header = ["workload", "metric", "unit",
              *[f"{r} (baseline)" if r == baseline else r for r in runtimes]]
    return header, rows
