"""What a kind of local driver is: the typed runtime entry it reads from runtimeclasses/local.yaml,
and how the local backend checks, makes and describes drivers of that kind.

kinds.py holds the registry (kind name -> Kind); a new kind of local sandbox is a driver module
with its RuntimeEntry subclass and Kind, and one entry there. The backend never asks which kind
a runtime is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from sandbench.backends.base import Finding, Gate, Progress
from sandbench.image import WorkloadImage
from sandbench.model import Case, Execution
from sandbench.spec import Resources


class RuntimeEntry(BaseModel):
    """One runtime of runtimeclasses/local.yaml; each kind's subclass adds the keys it reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    """Which driver runs it: a key of kinds.KINDS (process, oci, vm)."""

    description: str
    """One line saying what the runtime is, shown by ``--help``, doctor and run.json."""

    variant_of: str = ""
    """For a spec's variant only: the runtime it is a variant of; "" for a runtime of its own."""

    wrapper: tuple[str, ...] = ()
    """For a spec's variant only: a command prefix the runtime's binary (or the probe) runs
    under, e.g. ("/usr/local/bin/slow.sh",); empty for a runtime of its own."""

    def variant(self, of: str, wrapper: list[str], description: str) -> RuntimeEntry:
        """This runtime's entry for a variant of it named in a spec."""
        return self.model_copy(update={"variant_of": of, "wrapper": tuple(wrapper),
                                       "description": description})

    def variant_facts(self) -> dict[str, Any]:
        """What run.json says of a variant: what it is a variant of, under which wrapper."""
        if not self.variant_of:
            return {}
        return {"variant_of": self.variant_of, "wrapper": list(self.wrapper)}


@dataclass(frozen=True)
class Place:
    """Where a local run's sandboxes go: what every driver is made with."""

    #: The cache directory (the workload image, built runtimes, accelerator decisions).
    cache_dir: Path
    #: The run's own scratch directory (the sandboxes' files), or the parent of all runs' for gc.
    scratch: Path
    #: The spec's resources, given to every sandbox.
    resources: Resources


class Driver(Protocol):
    """Runs sandboxes of one runtime: the part of the lifecycle the backend delegates."""

    def execute(self, case: Case, sandbox_id: str, timeout_s: float,
                netns: str | None = None, gate: Gate | None = None) -> Execution:
        """Create, wait for, collect and delete one sandbox; never raises for a sandbox that
        fails. ``netns``: the network namespace (a name under /run/netns) the sandbox's
        network is, for a case with a peer; None: none but its own loopback (native: the
        host's). ``gate``: a sandbox of a burst, passed through it once its files are made and
        before the request is marked, so the burst's requests are not spread by its
        set-up."""

    def delete(self, sandbox_id: str) -> None:
        """Delete the sandbox if it is still there; safe to call twice."""

    def close(self) -> list[str]:
        """Release what the driver holds beyond its sandboxes (runsc's shared network
        namespace mount); returns what it released."""


EntryT = TypeVar("EntryT", bound=RuntimeEntry)
#: Whether a leftover sandbox (its id, and its bundle directory when known) belongs to a live run.
Owned = Callable[[str, Path | None], bool]


class Kind(ABC, Generic[EntryT]):
    """One kind of local driver, as runtimeclasses/local.yaml names it."""

    #: The entry this kind's runtimes have in local.yaml.
    entry_model: ClassVar[type[RuntimeEntry]]
    #: Whether prepare() makes the driver before the first sandbox: a VM's accelerator is
    #: decided by a test boot, with progress shown, not inside the first timed round.
    made_in_prepare: ClassVar[bool] = False

    @abstractmethod
    def check(self, name: str, entry: EntryT, place: Place) -> Finding:
        """Whether runtime ``name`` can run here (its binary, root, the host's cgroups)."""

    @abstractmethod
    def driver(self, name: str, entry: EntryT, place: Place, image: WorkloadImage,
               progress: Progress | None) -> Driver:
        """The driver of runtime ``name``, over the prepared workload image."""

    @abstractmethod
    def facts(self, entry: EntryT, place: Place, driver: Driver | None) -> dict[str, Any]:
        """What run.json records of a runtime of this kind (binary, version, accelerator);
        ``driver`` is the run's when one was made."""

    def sweep(self, name: str, entry: EntryT, place: Place, owned: Owned) -> tuple[list[str], set[str]]:
        """For gc: delete the runtime's leftover sandboxes that no live run owns. Returns what
        was deleted and the ids of the live ones kept."""
        return [], set()

    def sweep_scratch(self, scratch: Path) -> list[str]:
        """Kill what this kind left running in a run's scratch directory (a VM whose harness
        died); returns what it killed."""
        return []
