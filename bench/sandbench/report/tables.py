"""The report's tables as rows of ready-made strings: the headline comparison, the failed
samples, and the environment. Templates print these and compute nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sandbench.analysis import stats
from sandbench.formats import RunMeta
from sandbench.report.charts import metric_order, workload_order
from sandbench.report.labels import (EMULATED, MARK_TEXT, Runtimes, fact, interval, memory, number,
                                     percent, ratio)


@dataclass(frozen=True)
class HeadlineRow:
    metric: str
    labels: str
    runtime: str
    #: Said under the runtime's name: that it is emulated.
    runtime_note: str
    #: CSS classes: "first" on the first row of a (metric, labels) group, where the table
    #: draws a rule; "emulated" for an emulated runtime.
    row_class: str
    n: str
    failed: str
    median: str
    ci: str
    p95: str
    cov: str
    noisy: bool
    ratio: str
    ratio_ci: str
    #: better / worse / same / baseline / na, for the colour; ``mark_text`` is what is read.
    mark_class: str
    mark_text: str


#: Tables longer than this start folded, so the charts are not pages away.
OPEN_ROWS = 40


@dataclass(frozen=True)
class Headline:
    """One workload's table."""

    workload: str
    rows: list[HeadlineRow]
    #: How many rows were better, worse or the same: what a folded table shows.
    tally: str
    open: bool


def headline(summary: pd.DataFrame, runtimes: Runtimes) -> list[Headline]:
    """Per workload, every (metric, labels), each runtime against the baseline."""
    rank = {name: i for i, name in enumerate(runtimes.order)}
    tables = []
    for workload in workload_order(summary["workload"]):
        rows = summary[summary["workload"] == workload]
        metric_rank = {m: i for i, m in enumerate(metric_order(rows, runtimes))}
        rows = rows.assign(_metric=rows["metric"].map(metric_rank),
                           _runtime=rows["runtime"].map(rank))
        rows = rows.sort_values(["_metric", "labels", "_runtime"], kind="stable")
        first = ~rows.duplicated(["metric", "labels"])
        lines = [_headline_row(row, bool(f), runtimes)
                 for row, f in zip(rows.to_dict("records"), first)]
        tables.append(Headline(workload, lines, _tally(rows["mark"]), len(lines) <= OPEN_ROWS))
    return tables


def _tally(marks: pd.Series) -> str:
    counts = marks.value_counts()
    said = [f"{int(counts[m])} {m}" for m in ("better", "worse", "same") if m in counts]
    return ", ".join(said) or "no comparisons"


def _headline_row(row: Mapping[str, Any], first: bool, runtimes: Runtimes) -> HeadlineRow:
    mark = str(row["mark"])
    compared = mark != "baseline"
    median = number(row["median"])
    classes = ["first"] * first + ["emulated"] * (row["runtime"] in runtimes.emulated)
    return HeadlineRow(
        metric=str(row["metric"]), labels=str(row["labels"]),
        runtime=str(row["runtime"]), row_class=" ".join(classes),
        runtime_note=EMULATED if row["runtime"] in runtimes.emulated else "",
        n=str(int(row["n"])), failed=_not_measured(row),
        median=f"{median} {row['unit']}" if median != "—" and row["unit"] else median,
        ci=interval(row["ci_low"], row["ci_high"]), p95=number(row["p95"]),
        cov=percent(row["cov"]), noisy=bool(row["cov"] > stats.COV_LIMIT),
        ratio=ratio(row["ratio"]) if compared else "",
        ratio_ci=interval(row["ratio_low"], row["ratio_high"]) if compared else "",
        mark_class=mark.replace("/", ""), mark_text=MARK_TEXT.get(mark, mark),
    )


def _not_measured(row: Mapping[str, Any]) -> str:
    counts = [(int(row["failed"]), "failed"), (int(row["skipped"]), "skipped")]
    return ", ".join(f"{count} {what}" for count, what in counts if count)


def failures(samples: pd.DataFrame, runtimes: Runtimes) -> list[dict[str, str]]:
    """Every failed sample, warmups included, in the order they were measured."""
    failed = samples[samples["status"] == "failed"]
    return [
        {
            "runtime": runtimes.name(str(row["runtime"])),
            "workload": str(row["workload"]), "metric": str(row["metric"]),
            "labels": stats.labels_key(row["labels"]),
            "round": str(row["round"]) + (" (warmup)" if row["warmup"] else ""),
            "reason": str(row["reason"] or "no reason recorded"),
            "raw": str(row["raw"] or ""), "output": str(row["output"] or ""),
        }
        for row in failed.to_dict("records")
    ]


def host_facts(meta: RunMeta) -> list[tuple[str, str]]:
    return [(key, memory(value) if key.endswith("_bytes") else fact(value))
            for key, value in meta.host.items()]


def runtime_facts(meta: RunMeta, runtimes: Runtimes) -> tuple[list[str], list[list[str]]]:
    """A matrix: one column per runtime, one row per fact any runtime has."""
    facts = meta.runtimes
    names = [n for n in runtimes.order if n in facts]
    keys = list(dict.fromkeys(key for n in names for key in facts[n]))
    header = ["", *(runtimes.name(n) for n in names)]
    rows = [[key, *(fact(facts[n][key]) if key in facts[n] else "" for n in names)]
            for key in keys]
    return header, rows


def metric_facts(meta: RunMeta) -> list[tuple[str, str, str, str]]:
    return [(name, m.unit, m.better, m.description) for name, m in meta.metrics.items()]


def clock_facts(meta: RunMeta) -> list[tuple[str, str]]:
    return [(name, fact(text)) for name, text in meta.clocks.items()]


@dataclass(frozen=True)
class ClockDriftRow:
    """A runtime's clock offset at the run's start and end, in ms, and the verdict."""

    runtime: str
    start: str
    end: str
    drift: str
    limit: str
    verdict: str
    affects: str
    drifted: bool


def _ms(ns: Any, sign: bool = False) -> str:
    if not isinstance(ns, (int, float)):
        return "—"
    return f"{ns / 1e6:+.3f} ms" if sign else f"{ns / 1e6:.3f} ms"


def clock_drift(meta: RunMeta, runtimes: Runtimes) -> list[ClockDriftRow]:
    """environment.clock_drift: each runtime's offset measured at the start and the end."""
    found: Mapping[str, Mapping[str, Any]] = meta.environment.get("clock_drift") or {}
    rows = []
    for name, d in found.items():
        drifted = d.get("drifted")
        verdict = ("drifted: its phases across clocks are uncertain by the drift" if drifted
                   else f"unknown: {d.get('end_error')}" if drifted is None else "steady")
        rows.append(ClockDriftRow(
            runtime=runtimes.name(name),
            start=f"{_ms(d.get('start_offset_ns'), True)} ± {_ms(d.get('start_uncertainty_ns'))}",
            end=(f"{_ms(d.get('end_offset_ns'), True)} ± {_ms(d.get('end_uncertainty_ns'))}"
                 if d.get("end_offset_ns") is not None else "not measured"),
            drift=_ms(d.get("drift_ns"), True), limit=_ms(d.get("limit_ns")), verdict=verdict,
            affects=fact(d.get("affects") or []), drifted=drifted is not False))
    return rows
