"""What a workload is: the cases it runs in a sandbox and the parser of their output.

A workload knows nothing of runtimes: it names a command for the probe (the entrypoint of the
one workload image) and turns what the sandbox printed into values.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from sandbench.errors import SandboxFailed
from sandbench.image.inputs import PROBE_IN_IMAGE
from sandbench.model import Burst, Case, Execution, Metric, Value

#: Where the probe lives in the workload image (and in every sandbox made from it).
PROBE = PROBE_IN_IMAGE


class ParseError(SandboxFailed):
    """A sandbox's output that does not hold what the workload expects; the message says why."""


class Params(BaseModel):
    # strict, as the spec is: `iterations: true` is not 1.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Workload(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    params_model: ClassVar[type[Params]]
    metrics: ClassVar[tuple[Metric, ...]]
    #: The metrics the terminal summary shows unless asked for all (``--verbose``); empty:
    #: all of them. The report always has every metric.
    headline: ClassVar[tuple[str, ...]] = ()
    #: What the headline rows are, in a few words, for the summary table's caption.
    headline_note: ClassVar[str] = ""
    #: Whether its sandboxes may start together (a spec's ``concurrency`` above 1): only a
    #: workload whose measurement means something under contention, and whose case is one
    #: sandbox on its own (no peer, none held together).
    concurrent: ClassVar[bool] = False
    #: Metrics of a whole burst of its sandboxes (concurrency runs), beside each sandbox's.
    burst_metrics: ClassVar[tuple[Metric, ...]] = ()
    #: Whether the workload times a sandbox's start, of which an image pull is a part on a
    #: backend that pulls: its rounds then run once per image state asked for (Spec.pull_states).
    times_start: ClassVar[bool] = False

    def params(self, raw: dict[str, Any]) -> Params:
        return self.params_model.model_validate(raw)

    @abstractmethod
    def cases(self, params: Params) -> list[Case]:
        """The sandboxes one round of this workload needs, one per case."""

    @abstractmethod
    def parse(self, case: Case, execution: Execution) -> list[Value]:
        """Values from a finished sandbox; raises ParseError when its output is unusable."""

    def unmeasured(self, case: Case, execution: Execution) -> list[tuple[Metric, dict[str, str]]]:
        """The values a failed sandbox did not yield, each to be recorded as a failure."""
        return case.expected

    def burst(self, burst: Burst, values: list[list[Value]]) -> list[Value]:
        """The burst's own values (``burst_metrics``), from the backend's burst and each
        sandbox's values (as recorded: failed ones with their reasons), in schedule order."""
        return []


def probe_header(stdout: str, mode: str) -> tuple[dict[str, Any], str]:
    """The probe's first JSON line and whatever follows it.

    The probe prints one JSON line first in every mode (with its CLOCK_REALTIME stamp); a
    sandbox may print other lines before it (a VM's console), so the first line that parses
    as this mode's header is taken.
    """
    lines = stdout.splitlines(keepends=True)
    for index, line in enumerate(lines):
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            header = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(header, dict) and header.get("probe") == mode:
            return header, "".join(lines[index + 1:])
    if not stdout.strip():
        raise ParseError("the sandbox printed nothing")
    raise ParseError(f"no probe {mode!r} line in the output")


def realtime_stamp(header: dict[str, Any]) -> int:
    stamp = header.get("realtime_ns")
    if not isinstance(stamp, int) or stamp <= 0:
        raise ParseError(f"probe stamp realtime_ns is {stamp!r}, not a positive integer")
    return stamp
