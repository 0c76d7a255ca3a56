"""Spec validation: every bad input is one line naming the bad value and what is accepted,
exit 2, and nothing run (no run directory is created)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import sandbench
from sandbench.spec import Overrides, SpecError, load_spec


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_profiles_load() -> None:
    quick = load_spec(None, "quick")
    # gVisor is in the default run (issue 11), left out with a note where it cannot run.
    assert quick.runtimes == ["native", "runc", "crun", "runsc"]
    assert quick.optional_runtimes == ["runsc"]
    assert quick.baseline_runtime == "native"
    assert set(quick.workloads) == {"start", "syscall", "io"}
    assert load_spec(None, "standard").rounds_of("start") > quick.rounds_of("start")


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "profile: quick\nruntimes: [native, runc]\n")
    spec = load_spec(path, overrides=Overrides(workloads=["syscall"], rounds=2, timeout_s=9))
    assert spec.runtimes == ["native", "runc"]
    assert list(spec.workloads) == ["syscall"]
    assert spec.rounds_of("syscall") == 2 and spec.timeout_s == 9
    # The profile's own parameters stay with the workload that was kept.
    assert spec.workloads["syscall"].params == {"iterations": 20000}


@pytest.mark.parametrize(("text", "message"), [
    ("rounds: 3\nbogus: 1\n", "unknown key 'bogus' in spec"),
    ("rounds: many\n", "rounds: 'many' is not valid"),
    ("resources: {cpus: 1, disks: 2}\n", "unknown key 'disks' in resources"),
    ("runtimes: [runc, runc]\n", "runtime 'runc' is listed twice"),
    ("runtimes: [runc]\nbaseline: native\n", "baseline 'native' is not among the runtimes"),
    ("profile: huge\n", "unknown profile 'huge'; known profiles: quick, standard"),
    ("- just\n- a list\n", "a spec is a mapping"),
    ("rounds: [\n", "not valid YAML"),
])
def test_bad_spec_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("[", r"\[")) as caught:
        load_spec(_write(tmp_path, text))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("args", "message"), [
    (["--runtimes", "native,kata"], "unknown runtime 'kata' for backend 'local'; known runtimes: native, runc, crun"),
    (["--workloads", "start,boot"], "unknown workload 'boot'; known workloads: start, syscall, io, footprint, density, net"),
    (["--backend", "mars"], "unknown backend 'mars'; known backends:"),
])
def test_bad_names_exit_2_and_run_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    result = sandbench("run", *args, "--out", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_bad_workload_parameter_exit_2(tmp_path: Path) -> None:
    path = _write(tmp_path, "profile: quick\nworkloads:\n  io:\n    params: {ioengine: magic}\n")
    result = sandbench("run", str(path), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "workloads.io.params" in result.stderr and "'magic'" in result.stderr
    assert "libaio" in result.stderr  # what would be accepted


@pytest.mark.parametrize(("params", "message"), [
    ("footprint: {params: {hold_s: 3}}",
     "workloads.footprint.params: hold_s 3 must exceed settle_s + window_s"),
    ("density: {params: {counts: [0]}}",
     "workloads.density.params.counts: counts [0] must be distinct whole numbers"),
])
def test_a_workload_parameter_error_names_the_file_like_any_other(
        tmp_path: Path, params: str, message: str) -> None:
    path = _write(tmp_path, f"workloads: {{{params}}}\n")
    result = sandbench("run", str(path), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"sandbench: {path}: {message}" + \
        result.stderr.strip().split(message, 1)[1]
    assert "spec: " not in result.stderr


def test_bad_flag_value_exit_2(tmp_path: Path) -> None:
    result = sandbench("run", "--rounds", "0", "--out", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "'0'" in result.stderr or "0 is not in the range" in result.stderr


def test_help_explains_each_command() -> None:
    for command in ([], ["run"], ["report"], ["doctor"], ["image", "build"], ["gc"]):
        result = sandbench(*command, "--help")
        assert result.returncode == 0 and "Usage:" in result.stdout
