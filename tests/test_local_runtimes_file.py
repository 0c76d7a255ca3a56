"""runtimeclasses/local.yaml read into typed entries, one per kind of local driver: the shipped
file loads, and a bad entry is one line naming the bad value and what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbench.backends.local import KINDS, runtime_table
from sandbench.backends.local.kinds import RuntimeClassError
from sandbench.backends.local.oci import OciEntry
from sandbench.backends.local.qemu import VmEntry
from sandbench.errors import BadInput
from sandbench.model import Case
from sandbench.backends.local.native import NativeRuntime, _host_path


def test_the_shipped_file_loads_every_runtime_by_its_kind() -> None:
    table = runtime_table()
    assert {entry.kind for entry in table.values()} == set(KINDS)
    for entry in table.values():
        assert isinstance(entry, KINDS[entry.kind].entry_model)
    runsc = table["runsc"]
    assert isinstance(runsc, OciEntry)
    assert runsc.flags == ("--platform=systrap", "--network=none")
    assert runsc.labels == {"platform": "systrap"}
    qemu = table["qemu"]
    assert isinstance(qemu, VmEntry) and qemu.accel == "auto"


def table_of(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "local.yaml"
    path.write_text(text)
    return path


BAD = {
    "an unknown kind": (
        "runtimes:\n  runc:\n    kind: ocii\n    binary: runc\n    description: d\n",
        "runtimes.runc.kind: 'ocii' is not a kind of local driver; known kinds: process, oci, vm"),
    "no kind": (
        "runtimes:\n  runc:\n    binary: runc\n    description: d\n",
        "runtimes.runc.kind: None is not a kind of local driver; known kinds: process, oci, vm"),
    "an accelerator that is none": (
        "runtimes:\n  q:\n    kind: vm\n    binary: qemu\n    description: d\n    accel: kvmm\n",
        "runtimes.q.accel: 'kvmm' is not valid: Input should be 'auto', 'kvm' or 'tcg'"),
    "a key of another kind": (
        "runtimes:\n  n:\n    kind: process\n    description: d\n    binary: x\n",
        "unknown key 'binary' in runtimes.n"),
    "an oci runtime without its binary": (
        "runtimes:\n  r:\n    kind: oci\n    description: d\n",
        "runtimes.r.binary is missing"),
    "runtimes as a list": (
        "runtimes: [runc, crun]\n",
        "runtimes: ['runc', 'crun'] is not valid"),
    "not YAML": ("runtimes: {runc: [\n", "not valid YAML: "),
}


@pytest.mark.parametrize("text,message", BAD.values(), ids=BAD.keys())
def test_a_bad_entry_is_one_line_naming_the_value(tmp_path: Path, text: str,
                                                  message: str) -> None:
    with pytest.raises(RuntimeClassError) as caught:
        runtime_table(table_of(tmp_path, text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, BadInput) and caught.value.exit_code == 2


def test_native_maps_sandbox_paths_by_what_every_sandbox_has(tmp_path: Path) -> None:
    """The image's directory, the volume and the case's own rootfs directories: no path of a
    workload is the native driver's own."""
    native = NativeRuntime("native", tmp_path / "image", tmp_path / "scratch")
    case = Case("w", "c", ["/sandbench/probe", "x", "/var/tmp/w", "/data/f", "/datab"],
                rootfs_dirs=("/var/tmp/w",))
    sandbox = tmp_path / "scratch" / "s"
    sandbox.mkdir(parents=True)
    paths = native._host_paths(case, sandbox)
    assert [_host_path(arg, paths) for arg in case.argv] == [
        str(tmp_path / "image" / "sandbench" / "probe"), "x",
        str(sandbox / "rootfs" / "var" / "tmp" / "w"), str(sandbox / "volume" / "f"), "/datab"]
    assert (sandbox / "rootfs" / "var" / "tmp" / "w").is_dir() and (sandbox / "volume").is_dir()
