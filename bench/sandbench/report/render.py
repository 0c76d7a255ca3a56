"""Render a run as one self-contained HTML file.

Everything shown is computed here and in the modules this one calls; the templates
(templates/base.html.j2 and report.html.j2) only lay it out. With ``embed_js`` (the default)
plotly.js goes inline, so the file opens offline, attached to a mail or a CI artifact.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.offline
from markupsafe import Markup

from sandbench import __version__
from sandbench.analysis import stats
from sandbench.analysis.summary import RunSummary, summarize_run
from sandbench.formats import RunMeta
from sandbench.report import footprint, tables, trends, verdict_section, vm_overhead
from sandbench.report.anchors import anchor_tables
from sandbench.report.bars import bar_charts
from sandbench.report.charts import Chart, template_json, workload_order
from sandbench.report.concurrency import concurrency_charts
from sandbench.report.io_mode import io_mode_notes, io_target_notes
from sandbench.report.labels import EMULATED, Runtimes, number, runtimes
from sandbench.report.network import network_notes
from sandbench.report.pull import pull_notes
from sandbench.report.start import start_charts
from sandbench.results import Run, load_run

REPORT_FILE = "report.html"
#: What a run that did not complete means for its numbers.
STATUS_NOTES = {
    "interrupted": "This run was interrupted: the numbers cover only what was measured before "
                   "it stopped.",
    "failed": "This run failed: the numbers cover only what was measured before it failed.",
    "running": "This run had not finished when this report was made: the numbers are partial.",
    "crashed": "This run's harness died without recording an end (killed, or the machine "
               "restarted): the numbers cover only what was measured before.",
}
SECTION_TITLES = {"start": "Start latency", "syscall": "System calls", "io": "Storage I/O",
                  "footprint": "Footprint", "net": "Network",
                  "trends": "Trends over the history"}


@dataclass(frozen=True)
class Report:
    """A rendered report and what went into it."""

    html: str
    charts: list[Chart]
    summary: pd.DataFrame


def render_report(run_dir: Path, out: Path | None = None, *, embed_js: bool = True,
                  baseline: Path | None = None, history: Path | None = None) -> Path:
    """Write the report of the run in ``run_dir`` (by default to ``run_dir/report.html``);
    with a verdict against the ``baseline`` run and trends over the ``history`` directory."""
    return write_report(summarize_run(load_run(run_dir)), out, embed_js=embed_js,
                        baseline=load_run(baseline) if baseline else None, history=history)


def write_report(summary: RunSummary, out: Path | None = None, *, embed_js: bool = True,
                 baseline: Run | None = None, history: Path | None = None,
                 qemu_run: Run | None = None) -> Path:
    """:func:`render_report` of a run already summarised (by default to its
    ``report.html``); with ``qemu_run``, a local qemu run of the same guest, what KubeVirt adds
    around it (vm_overhead.py; raises vm_overhead.NotComparable)."""
    report = build_report(summary.run, embed_js=embed_js, baseline=baseline, history=history,
                          summary=summary, qemu_run=qemu_run)
    path = out if out is not None else summary.run.dir / REPORT_FILE
    path.write_text(report.html, encoding="utf-8")
    return path


def build_report(run: Run, *, embed_js: bool = True, baseline: Run | None = None,
                 history: Path | None = None, summary: RunSummary | None = None,
                 qemu_run: Run | None = None) -> Report:
    """The report of ``run``; ``summary``: its summary when already made (summarize_run);
    ``qemu_run``: a local qemu run to compare the run's KubeVirt VMIs with."""
    if summary is None:
        summary = summarize_run(run)
    names = runtimes(run.info, run.samples["runtime"].unique())
    charts = make_charts(summary.rows, summary.table, names)
    # The curves open the start section's charts when the run has concurrency levels.
    charts = concurrency_charts(summary.concurrency, names) + charts
    charts += footprint.density_chart(summary.density, names)
    found = trends.trends(summary, history, names) if history is not None else None
    charts += found.charts if found else []
    context = {
        "verdicts": verdict_section.sections(summary, baseline),
        "decision": footprint.decision(summary, names),
        "footprint": footprint.section(summary, names),
        "vm_overhead": vm_overhead.section(run, qemu_run) if qemu_run is not None else None,
        "trends": trends.context(found),
        "run": header(run),
        "notes": notes(run.info, names),
        "headline": tables.headline(summary.table, names),
        "sections": sections(charts, {
            "start": pull_notes(summary.table, run.info, names),
            "io": io_target_notes(run.info, names) + io_mode_notes(run.samples, names),
            "net": network_notes(run.samples, run.info, names)},
            anchor_tables(summary, names)),
        "warnings": all_warnings(run.info, summary.table, run.damage_warning()),
        "failures": tables.failures(run.samples, names),
        "host": tables.host_facts(run.info),
        "runtime_facts": tables.runtime_facts(run.info, names),
        "metrics": tables.metric_facts(run.info),
        "clocks": tables.clock_facts(run.info),
        "clock_drift": tables.clock_drift(run.info, names),
        "spec": json.dumps(run.info.spec.model_dump(exclude_unset=True), indent=2,
                           sort_keys=True, default=str),
        "chart_count": len(charts),
        "plotly": plotly_script(embed_js),
        "template": Markup(template_json()),  # made safe for <script> by charts
    }
    html = _environment().get_template("report.html.j2").render(context)
    return Report(html=html, charts=charts, summary=summary.table)


