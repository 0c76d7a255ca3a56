"""Writing a run: owners and their liveness, exclusive run directories, whole sample lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbench import owner, results
from sandbench.results import write as results_write
from sandbench.nightly.history import load_index
from sandbench.results import RunWriter, WriteFailed, load_meta


def _dead_owner() -> dict[str, object]:
    """The owner record of a process that has exited and been reaped."""
    child = subprocess.run([sys.executable, "-c", "import json, sandbench.owner as o; "
                            "print(json.dumps(o.me()))"], capture_output=True, text=True,
                           check=True)
    recorded: dict[str, object] = json.loads(child.stdout)
    return recorded


def test_this_process_is_alive_and_an_exited_one_is_not() -> None:
    assert owner.alive(owner.me()) is True
    assert owner.alive(_dead_owner()) is False
    assert owner.alive({**owner.me(), "boot_id": "another-boot"}) is False
    assert owner.alive({**owner.me(), "hostname": "another-host"}) is None
    assert owner.alive(None) is None


def test_owner_file_is_held_while_its_process_lives(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    lock = owner.OwnerLock(mine, {"run_id": "x"})
    assert owner.owned_by_live_process(mine)
    assert json.loads((mine / owner.OWNER_FILE).read_text())["pid"] == owner.me()["pid"]
    lock.release()
    lock.release()  # twice is fine
    assert not (mine / owner.OWNER_FILE).exists()

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    subprocess.run([sys.executable, "-c", "import sys, pathlib, sandbench.owner as o; "
                    "o.OwnerLock(pathlib.Path(sys.argv[1]))", str(theirs)], check=True)
    assert (theirs / owner.OWNER_FILE).exists()
    assert not owner.owned_by_live_process(theirs)  # it exited holding it: the lock is gone


def test_a_directory_without_owner_file_is_left_alone_while_fresh(tmp_path: Path) -> None:
    assert owner.owned_by_live_process(tmp_path)


def test_running_run_of_a_dead_owner_reads_as_crashed(tmp_path: Path) -> None:
    live = RunWriter(tmp_path / "live", {"run_id": "live"})
    assert load_meta(tmp_path / "live")["status"] == "running"
    RunWriter(tmp_path / "dead", {"run_id": "dead", "owner": _dead_owner()})
    meta = load_meta(tmp_path / "dead")
    assert meta["status"] == "crashed" and "is gone" in meta["status_reason"]
    live.finish("completed")
    assert load_meta(tmp_path / "live")["status"] == "completed"


def test_history_reads_a_running_run_again(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run", {"run_id": "run", "started_at": "2026-01-01T00:00:00Z"})
    assert [e.status for e in load_index(tmp_path)] == ["running"]
    # The owner dies without touching run.json (as SIGKILL would have it).
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    meta["owner"] = _dead_owner()
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    stat = (tmp_path / "run" / "run.json").stat()
    assert [e.status for e in load_index(tmp_path)] == ["crashed"]
    assert stat.st_size == (tmp_path / "run" / "run.json").stat().st_size
    writer.finish("completed")


def test_run_directories_are_made_exclusively(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["20260101T000000Z-aaaa", "20260101T000000Z-aaaa", "20260101T000000Z-bbbb"])
    monkeypatch.setattr(results_write, "new_run_id", lambda: next(ids))
    first, _ = results.create_run_dir(tmp_path)
    second, path = results.create_run_dir(tmp_path)  # the same id comes up: the next is taken
    assert (first, second) == ("20260101T000000Z-aaaa", "20260101T000000Z-bbbb")
    assert path == tmp_path / second and path.is_dir()


def test_a_run_directory_holds_one_run(tmp_path: Path) -> None:
    RunWriter(tmp_path / "run", {"run_id": "a"}).finish("completed")
    with pytest.raises(WriteFailed, match="already holds a run"):
        RunWriter(tmp_path / "run", {"run_id": "b"})


def test_finish_leaves_no_reserve_and_a_durable_run_json(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run", {"run_id": "a"})
    assert (tmp_path / "run" / results.RESERVE_FILE).exists()
    writer.sync()
    writer.finish("completed")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "outputs", "run.json", "samples.jsonl"]


def test_a_run_stopped_before_its_first_sample_is_taken_back_whole(tmp_path: Path) -> None:
    run_id, run_dir = results.create_run_dir(tmp_path / "out")
    results.RunWriter(run_dir, {"run_id": run_id})
    results.discard_unmeasured(run_dir, with_parent=True)
    assert not (tmp_path / "out").exists()
    # One sample measured: the run stays, whatever else it holds.
    run_id, run_dir = results.create_run_dir(tmp_path / "kept")
    writer = results.RunWriter(run_dir, {"run_id": run_id})
    (run_dir / "samples.jsonl").write_text("{}\n")
    results.discard_unmeasured(run_dir, with_parent=True)
    assert (run_dir / "run.json").is_file() and writer.meta["status"] == "running"
