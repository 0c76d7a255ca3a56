"""The HTML report, rendered from small synthetic runs written as the runner writes them."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sandbench.model import Sample, Status
from sandbench.report import build_report, render_report
from sandbench.report.charts import script_json
from sandbench.report.labels import EMULATED
from sandbench.report.phases import phases
from sandbench.report.start import box_table, ecdf
from sandbench.results import RunWriter, load_run

ATTACK = "<script>alert(1)</script>"


def sample(runtime: str, value: float | None, round_: int, *, metric: str = "request_to_workload",
           workload: str = "start", labels: dict[str, str] | None = None,
           status: Status = Status.OK, raw: str | None = None, unit: str = "ms") -> Sample:
    return Sample(
        run_id="t1", backend="local", runtime=runtime, workload=workload, metric=metric,
        unit=unit, value=value, round=round_, warmup=round_ == 0, status=status,
        time="2024-06-11T00:00:00+00:00", labels=labels or {},
        reason="timed out <b>waiting</b>" if status is Status.FAILED else None, raw=raw,
    )


def write_run(run_dir: Path, samples: list[Sample], *, status: str = "completed",
              reason: str | None = None, runtimes: dict[str, Any] | None = None,
              environment: dict[str, Any] | None = None) -> Path:
    meta = {
        "run_id": run_dir.name, "backend": "local", "baseline": "runc",
        "runtimes": runtimes or {"runc": {"kind": "oci"},
                                 "qemu-tcg": {"kind": "vm", "emulated": True, "accel": "tcg"}},
        "metrics": {"request_to_workload": {"unit": "ms", "better": "lower",
                                            "description": "request to workload"}},
        "host": {"kernel": "6.1", "memory_bytes": 2**33}, "clocks": {"host_monotonic": "x"},
        "warnings": ["host is busy"], "environment": environment or {},
    }
    writer = RunWriter(run_dir, meta)
    writer.append(samples)
    writer.finish(status, reason)
    return run_dir


def small_run(run_dir: Path, **kwargs: Any) -> Path:
    rng = np.random.default_rng(0)
    samples = [sample(r, float(base * rng.lognormal(0, 0.05)), i)
               for i in range(8) for r, base in (("runc", 50.0), ("qemu-tcg", 900.0))]
    samples.append(sample("qemu-tcg", None, 8, status=Status.FAILED, raw=f"boot\n{ATTACK}\n"))
    return write_run(run_dir, samples, **kwargs)


def chart_divs(html: str) -> list[str]:
    return re.findall(r'<div class="chart" data-chart="([^"]+)"', html)


def test_failed_output_is_escaped(tmp_path: Path) -> None:
    html = render_report(small_run(tmp_path / "run")).read_text()
    assert ATTACK not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "timed out &lt;b&gt;waiting&lt;/b&gt;" in html
    assert "<details><summary>raw output" in html


def test_writes_next_to_the_run_by_default_or_where_told(tmp_path: Path) -> None:
    run_dir = small_run(tmp_path / "run")
    assert render_report(run_dir) == run_dir / "report.html"
    assert render_report(run_dir, tmp_path / "elsewhere.html").is_file()


def test_plotly_is_embedded_unless_asked_not_to(tmp_path: Path) -> None:
    run_dir = small_run(tmp_path / "run")
    embedded = render_report(run_dir, tmp_path / "a.html").read_text()
    linked = render_report(run_dir, tmp_path / "b.html", embed_js=False).read_text()
    assert "<script src=" not in embedded and len(embedded) > 1_000_000
    assert re.search(r'<script src="https://cdn\.plot\.ly/plotly-[\d.]+\.min\.js">', linked)
    assert len(linked) < 200_000


def test_interrupted_run_says_so(tmp_path: Path) -> None:
    run_dir = small_run(tmp_path / "run", status="interrupted", reason="Ctrl-C in round 8")
    html = render_report(run_dir).read_text()
    assert 'class="status status-bad">interrupted' in html
    assert 'role="alert"' in html and "Ctrl-C in round 8" in html


def test_clock_drift_is_noted_and_tabled(tmp_path: Path) -> None:
    drift = {"runc": {"start_offset_ns": 5_000_000, "start_uncertainty_ns": 1_000_000,
                      "end_offset_ns": 2_000_000, "end_uncertainty_ns": 1_000_000,
                      "end_error": None, "drift_ns": -3_000_000, "limit_ns": 2_000_000,
                      "drifted": True, "affects": ["create_to_workload"]},
             "crun": {"start_offset_ns": 0, "start_uncertainty_ns": 1_000_000,
                      "end_offset_ns": 100_000, "end_uncertainty_ns": 1_000_000,
                      "end_error": None, "drift_ns": 100_000, "limit_ns": 2_000_000,
                      "drifted": False, "affects": ["create_to_workload"]}}
    run_dir = small_run(tmp_path / "run", environment={"clock_drift": drift})
    html = build_report(load_run(run_dir)).html
    assert ("The clock offset of runc moved -3.000 ms over the run (more than the 2.000 ms its "
            "measurements allow): create_to_workload may be off") in html
    assert "clock offset of crun" not in html
    table = html[html.index('id="clock-offsets"'):]
    assert '<tr class="drifted"><th>runc</th>' in table and "<td>steady</td>" in table
    assert "+5.000 ms ± 1.000 ms" in table and "-3.000 ms" in table


def test_completed_run_has_no_alert(tmp_path: Path) -> None:
    assert 'role="alert"' not in render_report(small_run(tmp_path / "run")).read_text()


def test_emulated_runtime_is_labelled_in_tables_and_charts(tmp_path: Path) -> None:
    report = build_report(load_run(small_run(tmp_path / "run")))
    row = re.search(r"<td class=\"runtime\">qemu-tcg(.*?)</td>", report.html)
    assert row and EMULATED in row.group(1)
    for chart in report.charts:
        names = [trace.get("name", "") for trace in json.loads(chart.figure)["data"]]
        assert f"qemu-tcg ({EMULATED})" in names, chart.name
    assert f"qemu-tcg runs under tcg: {EMULATED}" in report.html


def test_every_chart_has_one_div(tmp_path: Path) -> None:
    report = build_report(load_run(small_run(tmp_path / "run")))
    names = [chart.name for chart in report.charts]
    assert chart_divs(report.html) == names
    assert len(set(names)) == len(names)
    assert f'data-charts="{len(names)}"' in report.html
    assert {"start-box-request_to_workload", "start-ecdf-request_to_workload"} <= set(names)


def test_names_from_the_run_cannot_end_the_script_element(tmp_path: Path) -> None:
    evil = "</script><script>alert(2)</script>"
    samples = [sample(r, 10.0 + i, i, labels={"op": evil}, workload="syscall",
                      metric="ns_per_op") for i in range(6) for r in ("runc", evil)]
    run_dir = write_run(tmp_path / "run", samples, runtimes={"runc": {}, evil: {"kind": evil}})
    report = build_report(load_run(run_dir))
    # Only the report's own script elements: plotly, the template, the loader, the charts.
    assert report.html.count("<script") == report.html.count("</script>") == len(report.charts) + 3
    assert "&lt;/script&gt;&lt;script&gt;alert(2)" in report.html  # in the tables
    figure = json.loads(report.charts[0].figure)
    assert figure["data"][1]["name"] == "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;"


def test_script_json_escapes_markup() -> None:
    text = script_json({"name": "</script><!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": "</script><!-- & \u2028"}


def test_unknown_workload_gets_a_table_and_bars(tmp_path: Path) -> None:
    samples = [sample(r, 5.0 + i, i, workload="net", metric="rtt", labels={"peer": "pod"})
               for i in range(6) for r in ("runc", "qemu-tcg")]
    samples += [sample("runc", 1.0, i, workload="net", metric="jumbo", unit="flag")
                for i in range(6)]
    report = build_report(load_run(write_run(tmp_path / "run", samples)))
    assert chart_divs(report.html) == ["net-bars-rtt"]  # a flag is tabled, not charted
    assert "peer=pod" in report.html and "<h3>net</h3>" in report.html
    assert "<td>jumbo</td>" in report.html


REFUSED = "O_DIRECT refused: Invalid argument"


def io_sample(runtime: str, value: float, round_: int, labels: dict[str, str],
              metric: str = "bandwidth", unit: str = "MiB/s",
              reason: str | None = None) -> Sample:
    return replace(sample(runtime, value, round_, metric=metric, workload="io", unit=unit,
                          labels=labels), reason=reason)


def test_io_says_which_runtime_ran_direct_and_which_buffered(tmp_path: Path) -> None:
    # runc's rootfs took O_DIRECT, crun's refused it: two modes, so two rows, each said.
    samples = [io_sample("runc", 300.0 + i, i, {"target": "rootfs", "job": "seqread",
                                                "direct": "true"}) for i in range(6)]
    samples += [io_sample("qemu-tcg", 3000.0 + i, i, {"target": "rootfs", "job": "seqread",
                                                      "direct": "false"},
                          reason=f"buffered: {REFUSED}") for i in range(6)]
    report = build_report(load_run(write_run(tmp_path / "run", samples)))
    assert ("rootfs: direct I/O (O_DIRECT, past the page cache) under runc; buffered I/O "
            f"(through the page cache) under qemu-tcg ({EMULATED}) ({REFUSED}).") in report.html
    io = report.summary[report.summary["workload"] == "io"]
    assert len(io) == 2 and set(io["mark"]) == {"baseline", "n/a"}  # nothing compared
    assert "direct=true" in report.html and "direct=false" in report.html


def test_run_from_before_the_direct_label_still_renders_and_says_so(tmp_path: Path) -> None:
    # As runs recorded io before the label: a direct_io flag per target, job rows unlabelled.
    samples = []
    for i in range(6):
        for runtime, direct in (("runc", 1.0), ("qemu-tcg", 0.0)):
            samples.append(io_sample(runtime, 300.0 + i, i, {"target": "volume", "job": "seqread"}))
            samples.append(io_sample(runtime, direct, i, {"target": "volume"}, metric="direct_io",
                                     unit="flag", reason=None if direct else REFUSED))
    report = build_report(load_run(write_run(tmp_path / "run", samples)))
    assert chart_divs(report.html) == ["io-bars-bandwidth"]
    assert "<td>direct_io</td>" in report.html
    assert (f"volume: direct I/O (O_DIRECT, past the page cache) under runc; buffered I/O "
            f"(through the page cache) under qemu-tcg ({EMULATED}) ({REFUSED}). Its rows mix "
            "the two modes.") in report.html
    assert "This run predates the &#39;direct&#39; label" in report.html


def test_run_without_samples_renders(tmp_path: Path) -> None:
    report = build_report(load_run(write_run(tmp_path / "run", [])))
    assert report.charts == [] and "Failed samples (0)" in report.html


def test_box_table_quartiles_and_whiskers() -> None:
    # 1..9 and an outlier: q1 = 3.25, q3 = 7.75, so whiskers stop at 1 and 9, not 100.
    values = [*range(1, 10), 100]
    ok = pd.DataFrame({"metric": "m", "labels": "", "runtime": "runc", "value": values})
    box = box_table(ok).loc[("m", "", "runc")]
    assert (box["q1"], box["median"], box["q3"]) == (3.25, 5.5, 7.75)
    assert (box["lowerfence"], box["upperfence"], box["mean"]) == (1, 9, 14.5)
    assert (box["min"], box["max"]) == (1, 100)


def test_ecdf_is_thinned_and_keeps_the_ends() -> None:
    x, y = ecdf(np.arange(10_000, 0, -1.0))
    assert len(x) == 500 and (x[0], y[0]) == (1.0, 1e-4) and (x[-1], y[-1]) == (10_000.0, 1.0)
    assert np.all(np.diff(x) > 0)
    x, y = ecdf([3.0, 1.0, 2.0])
    assert list(x) == [1.0, 2.0, 3.0] and list(y) == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_phases_from_a_common_origin_and_from_a_later_event() -> None:
    split = phases({"request_to_created": 40.0, "request_to_workload": 70.0,
                    "request_to_exit": 90.0, "start_to_workload": 12.0, "ns_per_op": 3.0})
    assert [(p.name, p.start, p.length) for p in split] == [
        ("request → created", 0.0, 40.0), ("created → start", 40.0, 18.0),
        ("start → workload", 58.0, 12.0), ("workload → exit", 70.0, 20.0),
    ]


def test_phases_from_a_chain() -> None:
    split = phases({"create_to_scheduled": 5.0, "scheduled_to_running": 900.0,
                    "create_to_ready": 1200.0})
    assert [(p.name, p.length) for p in split] == [
        ("create → scheduled", 5.0), ("scheduled → running", 900.0), ("running → ready", 295.0),
    ]
