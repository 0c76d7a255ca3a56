"""Published reference figures in the report's syscall section: gVisor's syscall times by
platform, beside this run's own, labelled as published data with their source."""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

import numpy as np

from sandbench.analysis.summary import summarize_run
from sandbench.report import build_report
from sandbench.report.anchors import PUBLISHED, anchor_tables, published
from sandbench.report.labels import runtimes
from sandbench.results import load_run
from test_report import sample, write_run

#: (runtime, platform label, ns per getpid): ratios to runc of exactly 10 and 20.
OURS = (("runc", None, 100.0), ("runsc", "systrap", 1000.0), ("runsc-ptrace", "ptrace", 2000.0))


def syscall_run(run_dir: Path, ops: tuple[str, ...] = ("getpid", "write_4k")) -> Path:
    rng = np.random.default_rng(1)
    samples = [sample(runtime, ns * float(rng.uniform(0.99, 1.01)), i, workload="syscall",
                      metric="ns_per_op", unit="ns/op",
                      labels={"op": op, **({"platform": platform} if platform else {})})
               for i in range(9) for runtime, platform, ns in OURS for op in ops]
    return write_run(run_dir, samples, runtimes={r: {"kind": "oci"} for r, _, _ in OURS})


def text(fragment: str) -> str:
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", fragment)))


def test_the_data_file_holds_the_figures_as_published() -> None:
    (anchor,) = [a for a in published().anchors if a.id == "gvisor-performance-guide-syscall"]
    # website/performance/syscall.csv in google/gvisor, unchanged since 2019-05-13.
    assert {f.as_published: f.value for f in anchor.figures} == {
        "runc": 1939.0, "runsc": 38219.0, "runsc-kvm": 763.0}
    assert anchor.source == "https://gvisor.dev/docs/architecture_guide/performance/"
    assert anchor.published == "2019-05-13" and "n1-standard-4" in anchor.machine
    assert "ptrace" in anchor.notes and anchor.reference == "runc"


def test_each_figure_is_set_beside_the_runtime_of_its_platform(tmp_path: Path) -> None:
    summary = summarize_run(load_run(syscall_run(tmp_path / "run")))
    names = runtimes(summary.run.info, summary.run.samples["runtime"].unique())
    (table,) = anchor_tables(summary, names)["syscall"]
    rows = {(r["published"], r["runtime"]): r for r in table["rows"]}
    assert list(rows) == [("runc", "runc"), ("runsc", "runsc-ptrace"),
                          ("runsc-kvm", "not run here"), ("no published figure", "runsc")]
    ptrace = rows["runsc", "runsc-ptrace"]
    assert (ptrace["published_value"], ptrace["published_ratio"]) == ("38,219", "19.7×")
    assert ptrace["platform"] == "ptrace" and ptrace["ratio"] == "20.0×"
    low, high = (float(x) for x in ptrace["ratio_ci"].strip("[]").split(", "))
    assert low < 20 < high and high - low < 1
    assert rows["runsc-kvm", "not run here"]["median"] == "—"
    assert rows["runsc-kvm", "not run here"]["published_ratio"] == "0.394×"
    systrap = rows["no published figure", "runsc"]
    assert (systrap["platform"], systrap["ratio"], systrap["published_value"]) == (
        "systrap", "10.0×", "—")


def test_the_report_labels_them_published_with_source_and_year(tmp_path: Path) -> None:
    html = build_report(load_run(syscall_run(tmp_path / "run"))).html
    section = html[html.index('id="section-syscall"'):html.index('id="warnings"')]
    said = text(section)
    assert f'gVisor Performance Guide, "System calls": {PUBLISHED}' in said
    assert "Published 2019-05-13 on GCE n1-standard-4" in said
    assert 'href="https://gvisor.dev/docs/architecture_guide/performance/"' in section
    assert "runsc 38,219 19.7× runsc-ptrace ptrace" in said
    # Only the syscall section carries them.
    assert html.count(PUBLISHED) == 1


def test_no_table_without_the_rows_it_anchors(tmp_path: Path) -> None:
    run = load_run(syscall_run(tmp_path / "run", ops=("write_4k",)))
    summary = summarize_run(run)
    assert anchor_tables(summary, runtimes(run.info, run.samples["runtime"].unique())) == {}
    assert PUBLISHED not in build_report(run).html


def test_the_memory_anchors_hold_the_figures_as_published() -> None:
    anchors = {a.id: a for a in published().anchors}
    density = anchors["gvisor-performance-guide-density"]
    # website/performance/density.csv in google/gvisor: density.empty, memory_usage, bytes.
    assert {f.as_published: f.value for f in density.figures} == {
        "runc density.empty": 4092149.76, "runsc density.empty": 23695032.32}
    assert density.reference is None and density.unit == "bytes"
    assert 23695032.32 * density.per_unit == np.float64(23695032.32 / 2**20)
    (bound,) = anchors["firecracker-specification-overhead"].figures
    assert bound.value == 5.0 and bound.matches == {}
    kata = anchors["kata-checkmetrics-memory-footprint"]
    # checkmetrics' memory-footprint midval, KB (smem): 122832.40 qemu, 127220.25 clh.
    assert [f.value for f in kata.figures] == [122832.40, 127220.25]
    assert all(a.workload == "footprint" and a.metric == "host_pss_mib"
               for a in (density, kata))
