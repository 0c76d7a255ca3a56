"""Workload parsers on real probe and fio outputs captured on this machine (tests/data/golden)."""

from __future__ import annotations

import pytest

from conftest import golden
from sandbench import workloads
from sandbench.model import Execution, Status
from sandbench.runner import Step, _values
from sandbench.workloads import ParseError
from sandbench.workloads.syscall import OPERATIONS


def _case(name: str, **params: object):  # type: ignore[no-untyped-def]
    workload = workloads.get(name)
    return workload, workload.cases(workload.params(dict(params)))


def test_syscall_golden_gives_every_operation() -> None:
    workload, cases = _case("syscall")
    values = workload.parse(cases[0], Execution(stdout=golden("probe_syscall.out")))
    assert [v.labels["op"] for v in values] == list(OPERATIONS)
    by_op = {v.labels["op"]: v.value for v in values}
    assert by_op["getpid"] == pytest.approx(96.708)
    assert by_op["stat"] == pytest.approx(589.627)
    assert by_op["mmap_touch"] == pytest.approx(25361.059)
    assert all(v.metric.unit == "ns/op" for v in values)


def test_syscall_path_operations_name_the_same_file_in_every_runtime() -> None:
    # runc ran the probe as /sandbench/probe, native from the unpacked image on the host: the
    # same file relative to its directory, so the rows group; the directory stays in the output.
    workload, cases = _case("syscall")
    runc = golden("probe_syscall.out")
    native = golden("probe_syscall_native.out")
    assert '"dir":"/sandbench"' in runc and "/rootfs/sandbench\"" in native
    rows = [{v.labels["op"]: v.labels for v in workload.parse(cases[0], Execution(stdout=text))}
            for text in (runc, native)]
    assert rows[0] == rows[1]
    assert rows[0]["stat"] == {"op": "stat", "path": "probe"}
    assert rows[0]["open_close"] == {"op": "open_close", "path": "probe"}
    assert rows[0]["getpid"] == {"op": "getpid"}
    assert [labels for _, labels in cases[0].expected] == list(rows[0].values())


def test_syscall_missing_path_is_a_failed_sample_with_the_reason() -> None:
    # The probe's file was deleted while it ran, before it timed open_close and stat.
    workload, cases = _case("syscall")
    values = workload.parse(cases[0], Execution(stdout=golden("probe_syscall_missing.out")))
    by_op = {v.labels["op"]: v for v in values}
    for op in ("open_close", "stat"):
        assert by_op[op].status == Status.FAILED and by_op[op].value is None
        assert by_op[op].labels["path"] == "probe"
        assert by_op[op].reason == (f"{op} of 'probe' in /tmp/probe-runs/gone: No such file or "
                                    "directory (after 0 iterations)")
    assert all(by_op[op].status == Status.OK for op in ("getpid", "read_4k", "mmap_touch"))


def test_syscall_absolute_path_is_refused() -> None:
    workload, cases = _case("syscall")
    text = golden("probe_syscall.out").replace('"path":"probe"', '"path":"/sandbench/probe"')
    with pytest.raises(ParseError, match="not a name relative to the workload directory"):
        workload.parse(cases[0], Execution(stdout=text))


def test_syscall_truncated_json_is_a_parse_error() -> None:
    workload, cases = _case("syscall")
    with pytest.raises(ParseError, match="no probe 'syscall' line"):
        workload.parse(cases[0], Execution(stdout=golden("probe_syscall_truncated.out")))


def test_fio_golden_rootfs() -> None:
    workload, cases = _case("io", targets=["rootfs"])
    values = workload.parse(cases[0], Execution(stdout=golden("probe_fio_rootfs.out")))
    metrics = {(v.metric.name, v.labels.get("job")) for v in values}
    for job in ("seqwrite", "seqread", "randread", "randwrite"):
        for metric in ("bandwidth", "iops", "clat_p50", "clat_p99"):
            assert (metric, job) in metrics
    assert len(values) == 16
    assert all(v.labels["target"] == "rootfs" for v in values)
    assert all(v.value is not None and v.value > 0 for v in values)


