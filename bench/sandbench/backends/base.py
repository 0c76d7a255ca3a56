"""What a backend is: a place sandboxes run, with runtimes known by name.

One lifecycle for every sandbox: create, wait, collect, delete. ``execute`` does all four and
deletes on every path out; ``cleanup`` deletes whatever is still there (Ctrl-C, a crash in the
harness), and ``gc`` finds what an earlier run left, by its labels or names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from sandbench.errors import BadInput, RunFailed
from sandbench.model import Burst, Case, Execution, Metric

Progress = Callable[[str], None]
#: Called by a sandbox of a burst once its files are ready, just before the runtime is
#: invoked: it returns when the sandbox's turn comes (every sandbox of the burst ready, then
#: its scheduled arrival), True to go on, False when the burst was stopped meanwhile.
Gate = Callable[[], bool]
#: What a sandbox of a stopped burst records that never got to its runtime.
NOT_STARTED = "not started: the burst was stopped"


@dataclass(frozen=True)
class Finding:
    """One thing checked about where sandboxes run, and if it is not ok why and how to fix it:
    a runtime's availability (Backend.check, subject the runtime's name) or anything else
    doctor reports (the cluster, the image, permissions)."""

    #: What was checked: a runtime's name, or "cluster", "workload image", ...
    subject: str
    ok: bool
    #: One line: what was found.
    detail: str
    #: A command or step that would make it ok; None when it is ok or nothing known helps.
    fix: str | None = None
    #: Facts learnt on the way (a runtime's binary, its handler), kept in run.json.
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """For a runtime's check: whether sandboxes can run on it here."""
        return self.ok


class BackendError(RunFailed):
    """A backend that cannot run what was asked; the message is one line."""


class BackendInputError(BackendError, BadInput):
    """A backend asked for something that cannot be (an unknown backend, a variant with a
    runtime's name, a runtime declared twice): bad input, nothing is run."""

    exit_code = 2


class Backend(ABC):
    name: ClassVar[str]
    #: Metrics the backend measures itself (see Execution.extra), beside the workloads'.
    extra_metrics: ClassVar[tuple[Metric, ...]] = ()

    @abstractmethod
    def known_runtimes(self) -> dict[str, str]:
        """Runtime names this backend can run, each with a one-line description."""

    @abstractmethod
    def check(self, runtime: str) -> Finding:
        """Whether ``runtime`` works here; cheap enough to call before every run."""

    def prepare(self, runtimes: list[str], progress: Progress | None = None) -> None:
        """Whatever must exist before the first sandbox of ``runtimes`` (an image, a
        namespace); called once per run."""

    @abstractmethod
    def execute(self, runtime: str, case: Case, sandbox_id: str, timeout_s: float) -> Execution:
        """Run one fresh sandbox to completion and delete it; never raises for a sandbox that
        fails (that is an Execution with ``error`` set)."""

    #: Whether execute_burst can start sandboxes together here (a spec's concurrency above 1).
    concurrent: ClassVar[bool] = False

    def execute_burst(self, runtime: str, case: Case, sandbox_ids: list[str], timeout_s: float,
                      offsets_s: list[float]) -> Burst:
        """Run one fresh sandbox of ``case`` per id, the i-th requested ``offsets_s[i]``
        seconds after the burst begins, each through the whole lifecycle ``execute`` runs;
        every one is deleted on every path out. Only where ``concurrent`` is set."""
        raise BackendInputError(f"backend {self.name!r} starts one sandbox at a time; "
                                "concurrency above 1 runs on local or kubernetes")

    def burst_width(self) -> int:
        """How many sandboxes each id of a burst starts, once prepared: 1, or the number of
        nodes a cluster's fan-out runs every burst on (one pod per id per node)."""
        return 1

    def peer_paths(self, runtimes: list[str]) -> tuple[str, ...]:
        """The network paths this backend runs a case with a peer over, by name (each a
        sample's ``path`` label), once prepared for ``runtimes``: every such case runs once
        per path. Empty: one path with no name (a local sandbox's veth)."""
        return ()

    @abstractmethod
    def cleanup(self) -> list[str]:
        """Delete every sandbox this backend object created that is still there; safe to call
        twice. Returns what it deleted."""

    @abstractmethod
    def gc(self) -> list[str]:
        """Delete what earlier sandbench runs left behind; returns what it deleted. What it
        found and left alone (a run still going) is in ``gc_kept``, each with why."""

    #: What the last gc found and did not delete, with why.
    gc_kept: list[str] = []

    @abstractmethod
    def environment(self) -> dict[str, Any]:
        """Facts about where sandboxes run, stored in run.json."""

    def add_variant(self, name: str, runtime: str, wrapper: list[str], description: str) -> None:
        """Know ``name`` as a variant of ``runtime`` whose binary runs under ``wrapper`` (a
        spec's ``variants``, for same-run A/B); raises BackendInputError where that cannot be."""
        raise BackendInputError(f"backend {self.name!r} cannot run runtime variants (asked for "
                           f"{name!r}); list two of its runtimes instead")

    def apply_fixes(self) -> list[str]:
        """Apply the fixes to this backend's host known to be safe (doctor --fix); returns
        what was done."""
        return []

    def interference(self) -> list[str]:
        """What was done to this backend's sandboxes from outside the run (deleted under it),
        one line each; a run with any is not valid. Asked before cleanup."""
        return []

    def after_last_step(self) -> list[str]:
        """Called once after the last step of a run that completed, before cleanup, for what
        must be measured again with the run's place still there (a cluster backend's clock
        offsets). Returns warnings for run.json; never raises for what it measures."""
        return []

    def final_facts(self) -> dict[str, Any]:
        """Facts only known once the run is over (measured clock offsets, notes); merged
        into run.json's environment at the end."""
        return {}