def make_charts(rows: pd.DataFrame, summary: pd.DataFrame, names: Runtimes) -> list[Chart]:
    """Distributions for start latency, bars of medians for every other workload."""
    charts: list[Chart] = []
    for workload in workload_order(summary["workload"]):
        if workload == "density":
            continue  # its curve is in the footprint section (footprint.density_chart)
        if workload == "start":
            charts += start_charts(rows, summary, names)
        else:
            charts += bar_charts(summary, workload, names)
    return charts


def sections(charts: list[Chart], notes: Mapping[str, list[str]] | None = None,
             anchors: Mapping[str, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """Charts by workload; start latency's pairs (box, ECDF) side by side, bars full width;
    ``notes``: sentences a workload's section opens with (how fio ran, for io); ``anchors``:
    tables of published reference figures a section ends with (anchors.anchor_tables)."""
    placed = [
        {"name": c.name, "title": c.title, "section": c.section, "caption": c.caption,
         "wide": c.wide, "dom_id": f"figure-{i}",
         "figure": Markup(c.figure)}  # made safe for <script> by charts.chart
        for i, c in enumerate(charts)
    ]
    return [{"workload": w, "title": SECTION_TITLES.get(w, w),
             "layout": "grid" if w == "start" else "wide",
             "notes": (notes or {}).get(w, []),
             "anchors": (anchors or {}).get(w, []),
             "charts": [c for c in placed if c["section"] == w]}
            for w in workload_order(c.section for c in charts)]


def header(run: Run) -> dict[str, str]:
    meta = run.info
    status = meta.status
    samples = run.samples
    return {
        "id": run.run_id, "status": status,
        "status_class": "ok" if status == "completed" else "bad",
        "note": STATUS_NOTES.get(status, ""),
        "reason": meta.status_reason or "",
        "started": meta.started_at or "—",
        "ended": meta.ended_at or "—",
        "duration": duration(meta.started_at, meta.ended_at),
        "backend": meta.backend or "—",
        "baseline": meta.baseline or "none",
        "version": meta.sandbench_version or "—",
        "commit": meta.git_commit or "—",
        "samples": f"{len(samples):,} samples: {int(samples['warmup'].sum()):,} warmup, "
                   f"{int((samples['status'] == 'failed').sum()):,} failed, "
                   f"{int((samples['status'] == 'skipped').sum()):,} skipped",
        "generated": f"sandbench {__version__}",
    }


def duration(started: Any, ended: Any) -> str:
    try:
        seconds = (dt.datetime.fromisoformat(str(ended))
                   - dt.datetime.fromisoformat(str(started))).total_seconds()
    except ValueError:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60} h {minutes % 60:02d} min {secs:02d} s"


def notes(meta: RunMeta, names: Runtimes) -> list[str]:
    """Caveats the reader needs before any number: emulated runtimes, clocks that drifted."""
    said = [f"{name} runs under {meta.runtime_facts(name).get('accel', 'emulation')}: "
            f"{EMULATED}. "
            f"Its numbers are marked wherever they appear."
            for name in names.order if name in names.emulated]
    drift: Mapping[str, Mapping[str, Any]] = meta.environment.get("clock_drift") or {}
    said += [f"The clock offset of {name} moved {d['drift_ns'] / 1e6:+.3f} ms over the run (more "
             f"than the {d['limit_ns'] / 1e6:.3f} ms its measurements allow): "
             f"{', '.join(d.get('affects') or [])} may be off by up to that much. See Clock "
             "offsets under Environment."
             for name, d in drift.items() if d.get("drifted")]
    harness = meta.harness or {}
    if harness.get("bursts"):
        late = harness.get("lateness_ms_max")
        said.append(f"Over its {harness['bursts']} bursts the harness itself used "
                    f"{number(harness.get('cpu_percent_of_core_mean'))}% of a core on average "
                    f"and {number(harness.get('cpu_percent_of_core_max'))}% at most"
                    + (f"; its latest request came {number(late)} ms after its scheduled "
                       "arrival" if late is not None else "") + ".")
    return said


def all_warnings(meta: RunMeta, summary: pd.DataFrame, damage: str | None = None) -> list[str]:
    """The run's recorded warnings, samples.jsonl's damage, then the statistics' warnings."""
    return [*meta.warnings, *([damage] if damage else []), *stats.warnings(summary)]


def plotly_script(embed_js: bool) -> dict[str, Any]:
    if embed_js:
        return {"inline": _plotly_js(), "src": ""}
    # A version that exists on the CDN: the one this plotly.py bundles.
    version = plotly.offline.get_plotlyjs_version()
    return {"inline": "", "src": f"https://cdn.plot.ly/plotly-{version}.min.js"}


@cache
def _plotly_js() -> Markup:
    # plotly's own bundle, trusted as is; 4-5 MB, read once per process.
    return Markup(plotly.offline.get_plotlyjs())


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("sandbench.report", "templates"),
        # On for every template whatever its name: run outputs and names come from outside.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
