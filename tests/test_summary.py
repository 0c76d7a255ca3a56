"""The terminal summary printed at the end of a run: which rows, which columns, at what width,
on the synthetic demo run (four runtimes, one of them emulated, io with every label)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from sandbench.analysis import stats
from sandbench.analysis.summary import summarize_run
from sandbench.cli import cli
from sandbench.cli.summary import summary_tables
from sandbench.results import Run, load_run
from report_demo import write_demo_run
from test_compare import samples, write_run


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return load_run(write_demo_run(tmp_path_factory.mktemp("summary") / "demo", 6))


def test_headline_rows_and_label_columns(demo: Run) -> None:
    tables = {t.title: t for t in summary_tables(stats.summarize(demo), demo.info)}
    assert list(tables) == ["start (ms, lower is better)", "syscall: ns_per_op (ns/op, lower "
                            "is better)", "io: bandwidth (MiB/s, higher is better)"]
    start = tables["start (ms, lower is better)"]
    assert [row[0] for row in start.rows] == ["request_to_workload", "request_to_exit"]
    assert "-v adds request_to_created" in start.caption
    io = tables["io: bandwidth (MiB/s, higher is better)"]
    assert io.header[:io.names] == ["direct", "target", "job"]
    assert io.header[io.names:] == ["runc\n(baseline)", "crun", "kata", "qemu-tcg\n(emulated)"]
    assert len(io.rows) == 16
    # A label value repeated from the row above is left blank.
    assert io.rows[0][:3] == ["false", "rootfs", "randread"]
    assert io.rows[1][:3] == ["", "", "randwrite"]


def test_verbose_has_every_metric_one_io_table_each(demo: Run) -> None:
    tables = summary_tables(stats.summarize(demo), demo.info, verbose=True)
    titles = [t.title for t in tables]
    assert titles[2:] == ["io: bandwidth (MiB/s, higher is better)",
                          "io: iops (IOPS, higher is better)", "io: clat_p50 (µs, lower is better)",
                          "io: clat_p99 (µs, lower is better)"]
    assert len(tables[0].rows) == 6  # every start phase the demo has


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_fits_100_columns(demo: Run, verbose: list[str]) -> None:
    result = CliRunner().invoke(cli, ["summary", str(demo.dir), *verbose],
                                env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "×6.15! (1 failed)" in result.output  # ratio marks and failures kept
    assert "qemu-tcg: emulated, not representative of KVM" in lines


def test_no_ratio_to_or_of_a_value_that_is_not_positive(tmp_path: Path) -> None:
    rows = (samples("native", [5.0, 5.2, 4.9, 5.1, 5.0], metric="available_drop_mib",
                    workload="density", unit="MiB")
            + samples("runc", [-117.0, -115.0, -119.0, -116.0, -118.0],
                      metric="available_drop_mib", workload="density", unit="MiB")
            + samples("crun", [10.0, 10.5, 9.8, 10.1, 10.2], metric="available_drop_mib",
                      workload="density", unit="MiB"))
    metrics = {"available_drop_mib": {"unit": "MiB", "better": "lower", "description": ""}}
    run = write_run(tmp_path / "run", rows, metrics=metrics, baseline="native",
                    spec={"runtimes": ["native", "runc", "crun"], "workloads": {}})
    table = summarize_run(run).table.set_index("runtime")
    # MemAvailable rose during the hold: -117 MiB is not -23 times native's 5 MiB.
    assert math.isnan(table.loc["runc", "ratio"]) and table.loc["runc", "mark"] == "n/a"
    assert table.loc["crun", "ratio"] == pytest.approx(2.0, rel=0.05)
    cells = [cell for found in summary_tables(summarize_run(run).table, run.info, verbose=True)
             for row in found.rows for cell in row]
    assert "-117 (≤0, no ratio)" in cells
    assert not any("×-" in cell for cell in cells)
