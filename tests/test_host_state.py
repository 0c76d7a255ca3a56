"""Host state at a run's start and end (pyperf-grade), the busy-host warning, which of
those facts may block a cross-run gate, and the parent cgroup a local run leaves (none)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbench.backends.local import cgroups
from sandbench.facts import host as hostfacts
from sandbench.nightly import envdiff


def test_host_state_reads_the_host_as_it_is() -> None:
    state = hostfacts.host_state()
    assert len(state["loadavg"]) == 3 and state["runnable"] >= 1
    assert state["affinity"] == sorted(os.sched_getaffinity(0))
    assert len(state["boot_id"]) == 36 and state["cpu_mhz"]
    assert state["git_dirty"] in (True, False, None)


def test_a_load_over_the_cores_is_a_warning() -> None:
    cores = os.cpu_count() or 1
    busy = hostfacts.busy_warning({"loadavg": [cores + 0.5, 1.0, 1.0]}, "end")
    assert busy is not None and "busy at the run's end" in busy
    assert hostfacts.busy_warning({"loadavg": [cores - 0.5, 1.0, 1.0]}, "start") is None


def test_stable_host_state_gates_and_a_reboot_only_informs() -> None:
    def meta(isolated: str, boot: str) -> dict[str, object]:
        return {"host_state": {"start": {"isolated": isolated, "affinity": [0, 1],
                                         "boot_id": boot, "git_dirty": False,
                                         "loadavg": [0.1, 0.1, 0.1]}}}
    found = {d.fact: d.gating for d in envdiff.differences(meta("", "a"), meta("1", "b"), [])}
    assert found == {"isolated CPUs": True, "boot": False}
    # A run written before host state was recorded does not block the gate.
    old = envdiff.differences({}, meta("1", "b"), [])
    assert old and not any(d.gating for d in old)


def test_the_runtimes_parent_cgroup_goes_only_when_empty(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in /sys/fs/cgroup of ordinary directories: rmdir refuses a non-empty one as it
    # refuses a cgroup with children, which is all remove_parent relies on.
    for hierarchy in ("memory", "pids", "unified"):
        (tmp_path / hierarchy / "sandbench").mkdir(parents=True)
    (tmp_path / "pids" / "sandbench" / "another-runs-container").mkdir()
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    removed = cgroups.remove_parent("sandbench")
    assert sorted(p.parent.name for p in removed) == ["memory", "unified"]
    assert (tmp_path / "pids" / "sandbench" / "another-runs-container").is_dir()
    assert cgroups.remove_parent("/sandbench") == []  # gone, or still busy: nothing to say
