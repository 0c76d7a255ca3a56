"""What KubeVirt adds around the same VM (report/vm_overhead.py), on hand-computed runs: a local
qemu run and a KubeVirt run of the same guest, compared event by event in the report, with the
guest's own boot as a check and a one-line refusal when the runs cannot be compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import sandbench
from sandbench.model import Sample, Status
from sandbench.report import build_report
from sandbench.report.vm_overhead import NotComparable, _reference_tag, frame, section
from sandbench.results import RunWriter, load_run

TAG = "67c10f547728"
#: Per local sandbox: request -> kernel, init, workload (ms).
LOCAL = [(600.0, 4400.0, 5000.0), (700.0, 4500.0, 5100.0), (650.0, 4450.0, 5050.0)]
#: Per VMI: create -> scheduled, running, kernel, init, workload (ms).
VMI = [(6000.0, 7500.0, 8600.0, 12400.0, 13000.0), (6100.0, 7600.0, 8700.0, 12500.0, 13100.0),
       (5900.0, 7400.0, 8500.0, 12300.0, 12900.0)]


def sample(runtime: str, metric: str, value: float, round_: int, backend: str) -> Sample:
    return Sample(run_id="t", backend=backend, runtime=runtime, workload="start", metric=metric,
                  unit="ms", value=value, round=round_, warmup=False, status=Status.OK,
                  time="2026-12-02T00:00:00+00:00", labels={"accel": "tcg"},
                  output=f"outputs/{runtime}-{round_}.txt")


def write(run_dir: Path, backend: str, runtimes: dict[str, dict[str, object]],
          samples: list[Sample], image: dict[str, str],
          environment: dict[str, object] | None = None) -> Path:
    meta = {"run_id": run_dir.name, "backend": backend, "baseline": next(iter(runtimes)),
            "runtimes": runtimes, "metrics": {}, "host": {}, "clocks": {}, "warnings": [],
            "environment": {"image": image, **(environment or {})}}
    writer = RunWriter(run_dir, meta)
    writer.append(samples)
    writer.finish("completed", None)
    return run_dir


def local_run(run_dir: Path, tag: str = TAG, accel: str = "tcg",
              local: list[tuple[float, float, float]] = LOCAL,
              qemu: str = "QEMU emulator version 10.0.13 (Debian 1:10.0.13+ds-0+deb13u1)") -> Path:
    samples = [sample("qemu", metric, value, i + 1, "local") for i, values in enumerate(local)
               for metric, value in zip(("request_to_kernel", "request_to_init",
                                         "request_to_workload"), values)]
    return write(run_dir, "local", {"qemu": {"kind": "vm", "emulated": True, "accel": accel,
                                             "version": qemu}},
                 samples, {"input_hash": tag + "0" * 52})


#: environment.kubevirt.launcher_versions as the backend records it (from the launcher's log).
LAUNCHER = {"libvirt": "11.3.0", "qemu": "10.0.13", "line": "starting up libvirt version: ..."}


def kubevirt_run(run_dir: Path, tag: str = TAG, burst: bool = False,
                 launcher: dict[str, str] | None = LAUNCHER) -> Path:
    metrics = ("create_to_scheduled", "create_to_running", "create_to_kernel", "create_to_init",
               "create_to_workload")
    samples = [sample("kubevirt-vm", metric, value, i + 1, "kubernetes")
               for i, values in enumerate(VMI) for metric, value in zip(metrics, values)]
    if burst:  # the same VMIs again, three times slower, started 16 at a time
        samples += [Sample(**{**one.__dict__, "value": (one.value or 0.0) * 3,
                              "round": one.round + 10, "output": f"burst-{one.round}",
                              "labels": {"accel": "tcg", "concurrency": "16", "position": "1"}})
                    for one in samples]
    facts = {"kind": "kubevirt", "emulated": True, "accel": "tcg",
             "images": {"kernelboot": f"localhost/sandbench/kernelboot:{tag}"}}
    return write(run_dir, "kubernetes", {"kubevirt-vm": facts}, samples,
                 {"name": f"localhost/sandbench/workload:{tag}"},
                 {"kubevirt": {"launcher_versions": launcher or "not seen: no launcher log said"}})


def test_each_event_is_the_difference_of_the_medians(tmp_path: Path) -> None:
    found = section(load_run(kubevirt_run(tmp_path / "kv")), load_run(local_run(tmp_path / "q")))
    rows = frame(found).set_index("event")
    # Medians: local kernel 650, init 4450, workload 5050; VMI 8600, 12400, 13000.
    assert rows.loc["guest kernel's first output", "local_ms"] == "650 (n=3)"
    assert rows.loc["guest kernel's first output", "kubevirt_ms"] == "8,600 (n=3)"
    assert rows.loc["guest kernel's first output", "added_ms"] == "7,950"
    assert rows.loc["guest init running", "added_ms"] == "7,950"
    assert rows.loc["workload's first instruction", "added_ms"] == "7,950"
    assert rows.loc["workload's first instruction", "added_ci"] != "—"
    # KubeVirt's own steps have no local counterpart.
    assert rows.loc["launcher pod running (VMI Scheduled)", "local_ms"] == "—"
    assert rows.loc["launcher pod running (VMI Scheduled)", "kubevirt_ms"] == "6,000 (n=3)"
    table = found["tables"][0]
    # The guest's own boot, kernel output to workload: 4400 in both, per sandbox.
    assert table["guest"]["local_ms"] == "4,400 (n=3)" and table["guest"]["added_ms"] == "0"
    assert table["warnings"] == [] and table["emulated"] is True


def test_a_different_guest_accelerator_or_boot_is_said(tmp_path: Path) -> None:
    slow_guest = [(k, i, w + 3000.0) for k, i, w in LOCAL]
    found = section(load_run(kubevirt_run(tmp_path / "kv", tag="aaaaaaaaaaaa")),
                    load_run(local_run(tmp_path / "q", accel="kvm", local=slow_guest)))
    said = " ".join(found["tables"][0]["warnings"])
    assert "not the same guest" in said and "accelerators differ" in said
    assert "guest's own boot" in said


def test_which_qemu_ran_on_each_side_is_said(tmp_path: Path) -> None:
    same = section(load_run(kubevirt_run(tmp_path / "kv")), load_run(local_run(tmp_path / "q")))
    table = same["tables"][0]
    assert table["qemu"] == "QEMU 10.0.13 locally, 10.0.13 (libvirt 11.3.0) in virt-launcher"
    assert table["warnings"] == []
    # Bookworm's QEMU locally against trixie's in the launcher: said, not blamed on KubeVirt.
    older = section(load_run(tmp_path / "kv"), load_run(local_run(
        tmp_path / "q7", qemu="QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)")))
    said = " ".join(older["tables"][0]["warnings"])
    assert "QEMU versions differ (7.2.22 locally, 10.0.13 in virt-launcher)" in said
    unseen = section(load_run(kubevirt_run(tmp_path / "kv2", launcher=None)),
                     load_run(tmp_path / "q7"))
    assert unseen["tables"][0]["qemu"] == "QEMU 7.2.22 locally, not recorded in virt-launcher"
    assert unseen["tables"][0]["warnings"] == []


def test_the_report_shows_it_in_the_start_section(tmp_path: Path) -> None:
    html = build_report(load_run(kubevirt_run(tmp_path / "kv")),
                        qemu_run=load_run(local_run(tmp_path / "q"))).html
    assert 'id="vm-overhead"' in html and "What KubeVirt adds around the same VM" in html
    assert html.index('id="section-start"') < html.index('id="vm-overhead"')
    assert "7,950" in html
    assert 'id="vm-overhead"' not in build_report(load_run(tmp_path / "kv")).html


def test_runs_that_cannot_be_compared_are_refused(tmp_path: Path) -> None:
    kv, q = kubevirt_run(tmp_path / "kv"), local_run(tmp_path / "q")
    with pytest.raises(NotComparable, match="no good 'qemu' start samples"):
        section(load_run(kv), load_run(kv))
    with pytest.raises(NotComparable, match="no KubeVirt runtime"):
        section(load_run(q), load_run(q))
    result = sandbench("report", str(kv), "--qemu-run", str(kv))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--qemu-run" in result.stderr
    assert "Traceback" not in result.stderr
    # The run at fault is named: here RUN_DIR, a local run with no VMI.
    result = sandbench("report", str(q), "--qemu-run", str(q))
    assert result.returncode == 2 and result.stderr.startswith(f"sandbench: RUN_DIR '{q}'")


def test_bursts_are_left_out_and_image_references_read_right(tmp_path: Path) -> None:
    kv = kubevirt_run(tmp_path / "kv", burst=True)
    found = section(load_run(kv), load_run(local_run(tmp_path / "q")))
    assert frame(found).set_index("event").loc["workload's first instruction",
                                                 "kubevirt_ms"] == "13,000 (n=3)"
    assert _reference_tag(f"registry.example:5000/sandbench/kernelboot:{TAG}") == TAG
    assert _reference_tag(f"r:5000/k:{TAG}@sha256:{'a' * 64}") == TAG
    assert _reference_tag(f"r/k@sha256:{'a' * 64}") == ""
    assert _reference_tag("localhost:5000/sandbench/kernelboot") == ""
