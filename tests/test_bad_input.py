"""Bad input, through the real `sandbench` command: each case is one line on stderr naming the
bad value and what is accepted, exit 2, nothing run (no run directory made), no traceback.
Plus what is only warned about: damaged lines in samples.jsonl, an unreadable run in a
history."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import sandbench
from sandbench.backends.local.mounts import mountinfo_path, option_breaker
from sandbench.errors import BadInput
from sandbench.model import Sample, Status
from sandbench.results import RunWriter, load_run

#: Flags of a run that would be quick if it ran: it must not get that far.
QUICK = ["--runtimes", "native", "--workloads", "start", "--rounds", "1", "--warmup", "0",
         "--no-report"]
CAN_MOUNT = os.geteuid() == 0 and shutil.which("unshare") is not None


def sample(runtime: str, metric: str, value: float, round_: int,
           workload: str = "start") -> Sample:
    return Sample(run_id="r", backend="local", runtime=runtime, workload=workload,
                  metric=metric, unit="ms", value=value, round=round_, warmup=False,
                  status=Status.OK, time="2026-01-01T00:00:00+00:00")


def make_run(path: Path, metric: str = "request_to_exit", workload: str = "start") -> Path:
    writer = RunWriter(path, {"run_id": path.name, "backend": "local",
                              "started_at": "2026-01-01T00:00:00+00:00",
                              "spec": {"runtimes": ["native", "runc"], "workloads": {}},
                              "metrics": {metric: {"unit": "ms", "better": "lower"}}})
    writer.append(sample(runtime, metric, 10.0 + i + (5 if runtime == "runc" else 0), i,
                         workload)
                  for i in range(1, 9) for runtime in ("native", "runc"))
    writer.finish("completed")
    return path


def write(path: Path, data: str | bytes) -> str:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def with_samples(tmp: Path, data: bytes) -> str:
    run = make_run(tmp / "damaged")
    (run / "samples.jsonl").write_bytes(data)
    return str(run)


def with_meta(tmp: Path, data: bytes) -> str:
    run = make_run(tmp / "meta" / "broken")
    (run / "run.json").write_bytes(data)
    return str(run)


@dataclass(frozen=True)
class Case:
    #: The command's arguments, made in a temporary directory (RO: a read-only filesystem).
    args: Callable[[Path], list[str]]
    #: What stderr's first (and only) line says.
    message: str
    #: "" as is; "ro": a read-only filesystem at RO; "closed": stdout closed (`>&-`).
    wrap: str = ""


RO = "/tmp/sandbench-test-readonly"


def loop(tmp: Path) -> str:
    """Two symbolic links that point at each other."""
    os.symlink("loop-b", tmp / "loop-a")
    os.symlink("loop-a", tmp / "loop-b")
    return str(tmp / "loop-a")


def out(tmp: Path) -> list[str]:
    return ["--out", str(tmp / "runs")]


CASES: dict[str, Case] = {
    "--pull lukewarm": Case(lambda t: ["run", *QUICK, "--pull", "lukewarm", *out(t)],
                            "Invalid value for '--pull': 'lukewarm' is not one of 'warm', "
                            "'cold', 'both'"),
    "--pull cold on the local backend": Case(
        lambda t: ["run", *QUICK, "--pull", "cold", *out(t)],
        "kubernetes.pull 'cold' applies to the kubernetes backend only, not 'local'"),
    "--pull cold without the node's CRI": Case(
        lambda t: ["run", *QUICK, "--backend", "kubernetes", "--runtimes", "runc", "--pull",
                   "cold", *out(t)],
        "pull 'cold' removes the image from the node before a pod, which needs the node's CRI: "
        "give cri_endpoint (--cri-endpoint)"),
    "timeout 1e300": Case(lambda t: ["run", *QUICK, "--timeout", "1e300", *out(t)],
                          "Invalid value for '--timeout': 1e+300 is not in the range "
                          "0.1<=x<=86400.0"),
    "timeout nan": Case(lambda t: ["run", *QUICK, "--timeout", "nan", *out(t)],
                        "--timeout nan is not a number of seconds; give 0.1 to 86400"),
    "timeout_s .inf in a spec": Case(
        lambda t: ["run", write(t / "s.yaml", "timeout_s: .inf\n"), *QUICK, *out(t)],
        "timeout_s: inf is not valid: Input should be a finite number"),
    "timeout_s 1e300 in a spec": Case(
        lambda t: ["run", write(t / "s.yaml", "timeout_s: 1.0e+300\n"), *QUICK, *out(t)],
        "timeout_s: 1e+300 is not valid: Input should be less than or equal to 86400"),
    "a non-UTF-8 spec": Case(
        lambda t: ["run", write(t / "s.yaml", b"name: caf\xe9\n"), *QUICK, *out(t)],
        "is not UTF-8 text (byte 0xe9 at offset 9); save it as UTF-8"),
    "workloads as a list": Case(
        lambda t: ["run", write(t / "s.yaml", "workloads: [start]\n"), *out(t)],
        "workloads: ['start'] is not valid: a mapping of workload names to their settings"),
    "workloads as a list, with flags": Case(
        lambda t: ["run", write(t / "s.yaml", "workloads: [start]\n"), *QUICK, *out(t)],
        "workloads: ['start'] is not valid: a mapping of workload names to their settings"),
    "a workload's settings not a mapping": Case(
        lambda t: ["run", write(t / "s.yaml", "workloads: {start: 5}\n"), *QUICK, *out(t)],
        "workloads.start: 5 is not valid: a mapping of its settings"),
    "kubernetes not a mapping, with flags": Case(
        lambda t: ["run", write(t / "s.yaml", "kubernetes: [a]\n"), "--node", "n", *out(t)],
        "kubernetes: ['a'] is not valid: a mapping"),
    "a variant name with rich markup": Case(
        lambda t: ["run", write(t / "s.yaml", "runtimes: [native, 'n[/bold]x']\nvariants:\n"
                                              "  'n[/bold]x': {runtime: native}\n"
                                              "workloads: {start: {rounds: 1}}\n"), *out(t)],
        "variants: 'n[/bold]x' is not a valid variant name: use letters, digits, '-', '_' "
        "and '.'"),
    "--out is a file": Case(
        lambda t: ["run", *QUICK, "--out", write(t / "file", "x")],
        "is not a directory; give a directory (it is made if missing)"),
    "--out below a file": Case(
        lambda t: ["run", *QUICK, "--out", write(t / "file", "x") + "/runs"],
        "is not a directory; give a directory (it is made if missing)"),
    "--out on a read-only filesystem": Case(
        lambda t: ["run", *QUICK, "--out", f"{RO}/runs"],
        f"--out '{RO}/runs': cannot write in '{RO}': Read-only file system; give a writable "
        "place", "ro"),
    "--out in /proc": Case(
        lambda t: ["run", *QUICK, "--out", "/proc/sandbench-test"],
        "--out '/proc/sandbench-test': cannot write in '/proc'"),
    "--out a symlink loop": Case(
        lambda t: ["run", *QUICK, "--out", loop(t) + "/runs"],
        "is a symbolic link that leads nowhere (missing, or a loop)"),
    "--cache-dir a file": Case(
        lambda t: ["run", *QUICK, *out(t), "--cache-dir", write(t / "file", "x")],
        "is not a directory; give a directory (it is made if missing)"),
    "--cache-dir on a read-only filesystem": Case(
        lambda t: ["run", *QUICK, *out(t), "--cache-dir", f"{RO}/cache"],
        f"--cache-dir '{RO}/cache': cannot write in '{RO}': Read-only file system", "ro"),
    "a samples.jsonl line that is JSON but no object": Case(
        lambda t: ["report", with_samples(t, b"[1, 2]\n")],
        "line 1: [1, 2] is an array, not an object; each line of a samples.jsonl is one "
        "sample"),
    "a samples.jsonl line of the wrong types": Case(
        lambda t: ["export", with_samples(t, json.dumps(
            {"runtime": "runc", "workload": "start", "metric": "m", "status": "ok",
             "labels": "x=1"}).encode() + b"\n")],
        "line 1: labels is 'x=1', not an object or null"),
    "a binary samples.jsonl": Case(
        lambda t: ["compare", with_samples(t, bytes(range(256)) * 4), str(make_run(t / "b"))],
        "holds no sample: none of its 4 lines is JSON (is it a samples.jsonl?)"),
    "run.json a list": Case(
        lambda t: ["report", with_meta(t, b"[1, 2]\n")],
        "run.json' holds an array, not the object a run.json is"),
    "run.json not UTF-8": Case(
        lambda t: ["export", with_meta(t, b'{"format_version": 1, "name": "caf\xe9"}')],
        "run.json' is not JSON: it is not UTF-8 text"),
    "run.json's spec not an object": Case(
        lambda t: ["compare", with_meta(t, b'{"format_version": 1, "spec": 5}'),
                   str(make_run(t / "b"))],
        "run.json' is not sandbench run metadata: spec is 5: input should be a valid "),
    "report -o on a read-only filesystem": Case(
        lambda t: ["report", str(make_run(t / "a")), "-o", f"{RO}/report.html"],
        f"-o '{RO}/report.html': cannot write in '{RO}': Read-only file system", "ro"),
    "report -o a symlink loop": Case(
        lambda t: ["report", str(make_run(t / "a")), "-o", loop(t)],
        "is a symbolic link that leads nowhere (missing, or a loop)"),
    "run.json nested too deeply": Case(
        lambda t: ["report", with_meta(t, b"[" * 100000 + b"]" * 100000)],
        "run.json' is nested too deeply to be a run's"),
    "run.json's metrics table of numbers": Case(
        lambda t: ["report", with_meta(t, b'{"format_version": 1, "metrics": {"m": 5}}')],
        "run.json' is not sandbench run metadata: metrics.m is 5: input should be a "),
    "run.json's spec.runtimes a number": Case(
        lambda t: ["compare", with_meta(t, b'{"format_version": 1, "spec": {"runtimes": 5}}')],
        "run.json' is not sandbench run metadata: spec.runtimes is 5: input should be "),
    "a spec nested too deeply": Case(
        lambda t: ["run", write(t / "s.yaml", "a: " + "[" * 20000 + "]" * 20000), *out(t)],
        "nested too deeply to be a spec"),
    "resources.cpus: .inf": Case(
        lambda t: ["run", write(t / "s.yaml", "resources: {cpus: .inf}\n"), *QUICK, *out(t)],
        "resources.cpus: inf is not valid: Input should be a finite number"),
    "report -o a directory": Case(
        lambda t: ["report", str(make_run(t / "a")), "-o", str(t)],
        "is a directory; give a file name"),
    "compare --json on a read-only filesystem": Case(
        lambda t: ["compare", str(make_run(t / "a")), str(make_run(t / "b")), "--json",
                   f"{RO}/c.json"],
        f"--json '{RO}/c.json': cannot write in '{RO}': Read-only file system", "ro"),
    "compare --json a directory": Case(
        lambda t: ["compare", str(make_run(t / "a")), str(make_run(t / "b")), "--json", str(t)],
        "is a directory; give a file name"),
    "compare --junit in a missing directory": Case(
        lambda t: ["compare", str(make_run(t / "a")), str(make_run(t / "b")), "--junit",
                   str(t / "no" / "such.xml")],
        "is not a directory; give a file in an existing directory"),
    "export -o on a read-only filesystem": Case(
        lambda t: ["export", str(make_run(t / "a")), "-o", f"{RO}/e.json"],
        f"-o '{RO}/e.json': cannot write in '{RO}': Read-only file system", "ro"),
    "export -o a directory": Case(
        lambda t: ["export", str(make_run(t / "a")), "-o", str(t)],
        "is a directory; give a file name"),
    "stdout closed (export)": Case(
        lambda t: ["export", str(make_run(t / "a"))],
        "standard output is closed; redirect it", "closed"),
    "stdout closed (run)": Case(
        lambda t: ["run", *QUICK, *out(t)], "standard output is closed; redirect it", "closed"),
    "stdout closed (--help)": Case(
        lambda t: ["--help"], "standard output is closed; redirect it", "closed"),
    "rounds: true": Case(
        lambda t: ["run", write(t / "s.yaml", "rounds: true\n"), "--runtimes", "native",
                   *out(t)],
        "rounds: True is not valid: Input should be a valid integer"),
    "a workload's rounds: true": Case(
        lambda t: ["run", write(t / "s.yaml", "workloads: {start: {rounds: true}}\n"),
                   *out(t)],
        "workloads.start.rounds: True is not valid: Input should be a valid integer"),
    "a workload parameter true": Case(
        lambda t: ["run", write(t / "s.yaml", "workloads: {syscall: {params: "
                                              "{iterations: true}}}\n"), *out(t)],
        "s.yaml: workloads.syscall.params.iterations: True is not valid: Input should be a "
        "valid integer"),
    "rounds as a string": Case(
        lambda t: ["run", write(t / "s.yaml", "rounds: '5'\n"), *out(t)],
        "rounds: '5' is not valid: Input should be a valid integer"),
    "runtimes: []": Case(
        lambda t: ["run", write(t / "s.yaml", "runtimes: []\nworkloads: {start: {}}\n"),
                   *out(t)],
        "runtimes: [] names no runtime; name at least one, or leave the key out for the "
        "backend's defaults (native, runc, crun, runsc)"),
    "--runtimes ','": Case(
        lambda t: ["run", "--runtimes", ",", "--workloads", "start", *out(t)],
        "--runtimes ',' names nothing; give comma-separated names"),
    "--runtimes ''": Case(
        lambda t: ["run", "--runtimes", "", "--workloads", "start", *out(t)],
        "--runtimes '' names nothing; give comma-separated names"),
    "--workloads ' , '": Case(
        lambda t: ["run", "--runtimes", "native", "--workloads", " , ", *out(t)],
        "--workloads ' , ' names nothing; give comma-separated names, e.g. --workloads "
        "start,syscall"),
    "--rounds 100000000": Case(
        lambda t: ["run", *QUICK, "--rounds", "100000000", *out(t)],
        "Invalid value for '--rounds': 100000000 is not in the range 1<=x<=10000"),
    "--warmup 100000000": Case(
        lambda t: ["run", *QUICK, "--warmup", "100000000", *out(t)],
        "Invalid value for '--warmup': 100000000 is not in the range 0<=x<=10000"),
    "rounds: 100000000 in a spec": Case(
        lambda t: ["run", write(t / "s.yaml", "rounds: 100000000\n"), *out(t)],
        "rounds: 100000000 is not valid: Input should be less than or equal to 10000"),
    "--cache-dir with a comma": Case(
        lambda t: ["run", *QUICK, *out(t), "--cache-dir", str(t / "ca,che")],
        "has a comma in its path, which breaks overlay mount options; choose a path without "
        ", : \" \\ or control characters"),
    "--cache-dir with a colon": Case(
        lambda t: ["run", *QUICK, *out(t), "--cache-dir", str(t / "ca:che")],
        "has a colon in its path, which breaks overlay mount options"),
    "--cache-dir with a newline": Case(
        lambda t: ["run", *QUICK, *out(t), "--cache-dir", str(t / "ca\nche")],
        "has a control character in its path"),
    "$SANDBENCH_CACHE with a backslash (doctor)": Case(
        lambda t: ["doctor", "--runtimes", "native", "--cache-dir", str(t / "ca\\che")],
        "has a backslash in its path"),
    "compare of runs with nothing in common": Case(
        lambda t: ["compare", str(make_run(t / "a")),
                   str(make_run(t / "b", metric="ns_per_op", workload="syscall"))],
        "runs 'a' and 'b' have nothing to compare: no metric was measured in both (base: "
        "start request_to_exit; new: syscall ns_per_op)"),
    "compare of runs with no runtime in common": Case(
        lambda t: ["compare", str(make_run(t / "a")),
                   with_samples(t, b"".join(json.dumps({**sample("kata", "m", 1.0, 1).to_json()})
                                            .encode() + b"\n" for _ in range(3)))],
        "share no runtime"),
    "a flag click refuses": Case(
        lambda t: ["run", "--rounds", "many", *out(t)],
        "Invalid value for '--rounds': 'many' is not a valid integer range"),
    "an unknown flag": Case(
        lambda t: ["report", "--bogus"], "No such option '--bogus'"),
}


def run_wrapped(args: list[str], wrap: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    if not wrap:
        return sandbench(*args, cwd=tmp)
    command = shlex.join([sys.executable, "-m", "sandbench", *args])
    if wrap == "closed":
        shell = ["sh", "-c", f"{command} >&-"]
    else:
        # A read-only tmpfs in a mount namespace of its own: no one else sees it.
        shell = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 f"mkdir -p {RO} && mount -t tmpfs -o ro tmpfs {RO} && {command}"]
    return subprocess.run(shell, capture_output=True, text=True, timeout=600, cwd=tmp,
                          check=False, env={**os.environ, "COLUMNS": "250"})


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    if case.wrap == "ro" and not CAN_MOUNT:
        pytest.skip("needs root and unshare(1) for a read-only filesystem")
    result = run_wrapped(case.args(tmp_path), case.wrap, tmp_path)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, \
        result.stderr
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sandbench: ") and case.message in lines[0], lines[0]
    assert not (tmp_path / "runs").exists()  # nothing run


def damaged(tmp_path: Path) -> Path:
    """A run with a damaged line in the middle of samples.jsonl, and a torn last line."""
    run = make_run(tmp_path / "damaged")
    lines = (run / "samples.jsonl").read_bytes().splitlines(keepends=True)
    (run / "samples.jsonl").write_bytes(b"".join(lines[:3] + [b'{"runtime": "na\n']
                                                 + lines[3:]) + b'{"torn')
    return run


def test_a_damaged_line_is_counted_and_a_torn_last_line_is_not(tmp_path: Path) -> None:
    run = load_run(damaged(tmp_path))
    assert run.damaged == [4] and len(run.samples) == 16
    assert run.damage_warning() == ("samples.jsonl of run damaged: 1 damaged line(s) left out "
                                    "(line 4): not JSON, so the samples they held are missing")


@pytest.mark.parametrize("command", [["report"], ["export"], ["compare", "BASE"]])
def test_damaged_lines_are_warned_about(tmp_path: Path, command: list[str]) -> None:
    run = damaged(tmp_path)
    args = [str(make_run(tmp_path / "base")) if a == "BASE" else a for a in command]
    result = sandbench(*args, str(run), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "warning: samples.jsonl of run damaged: 1 damaged line(s) left out (line 4): not "
        "JSON, so the samples they held are missing")
    if command == ["report"]:
        html = (run / "report.html").read_text()
        assert "1 damaged line(s) left out (line 4)" in html


def test_history_flags_an_unreadable_run_and_lists_the_others(tmp_path: Path) -> None:
    make_run(tmp_path / "good")
    shutil.move(with_meta(tmp_path, b"[1, 2]\n"), tmp_path / "broken")
    (tmp_path / "meta").rmdir()
    result = sandbench("history", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"skipped broken: '{tmp_path}/broken/run.json' holds an array, not the object a "
        f"run.json is"]
    assert "good" in result.stdout and "1 runs in" in result.stdout


def test_history_of_a_read_only_directory_still_lists(tmp_path: Path) -> None:
    if not CAN_MOUNT:
        pytest.skip("needs root and unshare(1) for a read-only filesystem")
    make_run(tmp_path / "good")
    command = shlex.join([sys.executable, "-m", "sandbench", "history", str(tmp_path)])
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"mount --bind -o ro {shlex.quote(str(tmp_path))} {shlex.quote(str(tmp_path))} && "
         f"{command}"], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert "1 runs in" in result.stdout


def test_a_closed_pipe_is_no_traceback(tmp_path: Path) -> None:
    run = make_run(tmp_path / "a")
    result = subprocess.run(
        ["sh", "-c", f"{shlex.join([sys.executable, '-m', 'sandbench', 'export', str(run)])}"
                     " | head -c 1"], capture_output=True, text=True, timeout=600, check=False)
    assert result.stdout == "{" and result.stderr == ""


@pytest.mark.parametrize("args", [["examples", "cronjob"], ["export", "RUN"]])
def test_a_full_stdout_is_one_line(tmp_path: Path, args: list[str]) -> None:
    run = make_run(tmp_path / "a")
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "sandbench", *(str(run) if a == "RUN" else a for a in args)],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=600, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "sandbench: cannot write to standard output: No space left on device")


@pytest.mark.parametrize(("field", "path"), [
    ("/tmp/a\\040b", "/tmp/a b"),
    ("/tmp/tab\\011newline\\012back\\134slash", "/tmp/tab\tnewline\nback\\slash"),
    ("/tmp/café/ß", "/tmp/café/ß"),  # UTF-8 as is: unicode_escape read it as Latin-1
])
def test_mountinfo_paths_are_read_back(field: str, path: str) -> None:
    assert mountinfo_path(field) == path


@pytest.mark.parametrize(("path", "breaker"), [
    ("/cache/a,b", "a comma"), ("/cache/a:b", "a colon"), ('/cache/a"b', "a double quote"),
    ("/cache/a\\b", "a backslash"), ("/cache/a\tb", "a control character"),
    ("/cache/café b=c", None),
])
def test_what_breaks_overlay_options(path: str, breaker: str | None) -> None:
    assert option_breaker(Path(path)) == breaker


def test_an_out_file_is_replaced_whole_never_written_in_halves(tmp_path: Path) -> None:
    # verdict.json, --json and --junit go beside their place and are renamed into it: a
    # signal mid-write leaves the old file or the new one, and no temporary file stays.
    from sandbench.cli.common import write_out_file
    out = tmp_path / "verdict.json"
    out.write_text("old\n")
    out.chmod(0o640)
    write_out_file(out, "new\n", "--record")
    assert out.read_text() == "new\n" and (out.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verdict.json"]
    write_out_file(Path("/dev/null"), "into a device, in place\n", "--json")
    assert Path("/dev/null").is_char_device()


def test_an_out_file_through_a_link_replaces_the_file_it_leads_to(tmp_path: Path) -> None:
    # The link stays a link: --json latest.json -> runs/7/verdict.json updates the run's file.
    from sandbench.cli.common import write_out_file
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "verdict.json"
    target.write_text("old\n")
    (tmp_path / "latest.json").symlink_to("runs/verdict.json")
    write_out_file(tmp_path / "latest.json", "new\n", "--json")
    assert (tmp_path / "latest.json").is_symlink() and target.read_text() == "new\n"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["verdict.json"]


def test_an_out_file_that_fails_at_close_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A full disk (or a file size limit) fails when the buffered text reaches the disk.
    import errno
    from sandbench.cli import common

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(common.os, "fsync", full)
    out = tmp_path / "verdict.json"
    out.write_text("old\n")
    with pytest.raises(BadInput, match="No space left"):
        common.write_out_file(out, "new\n", "--record")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verdict.json"]
    assert out.read_text() == "old\n"


def test_an_out_file_with_a_long_name_is_written(tmp_path: Path) -> None:
    # The temporary name must fit in 255 bytes too, whatever the file's own name.
    from sandbench.cli.common import write_out_file
    out = tmp_path / ("v" * 250 + ".json")
    write_out_file(out, "new\n", "--json")
    assert out.read_text() == "new\n" and len(list(tmp_path.iterdir())) == 1


def test_json_to_the_commands_own_stdout_in_a_file_follows_the_table(tmp_path: Path) -> None:
    # `--json /dev/stdout > out.txt`: the file gets the table and then the JSON; /dev/stdout
    # is neither replaced (as root /dev is writable) nor refused after the work.
    from test_compare import lognormal, samples, write_run
    base = write_run(tmp_path / "base", samples("runc", lognormal(5, 0.05, 8, 1)))
    new = write_run(tmp_path / "new", samples("runc", lognormal(5, 0.05, 8, 2)))
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        done = subprocess.run([sys.executable, "-m", "sandbench", "compare", str(base.dir),
                               str(new.dir), "--json", "/proc/self/fd/1"], stdout=stdout,
                              stderr=subprocess.PIPE, text=True, check=False)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "base -> new" in text and text.rstrip().endswith("}")
    assert json.loads(text[text.index("{\n"):])["format"] == "sandbench-compare"
