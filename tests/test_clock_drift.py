"""The clock offset measured at a run's start and end: when a move counts as drift, on
hand-computed numbers."""

from __future__ import annotations

from sandbench.backends.kubernetes.clock import DRIFT_FLOOR_NS, Drift, Exchange, best_offset
from sandbench.model import Clock, ClockOffset, MissingOffset

MS = 1_000_000


def offset(offset_ns: int, uncertainty_ns: int) -> ClockOffset:
    return ClockOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, offset_ns, uncertainty_ns,
                       "exchange")


def test_the_smallest_round_trip_gives_the_offset() -> None:
    # Round trips 10 ms and 2 ms: the second wins; midpoint 1001 ms - sandbox 1000 ms.
    found = best_offset([Exchange(0, 10 * MS, 3 * MS), Exchange(1000 * MS, 1002 * MS, 1000 * MS)])
    assert (found.offset_ns, found.uncertainty_ns) == (1 * MS, 1 * MS)


def test_a_move_within_both_uncertainties_is_not_drift() -> None:
    drift = Drift("runc", offset(5 * MS, 1 * MS), offset(int(6.5 * MS), 1 * MS),
                  ("create_to_workload",))
    assert drift.drift_ns == int(1.5 * MS) and drift.limit_ns == 2 * MS
    assert drift.drifted is False and drift.warning() is None


def test_a_move_past_both_uncertainties_is_drift_and_said() -> None:
    drift = Drift("kata-qemu", offset(5 * MS, 1 * MS), offset(2 * MS, 1 * MS),
                  ("create_to_workload",))
    assert drift.drift_ns == -3 * MS and drift.drifted is True
    warning = drift.warning() or ""
    assert warning.startswith("kata-qemu: the clock offset moved -3.000 ms")
    assert "more than the 2.000 ms" in warning and "create_to_workload" in warning
    record = drift.record()
    assert record["start_offset_ns"] == 5 * MS and record["end_offset_ns"] == 2 * MS
    assert record["drift_ns"] == -3 * MS and record["drifted"] is True


def test_tiny_uncertainties_are_held_to_the_floor() -> None:
    drift = Drift("runc", offset(0, 10_000), offset(DRIFT_FLOOR_NS, 10_000), ("x",))
    assert drift.limit_ns == DRIFT_FLOOR_NS and drift.drifted is False
    assert Drift("runc", offset(0, 10_000), offset(DRIFT_FLOOR_NS + 1, 10_000), ("x",)).drifted


def test_an_end_that_could_not_be_measured_leaves_the_drift_unknown() -> None:
    end = MissingOffset(Clock.SANDBOX_REALTIME, Clock.HOST_REALTIME, "port-forward refused")
    drift = Drift("runc", offset(5 * MS, 1 * MS), end, ("create_to_workload",))
    assert drift.drifted is None and drift.record()["end_error"] == "port-forward refused"
    assert "unknown" in (drift.warning() or "") and "port-forward refused" in (drift.warning() or "")
