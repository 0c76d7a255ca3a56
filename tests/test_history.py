"""The history index, the last good run, and the report's verdict and trend sections, on
small runs written as the runner writes them."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import sandbench
from sandbench.model import Sample, Status
from sandbench.nightly import history
from sandbench.report import build_report
from sandbench.results import RunWriter, load_run


def write_run(directory: Path, name: str, day: int, median: float, *, status: str = "completed",
              runtimes: tuple[str, ...] = ("runc",), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed or day)
    rows = [Sample(run_id=name, backend="local", runtime=runtime, workload="start",
                   metric="request_to_exit", unit="ms",
                   value=float(rng.lognormal(math.log(median), 0.02)), round=i, warmup=False,
                   status=Status.OK, time="2026-01-01T00:00:00+00:00")
            for i in range(1, 11) for runtime in runtimes]
    meta = {"run_id": name, "backend": "local", "started_at": f"2026-01-{day:02d}T02:00:00+00:00",
            "git_commit": f"{day:040d}", "host": {"hostname": "node-1"},
            "spec": {"name": "standard", "runtimes": list(runtimes), "workloads": {}},
            "metrics": {"request_to_exit": {"unit": "ms", "better": "lower"}}}
    writer = RunWriter(directory / name, meta)
    writer.append(rows)
    writer.finish(status)
    return directory / name


def test_index_is_built_then_kept_up_to_date(tmp_path: Path) -> None:
    write_run(tmp_path, "r2", 2, 50)
    write_run(tmp_path / "2026-01", "r1", 1, 50)  # one level down works too
    (tmp_path / "not-a-run").mkdir()
    entries = history.load_index(tmp_path)
    assert [e.run_id for e in entries] == ["r1", "r2"]
    assert entries[0].path == "2026-01/r1" and entries[1].runtimes == ["runc"]
    assert entries[1].host == "node-1" and entries[1].status == "completed"
    index = tmp_path / history.INDEX_FILE
    assert len(index.read_text().splitlines()) == 2
    write_run(tmp_path, "r3", 3, 50, status="interrupted")
    assert [e.run_id for e in history.load_index(tmp_path)] == ["r1", "r2", "r3"]
    # A changed run is read again: its verdict says its gate failed.
    (tmp_path / "r3" / history.VERDICT_FILE).write_text(json.dumps({"gate": "failed"}))
    assert history.load_index(tmp_path)[-1].gate == "failed"
    os.remove(index)
    assert len(history.load_index(tmp_path)) == 3 and index.is_file()


def test_an_index_line_of_another_version_is_read_again(tmp_path: Path) -> None:
    write_run(tmp_path, "r1", 1, 50)
    (tmp_path / history.INDEX_FILE).write_text(
        json.dumps({"index_version": 99, "path": "r1", "run_id": "stale"}) + "\n{torn")
    assert [e.run_id for e in history.load_index(tmp_path)] == ["r1"]


def test_last_good_skips_unfinished_invalid_and_failed_gates(tmp_path: Path) -> None:
    write_run(tmp_path, "r1", 1, 50)
    write_run(tmp_path, "r2", 2, 50)
    write_run(tmp_path, "r3", 3, 50, status="interrupted")
    write_run(tmp_path, "r4", 4, 60)
    (tmp_path / "r4" / history.VERDICT_FILE).write_text(json.dumps({"gate": "failed"}))
    write_run(tmp_path, "r5", 5, 50)
    entries = history.load_index(tmp_path)
    assert history.last_good(entries).run_id == "r5"  # type: ignore[union-attr]
    assert history.last_good(entries, before="r5").run_id == "r2"  # type: ignore[union-attr]
    assert history.last_good(entries, backend="kubernetes") is None


def test_history_command_lists_and_finds_the_last_good_run(tmp_path: Path) -> None:
    write_run(tmp_path, "20260101T020000Z-aaaa", 1, 50)
    write_run(tmp_path, "20260102T020000Z-bbbb", 2, 50, status="failed")
    listed = sandbench("history", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert "20260101T020000Z-aaaa" in listed.stdout and "failed" in listed.stdout
    good = sandbench("history", str(tmp_path), "--last-good")
    assert good.stdout.strip() == str(tmp_path / "20260101T020000Z-aaaa")
    none = sandbench("history", str(tmp_path), "--last-good", "--before",
                     "20260101T020000Z-aaaa")
    assert none.returncode == 1 and "no good run" in none.stderr
    lines = sandbench("history", str(tmp_path), "--json").stdout.splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["completed", "failed"]


@pytest.fixture
def nightly(tmp_path: Path) -> Path:
    """Twelve nights of runc and crun; runc 20% slower from night 7 on."""
    for day in range(1, 13):
        median = 50.0 * (1.2 if day >= 7 else 1.0)
        write_run(tmp_path, f"night{day:02d}", day, median, runtimes=("runc",))
    return tmp_path


def test_report_shows_the_verdict_against_a_baseline(nightly: Path) -> None:
    report = build_report(load_run(nightly / "night07"), baseline=load_run(nightly / "night06"),
                          embed_js=False)
    html = report.html
    assert "Verdict: Against the baseline run night06" in html
    assert html.index('id="verdict-1"') < html.index('id="headline"')
    assert "✘ regressed" in html and "1 regressed" in html


def test_report_draws_trends_and_names_the_change_point(nightly: Path) -> None:
    report = build_report(load_run(nightly / "night12"), history=nightly, embed_js=False)
    trend = [c for c in report.charts if c.section == "trends"]
    assert [c.name for c in trend] == ["trend-start-request_to_exit-"]
    figure = json.loads(trend[0].figure)
    series = figure["data"][0]
    assert len(series["x"]) == 12
    # The night of the step is marked as a regression against the night before.
    marked = [t for t in figure["data"] if t["name"].endswith("regressed vs the night before")]
    assert marked and marked[0]["x"] == ["2026-01-07T02:00:00+00:00"]
    html = report.html
    assert "Change points over the history (1)" in html
    assert "<code>night07</code>" in html
    assert re.search(r"<td class=\"num\">\+(19|20)\.\d%</td>", html)
    assert 'data-chart="trend-start-request_to_exit-"' in html


def test_report_without_baseline_or_history_has_neither(nightly: Path) -> None:
    html = build_report(load_run(nightly / "night12"), embed_js=False).html
    assert "Verdict:" not in html and "Change points" not in html


def test_report_shows_the_gates_own_verdict_with_its_thresholds(nightly: Path) -> None:
    """The gate ran with a 30% threshold: +20% passed it. The report must not judge again
    with the default 10% and call it a regression."""
    gated = sandbench("compare", str(nightly / "night06"), str(nightly / "night07"),
                      "--threshold", "30%", "--alpha", "0.001", "--fail-on", "regression",
                      "--record")
    assert gated.returncode == 0, gated.stdout + gated.stderr
    html = build_report(load_run(nightly / "night07"), baseline=load_run(nightly / "night06"),
                        embed_js=False).html
    assert ("Verdict: Against the baseline run night06 (as the gate recorded it in verdict.json: "
            "passed)") in html
    assert "✘ regressed" not in html and "0 regressed" in html
    assert "(default 30%" in re.sub(r"\s+", " ", html)
    assert "p &lt; 0.001" in html
    # Without --baseline the recorded verdict is shown too; a different baseline is judged anew.
    assert "as the gate recorded it" in build_report(load_run(nightly / "night07"),
                                                 embed_js=False).html
    other = build_report(load_run(nightly / "night07"), baseline=load_run(nightly / "night05"),
                         embed_js=False).html
    assert "Verdict: Against the baseline run night05" in other and "1 regressed" in other
