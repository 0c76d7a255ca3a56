"""Published reference figures beside a run's own numbers: gVisor's syscall time by platform.

The figures live in one file, anchors.yaml next to this module, each with its source, the date
it was published and the machine it was taken on; this module checks that file against its
model and sets each figure beside this run's runtime that matches it (by name, or by the
``platform`` label its samples carry), with this run's median and its ratio to its own
reference runtime. Absolute times differ between machines, so the ratio is the column that
can be compared; its interval comes from the same bootstrap as the headline table's.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from sandbench.analysis import stats
from sandbench.analysis.summary import RunSummary
from sandbench.report.labels import Runtimes, interval, number, ratio

ANCHORS_FILE = "anchors.yaml"
#: Said on every table of published figures, so none is read as this run's measurement.
PUBLISHED = "published reference data, not measured in this run"


class Figure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    as_published: str
    """The figure's name where it was published (a row of its CSV)."""
    value: float = Field(gt=0)
    """The published value, in the anchor's unit, exactly as published."""
    matches: dict[Literal["runtime", "platform"], str]
    """Which of our runtimes it is set beside: by runtime name or by its ``platform`` label;
    empty when none of ours is that runtime (Kata's clh, Firecracker)."""


class Anchor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    id: str
    title: str
    source: str
    """The page that shows the figures."""
    data: str
    """The file the figures are drawn from."""
    published: str
    """When the figures were published (ISO date)."""
    machine: str
    notes: str
    """What the source says about how they were taken, quoted where possible."""
    workload: str
    metric: str
    labels: dict[str, str]
    """The labels of our rows the figures are set beside (context labels left out)."""
    unit: str
    figures: list[Figure] = Field(min_length=1)
    reference: str | None = None
    """The ``as_published`` name every figure is divided by; its match is our divisor. None:
    the figures are absolute (memory), set beside our medians converted by ``per_unit``."""
    per_unit: float = Field(1.0, gt=0)
    """What one published unit is in our metric's unit (bytes to MiB: 1/1048576)."""
    our_unit: str = ""
    """Our metric's unit, for an absolute anchor's converted column."""


class AnchorFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    anchors: list[Anchor]


@cache
def published() -> AnchorFile:
    """anchors.yaml, checked."""
    text = (resources.files("sandbench.report") / ANCHORS_FILE).read_text(encoding="utf-8")
    return AnchorFile.model_validate(yaml.safe_load(text))


def anchor_tables(summary: RunSummary, runtimes: Runtimes,
                  anchors: list[Anchor] | None = None) -> dict[str, list[dict[str, Any]]]:
    """By workload, one table per anchor whose rows this run measured: each published figure
    with our matching runtime's median and both ratios to the reference, then our runtimes
    of a platform no figure names."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for anchor in published().anchors if anchors is None else anchors:
        rows = _our_rows(summary.rows, anchor)
        if rows.empty:
            continue
        tables.setdefault(anchor.workload, []).append(_table(anchor, rows, summary, runtimes))
    return tables


def _our_rows(rows: pd.DataFrame, anchor: Anchor) -> pd.DataFrame:
    return rows[(rows["workload"] == anchor.workload) & (rows["metric"] == anchor.metric)
                & (rows["labels"] == stats.labels_key(anchor.labels))]


def _platforms(rows: pd.DataFrame) -> dict[str, str]:
    """Each runtime's platform label ("" for none): the same on all its samples."""
    return {str(runtime): str((mine["label_values"].iloc[0] or {}).get("platform", ""))
            for runtime, mine in rows.groupby("runtime", sort=False)}


def _match(figure: Figure, platforms: dict[str, str]) -> str | None:
    for runtime, platform in platforms.items():
        if figure.matches.get("runtime") == runtime or (
                "platform" in figure.matches and figure.matches["platform"] == platform):
            return runtime
    return None


def _absolute(anchor: Anchor, rows: pd.DataFrame, summary: RunSummary,
              runtimes: Runtimes) -> dict[str, Any]:
    """Published absolute figures beside our medians, no ratios."""
    platforms = _platforms(rows)
    ours = _against(rows, summary, None)
    out = []
    for figure in anchor.figures:
        runtime = _match(figure, platforms)
        row = _row(figure.as_published, None, figure.value, runtime, ours, platforms, runtimes)
        row["published_ours"] = number(figure.value * anchor.per_unit)
        out.append(row)
    matched = {r for r in (_match(f, platforms) for f in anchor.figures) if r}
    for runtime in [r for r in runtimes.order if r in platforms and r not in matched]:
        row = _row("", None, None, runtime, ours, platforms, runtimes)
        row["published_ours"] = "—"
        out.append(row)
    return {"absolute": True, "title": anchor.title, "source": anchor.source,
            "data": anchor.data, "published": anchor.published, "machine": anchor.machine,
            "notes": anchor.notes, "what": f"{anchor.metric}", "unit": anchor.unit,
            "our_unit": anchor.our_unit, "label": PUBLISHED, "rows": out}


def _table(anchor: Anchor, rows: pd.DataFrame, summary: RunSummary,
           runtimes: Runtimes) -> dict[str, Any]:
    if anchor.reference is None:
        return _absolute(anchor, rows, summary, runtimes)
    platforms = _platforms(rows)
    matched = {f.as_published: _match(f, platforms) for f in anchor.figures}
    reference = matched.get(anchor.reference)
    ours = _against(rows, summary, reference)
    base = next(f.value for f in anchor.figures if f.as_published == anchor.reference)
    out = [_row(f.as_published, f.value / base, f.value, matched[f.as_published], ours,
                platforms, runtimes) for f in anchor.figures]
    unmatched = [r for r in runtimes.order if r in platforms and r not in matched.values()]
    out += [_row("", None, None, r, ours, platforms, runtimes) for r in unmatched]
    return {"absolute": False, "title": anchor.title, "source": anchor.source, "data": anchor.data,
            "published": anchor.published, "machine": anchor.machine, "notes": anchor.notes,
            "what": f"{anchor.metric} [{stats.labels_key(anchor.labels)}]", "unit": anchor.unit,
            "reference": anchor.reference, "our_reference": runtimes.name(reference)
            if reference else "—", "label": PUBLISHED, "rows": out}


def _against(rows: pd.DataFrame, summary: RunSummary, reference: str | None) -> pd.DataFrame:
    """This run's rows summarised with ``reference`` as their baseline (no ratios without
    one), indexed by runtime."""
    meta = summary.run.info.model_copy(update={"baseline": reference})
    return stats.summarize_rows(rows, meta, against_baseline=reference is not None
                                ).set_index("runtime")


def _row(as_published: str, published_ratio: float | None, value: float | None,
         runtime: str | None, ours: pd.DataFrame, platforms: dict[str, str],
         runtimes: Runtimes) -> dict[str, str]:
    mine = ours.loc[runtime] if runtime is not None and runtime in ours.index else None
    return {
        "published": as_published or "no published figure",
        "published_value": number(value),
        "published_ratio": ratio(published_ratio),
        "runtime": runtimes.name(runtime) if runtime else "not run here",
        "platform": platforms.get(runtime or "", "") or "—",
        "median": number(mine["median"]) if mine is not None else "—",
        "ci": interval(mine["ci_low"], mine["ci_high"]) if mine is not None else "—",
        "ratio": ratio(mine["ratio"]) if mine is not None else "—",
        "ratio_ci": interval(mine["ratio_low"], mine["ratio_high"]) if mine is not None else "—",
    }
