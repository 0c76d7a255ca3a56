"""A run's start phases as OpenTelemetry traces, in OTLP/JSON (an ExportTraceServiceRequest, as
an OTLP/HTTP receiver takes it at /v1/traces, or a collector's file receiver reads it).

One trace per sandbox of the start workload (warmups included, marked): one resourceSpans whose
resource names the run, runtime, round and sandbox, and one span per phase. Ids are derived
from the run id and the sandbox (its output file, or runtime and round), so exporting a run
twice gives the same traces.

Timing. A span lasts exactly its phase's value, read on the phase's own clock; the clock, and
the offset that brought one clock onto another, go in the span's attributes
(``sandbench.clock``, ``.clock.start``, ``.clock.end``, ``.clock.offset_ns``...). The marks
that bound phases are not kept in a run, so spans are placed on the wall-clock timeline from
the phases themselves: phases that share a mark (request, workload, exit...) meet at it, and
the sandbox is anchored at the probe's own stamp of its first instruction (brought onto the
host clock by the phase's recorded offset) or, failing that, at the time its samples were
recorded (``sandbench.placement`` says which). A failed phase is a zero-length span with error
status and the reason, at its start mark when that is known.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sandbench import __version__
from sandbench.nightly.openmetrics import unix_seconds
from sandbench.results import Run
from sandbench.workloads.base import ParseError, probe_header, realtime_stamp
from sandbench.workloads.start import PHASES, Phase

#: OTLP's span kind INTERNAL and status codes, as integers (OTLP/JSON writes enums so).
KIND_INTERNAL = 1
STATUS_OK, STATUS_ERROR = 1, 2
BY_METRIC: dict[str, Phase] = {phase.metric.name: phase for phase in PHASES}
#: A clock as a sample records it: "host_monotonic", or two clocks and the offset between them.
CLOCK = re.compile(r"(?P<start>\w+)->(?P<end>\w+) \(offset (?P<offset>-?\d+)±(?P<unc>\d+) ns,"
                   r" (?P<method>.*)\)$")


@dataclass(frozen=True)
class Placed:
    """One phase of one sandbox on the timeline, in Unix nanoseconds."""

    row: Any
    start_ns: int
    end_ns: int
    placement: str


def _text(value: object) -> str | None:
    """A text column's value; None where pandas read a JSON null (as NaN)."""
    return value if isinstance(value, str) and value else None


def clock_attributes(clock: object) -> dict[str, str | int]:
    clock = _text(clock)
    if clock is None:
        return {}
    match = CLOCK.match(clock)
    if match is None:
        return {"sandbench.clock": clock, "sandbench.clock.start": clock,
                "sandbench.clock.end": clock}
    return {"sandbench.clock": clock, "sandbench.clock.start": match["start"],
            "sandbench.clock.end": match["end"],
            "sandbench.clock.offset_ns": int(match["offset"]),
            "sandbench.clock.offset_uncertainty_ns": int(match["unc"]),
            "sandbench.clock.offset_method": match["method"]}


def _anchor(run: Run, rows: pd.DataFrame) -> tuple[dict[str, int], str] | None:
    """The mark ``workload`` on the host's wall clock: the probe's stamp plus the offset the
    phase ending there was measured with; None when there is no stamp or no such offset."""
    outputs = [str(o) for o in rows["output"].dropna().unique()]
    related = [clock_attributes(c) for c, m in zip(rows["clock"], rows["metric"])
               if m in BY_METRIC and BY_METRIC[m].end == "workload"]
    offset = next((int(a["sandbench.clock.offset_ns"]) for a in related
                   if "sandbench.clock.offset_ns" in a), None)
    if not outputs or offset is None:
        return None
    try:
        header, _ = probe_header((run.dir / outputs[0]).read_text(errors="replace"), "start")
        stamp = realtime_stamp(header)
    except (OSError, ParseError):
        return None
    return {"workload": stamp + offset}, "the probe's stamp of its first instruction"


def _propagate(marks: dict[str, int], ok: list[tuple[Phase, int]]) -> None:
    """Fill in the marks the known ones and the phases between them give."""
    changed = True
    while changed:
        changed = False
        for phase, ns in ok:
            if phase.start in marks and phase.end not in marks:
                marks[phase.end] = marks[phase.start] + ns
                changed = True
            elif phase.end in marks and phase.start not in marks:
                marks[phase.start] = marks[phase.end] - ns
                changed = True