def test_fio_direct_is_a_label_on_every_sample() -> None:
    workload, cases = _case("io", targets=["volume"])
    values = workload.parse(cases[0], Execution(stdout=golden("probe_fio_direct.out")))
    assert {v.metric.name for v in values} == {"bandwidth", "iops", "clat_p50", "clat_p99"}
    assert all(v.labels["direct"] == "true" and v.reason is None for v in values)


def test_fio_buffered_is_a_label_and_says_why() -> None:
    # Captured on a ramfs, which refuses O_DIRECT (EINVAL): fio ran with direct=0.
    workload, cases = _case("io", targets=["rootfs"])
    values = workload.parse(cases[0], Execution(stdout=golden("probe_fio_buffered.out")))
    assert len(values) == 16
    assert all(v.labels["direct"] == "false" for v in values)
    assert {v.reason for v in values} == {"buffered: O_DIRECT refused: Invalid argument"}


def test_direct_and_buffered_never_share_a_row() -> None:
    workload, cases = _case("io", targets=["rootfs"])
    direct = workload.parse(cases[0], Execution(stdout=golden("probe_fio_rootfs.out")))
    buffered = workload.parse(cases[0], Execution(stdout=golden("probe_fio_buffered.out")))
    rows = {(v.metric.name, tuple(sorted(v.labels.items()))) for v in direct}
    assert rows.isdisjoint((v.metric.name, tuple(sorted(v.labels.items()))) for v in buffered)


def test_fio_failure_after_the_header_fails_the_rows_of_its_mode() -> None:
    workload, cases = _case("io", targets=["rootfs"])
    execution = Execution(stdout=golden("probe_fio_readonly.out"))
    missing = workload.unmeasured(cases[0], execution)
    assert len(missing) == 16 and all(labels["direct"] == "false" for _, labels in missing)
    # Nothing printed: which mode it would have been is not known, and not guessed.
    assert all("direct" not in labels for _, labels in workload.unmeasured(cases[0], Execution()))


def test_fio_error_is_a_parse_error() -> None:
    workload, cases = _case("io", targets=["rootfs"])
    with pytest.raises(ParseError, match="fio"):
        workload.parse(cases[0], Execution(stdout=golden("probe_fio_error.out")))


def test_fio_truncated_json_is_a_parse_error() -> None:
    workload, cases = _case("io", targets=["rootfs"])
    text = golden("probe_fio_rootfs.out")
    with pytest.raises(ParseError, match="not valid"):
        workload.parse(cases[0], Execution(stdout=text[: len(text) // 2]))


def test_start_golden_gives_the_stamp() -> None:
    workload, cases = _case("start")
    with pytest.raises(ParseError, match="no marks"):
        # With no backend marks nothing can be computed: said, not guessed.
        workload.parse(cases[0], Execution(stdout=golden("probe_start.out")))


def test_unparseable_output_becomes_failed_samples_with_reason() -> None:
    workload, cases = _case("io", targets=["rootfs"])
    step = Step(workload, cases[0], "runc", 1, False)
    values, reason = _values(step, Execution(stdout=golden("probe_fio_error.out"), exit_code=0))
    assert reason and reason.startswith("unparseable output")
    assert len(values) == 16  # 4 jobs x 4 metrics
    assert all(v.status == Status.FAILED and v.value is None for v in values)
    assert all(v.labels["direct"] == "true" for v in values)


def test_nonzero_exit_is_a_failure_even_with_output() -> None:
    workload, cases = _case("syscall")
    step = Step(workload, cases[0], "runc", 1, False)
    values, reason = _values(step, Execution(stdout=golden("probe_syscall.out"), exit_code=137))
    assert reason == "the workload exited with code 137"
    assert {v.labels["op"] for v in values} == set(OPERATIONS)
