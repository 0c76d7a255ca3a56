"""The HTML report of a run: ``render_report(run_dir)`` writes one self-contained file."""

from __future__ import annotations

from sandbench.report.render import Report, build_report, render_report, write_report

__all__ = ["Report", "build_report", "render_report", "write_report"]