def place(run: Run, rows: pd.DataFrame) -> list[Placed]:
    """Every phase sample of one sandbox on the timeline (see the module docstring)."""
    rows = rows[rows["metric"].isin(list(BY_METRIC))]
    ok_rows = rows[(rows["status"] == "ok") & rows["value"].notna()]
    ok = [(BY_METRIC[str(m)], round(float(v) * 1e6)) for m, v in
          zip(ok_rows["metric"], ok_rows["value"])]
    recorded = round(max(unix_seconds(str(t)) for t in rows["time"]) * 1e9)
    anchored = _anchor(run, rows)
    marks, placement = anchored if anchored else ({}, "the time its samples were recorded")
    _propagate(marks, ok)
    for phase, _ in ok:  # phases no anchor reaches: the last of them at the recording time
        if phase.start not in marks:
            island = {phase.start: 0}
            _propagate(island, ok)
            shift = recorded - max(island.values())
            marks.update({k: v + shift for k, v in island.items() if k not in marks})
    placed = []
    for row in rows.itertuples(index=False):
        start = marks.get(BY_METRIC[str(row.metric)].start, recorded)
        length = round(float(row.value) * 1e6) if row.status == "ok" else 0
        placed.append(Placed(row, start, start + length, placement))
    return placed


def _id(*parts: str, size: int) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:size * 2]


def _value(value: str | int | float | bool) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a string in OTLP/JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": value}


def _attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in values.items() if v is not None]


def _span(trace_id: str, placed: Placed) -> dict[str, Any]:
    row = placed.row
    own = row.labels if isinstance(row.labels, dict) else {}
    labels = {f"sandbench.label.{k}": str(v) for k, v in sorted(own.items())}
    attributes: dict[str, Any] = {**clock_attributes(row.clock), "sandbench.metric": str(row.metric),
                  "sandbench.placement": placed.placement, **labels}
    status: dict[str, Any] = {"code": STATUS_OK}
    if row.status == "ok":
        attributes["sandbench.value_ms"] = float(row.value)
    else:
        attributes["sandbench.status"] = str(row.status)
        status = {"code": STATUS_ERROR, "message": _text(row.reason) or str(row.status)}
    return {"traceId": trace_id, "spanId": _id(trace_id, str(row.metric), size=8),
            "name": str(row.metric), "kind": KIND_INTERNAL,
            "startTimeUnixNano": str(placed.start_ns), "endTimeUnixNano": str(placed.end_ns),
            "attributes": _attributes(attributes), "status": status}


def sandboxes(run: Run) -> Iterator[tuple[tuple[str, int, bool, str], pd.DataFrame]]:
    """The start workload's samples, one group per sandbox."""
    rows = run.samples[run.samples["workload"] == "start"].copy()
    rows["sandbox"] = rows["output"].fillna("")
    for key, group in rows.groupby(["runtime", "round", "warmup", "sandbox"], sort=True):
        runtime, round_, warmup, sandbox = key
        yield (str(runtime), int(round_), bool(warmup), str(sandbox)), group


def to_otlp(run: Run) -> dict[str, Any]:
    """The run's start phases as an ExportTraceServiceRequest in OTLP/JSON."""
    resource_spans = []
    for (runtime, round_, warmup, sandbox), rows in sandboxes(run):
        trace_id = _id(run.run_id, runtime, str(round_), str(warmup), sandbox, size=16)
        spans = [_span(trace_id, placed) for placed in place(run, rows)]
        if not spans:
            continue
        resource = {"service.name": "sandbench", "sandbench.run_id": run.run_id,
                    "sandbench.backend": run.info.backend, "sandbench.runtime": runtime,
                    "sandbench.workload": "start", "sandbench.round": round_,
                    "sandbench.warmup": warmup, "sandbench.sandbox": sandbox or None,
                    "host.name": run.info.host.get("hostname")}
        resource_spans.append({
            "resource": {"attributes": _attributes(resource)},
            "scopeSpans": [{"scope": {"name": "sandbench", "version": __version__},
                            "spans": spans}]})
    return {"resourceSpans": resource_spans}

