"""Where io's targets are under runsc: read from the flags the built runsc runs with (its own
`runsc flags` output, a golden file), recorded per runtime, named in the report's io section,
and carried as a context label that never splits a row."""

from __future__ import annotations

import re
from pathlib import Path

from sandbench.analysis import stats
from sandbench.backends.local import gvisor
from sandbench.report import build_report
from sandbench.results import load_run
from test_report import sample, write_run

GOLDEN = Path(__file__).parent / "data" / "golden" / "runsc_flags.txt"


def test_defaults_are_read_from_runsc_flags() -> None:
    # `runsc flags` of v0.0.0-20260905035102-160fafc42237, as built by build-gvisor.sh.
    defaults = gvisor.flag_defaults(GOLDEN.read_text())
    assert {name: defaults[name] for name in gvisor.STORAGE_FLAGS} == {
        "overlay2": "root:self", "directfs": "true", "file-access": "exclusive",
        "file-access-mounts": "shared"}
    assert defaults["platform"] == "systrap" and defaults["network"] == "sandbox"
    assert defaults["debug"] == "false"  # a boolean prints no default when it is false


def test_our_flags_override_the_defaults() -> None:
    defaults = gvisor.flag_defaults(GOLDEN.read_text())
    ours = gvisor.effective(defaults, ("--platform=ptrace", "--network=none"))
    assert ours["overlay2"] == "root:self"
    changed = gvisor.effective(defaults, ("--overlay2=none", "--directfs=false"))
    assert (changed["overlay2"], changed["directfs"]) == ("none", "false")


def test_what_each_target_is() -> None:
    base = {"overlay2": "root:self", "directfs": "true", "file-access": "exclusive",
            "file-access-mounts": "shared"}
    default = gvisor.io_targets(base)
    assert default["rootfs"].label == "gvisor-overlay:self"
    assert ".gvisor.filestore.<sandbox id>" in default["rootfs"].description
    assert default["volume"].label == "host-bind:directfs"
    off = gvisor.io_targets({**base, "overlay2": "none", "directfs": "false"})
    assert (off["rootfs"].label, off["volume"].label) == ("host-overlay:gofer", "host-bind:gofer")
    everything = gvisor.io_targets({**base, "overlay2": "all:memory"})
    assert everything["volume"].label == "gvisor-overlay:memory"
    assert "never reach the host directory" in everything["volume"].description


def io_run(run_dir: Path) -> Path:
    where = {"runc": {"rootfs": "host-overlay", "volume": "host-bind"},
             "runsc": {"rootfs": "gvisor-overlay:self", "volume": "host-bind:directfs"}}
    samples = [sample(runtime, value * (1 + i / 100), i, workload="io", metric="bandwidth",
                      unit="MiB/s", labels={"target": target, "job": "seqwrite", "direct": "true",
                                            "storage": where[runtime][target]})
               for i in range(6) for runtime, value in (("runc", 1000.0), ("runsc", 700.0))
               for target in ("rootfs", "volume")]
    facts = {"runc": {"kind": "oci", "io_targets": {
                 t: {"label": label, "description": f"host {t}"}
                 for t, label in where["runc"].items()}},
             "runsc": {"kind": "oci", "io_targets": {
                 t: {"label": target.label, "description": target.description}
                 for t, target in gvisor.io_targets(
                     gvisor.effective(gvisor.flag_defaults(GOLDEN.read_text()), ())).items()}}}
    return write_run(run_dir, samples, runtimes=facts)


def test_storage_is_context_and_never_splits_a_row(tmp_path: Path) -> None:
    summary = stats.summarize(load_run(io_run(tmp_path / "run")))
    assert len(summary) == 4  # two runtimes by two targets, not four by storage
    assert all("storage" not in labels for labels in summary["label_values"])
    runsc = summary[(summary["runtime"] == "runsc") & (summary["labels"].str.contains("rootfs"))]
    assert float(runsc["ratio"].iloc[0]) == 0.7


def test_the_io_section_says_what_each_target_is(tmp_path: Path) -> None:
    html = build_report(load_run(io_run(tmp_path / "run"))).html
    section = html[html.index('id="section-io"'):html.index('id="warnings"')]
    notes = [re.sub(r"\s+", " ", n) for n in re.findall(r'io-mode">(.*?)</p>', section, re.S)]
    assert notes[0].startswith("Under runc: rootfs is host rootfs (storage=host-overlay)")
    assert "Under runsc: rootfs is gVisor&#39;s overlay inside the sentry" in notes[1]
    assert "(storage=gvisor-overlay:self); volume is the host directory" in notes[1]
    # Charts group runc's and runsc's bars of one target together, whatever their storage.
    assert "storage=" not in "".join(re.findall(r'"x":\[.*?\]\]', section))
