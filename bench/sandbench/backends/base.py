"""What a backend is: a place sandboxes run, with runtimes known by name.

One lifecycle for every sandbox: create, wait, collect, delete. ``execute`` does all four and
deletes on every path out; ``cleanup`` deletes whatever is still there (Ctrl-C, a crash in the
harness), and ``gc`` finds what an earlier run left, by its labels or names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from sandbench.model import Case, Execution

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Availability:
    """Whether a runtime can be used here, and if not why and how to fix it."""

    runtime: str
    usable: bool
    detail: str
    fix: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


class BackendError(Exception):
    """A backend that cannot run what was asked; the message is one line."""


class Backend(ABC):
    name: ClassVar[str]

    @abstractmethod
    def known_runtimes(self) -> dict[str, str]:
        """Runtime names this backend can run, each with a one-line description."""

    @abstractmethod
    def check(self, runtime: str) -> Availability:
        """Whether ``runtime`` works here; cheap enough to call before every run."""

    def prepare(self, progress: Progress | None = None) -> None:
        """Whatever must exist before the first sandbox (an image); called once per run."""

    @abstractmethod
    def execute(self, runtime: str, case: Case, sandbox_id: str, timeout_s: float) -> Execution:
        """Run one fresh sandbox to completion and delete it; never raises for a sandbox that
        fails (that is an Execution with ``error`` set)."""

    @abstractmethod
    def cleanup(self) -> list[str]:
        """Delete every sandbox this backend object created that is still there; safe to call
        twice. Returns what it deleted."""

    @abstractmethod
    def gc(self) -> list[str]:
        """Delete what earlier sandbench runs left behind; returns what it deleted."""

    @abstractmethod
    def environment(self) -> dict[str, Any]:
        """Facts about where sandboxes run, stored in run.json."""
