"""The start workload: how long until a fresh sandbox runs its first instruction, and exits.

The probe writes a CLOCK_REALTIME stamp first thing in main. Every phase is defined by the two
events that bound it; backends report the events they observe as marks (see PHASES for the
vocabulary) and this module subtracts marks read on one clock, or on two clocks whose offset
the backend measured. A phase whose clocks cannot be related is a failed sample, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from sandbench.model import (Better, Burst, Case, Clock, ClockOffset, Execution, Mark, Metric,
                             MissingOffset, Status, Value)
from sandbench.workloads.base import PROBE, Params, ParseError, Workload, probe_header, realtime_stamp


@dataclass(frozen=True)
class Phase:
    metric: Metric
    start: str
    end: str


def _phase(name: str, start: str, end: str, description: str) -> Phase:
    return Phase(Metric(name, "ms", Better.LOWER, description), start, end)


#: Mark names: request (just before the runtime is invoked), created (`runc create` returned),
#: start (just before `runc start`), workload (the probe's stamp), exit (the sandbox exited);
#: on Kubernetes create (API create returned), scheduled, running, ready (watch events as
#: received); in VMs kernel (first guest kernel output) and init (guest init started).
PHASES: tuple[Phase, ...] = (
    _phase("request_to_workload", "request", "workload",
           "runtime invoked -> first instruction of the workload"),
    _phase("request_to_exit", "request", "exit", "runtime invoked -> sandbox exited"),
    _phase("request_to_created", "request", "created", "runtime invoked -> container created"),
    _phase("request_to_end", "request", "end",
           "runtime invoked -> the workload's last instruction before exit"),
    _phase("end_to_exit", "end", "exit",
           "the workload's last instruction -> the harness saw the sandbox gone (teardown, "
           "plus the harness's wake-up: its floor)"),
    _phase("start_to_workload", "start", "workload", "start requested -> first workload instruction"),
    _phase("request_to_kernel", "request", "kernel", "VM requested -> first guest kernel output"),
    _phase("request_to_init", "request", "init", "VM requested -> guest init running"),
    _phase("create_to_scheduled", "create", "scheduled", "pod created -> bound to a node"),
    _phase("scheduled_to_running", "scheduled", "running", "bound -> container running"),
    _phase("create_to_running", "create", "running", "pod created -> container running"),
    _phase("create_to_workload", "create", "workload", "pod created -> first workload instruction"),
    _phase("create_to_ready", "create", "ready", "pod created -> Ready"),
    _phase("create_to_kernel", "create", "kernel", "VM created (API) -> first guest kernel output"),
    _phase("create_to_init", "create", "init", "VM created (API) -> guest init running"),
)

#: When both ends of a phase were read on more than one clock, the first listed wins: the
#: monotonic clock cannot jump.
CLOCK_PREFERENCE = (Clock.HOST_MONOTONIC, Clock.HOST_REALTIME, Clock.SANDBOX_REALTIME)


class StartParams(Params):
    linger_s: int = Field(0, ge=0, le=600)
    """Seconds the probe stays up after its stamp. 0 locally (the exit is what is timed); an
    orchestrator needs a second or so to report a pod Running and Ready before it exits."""


def _offset(offsets: list[ClockOffset], source: Clock, target: Clock) -> ClockOffset | None:
    return next((o for o in offsets if o.source == source and o.target == target), None)


def _inverse(offset: ClockOffset | None) -> ClockOffset | None:
    """The same offset read the other way: from its target clock onto its source."""
    if offset is None:
        return None
    return ClockOffset(offset.target, offset.source, -offset.offset_ns, offset.uncertainty_ns,
                       offset.method)


def phase_value(phase: Phase, marks: list[Mark], offsets: list[ClockOffset],
                missing: list[MissingOffset] | None = None) -> Value | None:
    """The phase's value in ms, a failed Value when its clocks cannot be related (saying why
    the offset is ``missing`` when the backend said), or None when the backend observed
    neither end (the phase does not apply to it)."""
    starts = {m.clock: m for m in marks if m.name == phase.start}
    ends = {m.clock: m for m in marks if m.name == phase.end}
    if not starts or not ends:
        return None
    for clock in CLOCK_PREFERENCE:
        if clock in starts and clock in ends:
            return _between(phase, starts[clock], ends[clock], None)
    for start in starts.values():
        for end in ends.values():
            offset = _offset(offsets, end.clock, start.clock) or _inverse(
                _offset(offsets, start.clock, end.clock))
            if offset is not None:
                return _between(phase, start, end, offset)
    clocks = f"{'/'.join(starts)} and {'/'.join(ends)}"
    # Either way round, as the offsets themselves are read.
    why = [m.reason for m in missing or [] if (m.source in ends and m.target in starts)
           or (m.source in starts and m.target in ends)]
    return Value(phase.metric, None, status=Status.FAILED,
                 reason=f"no measured offset between {clocks}: "
                        f"{'; '.join(why) or 'not reported'}")


def _between(phase: Phase, start: Mark, end: Mark, offset: ClockOffset | None) -> Value:
    end_ns = end.ns + (offset.offset_ns if offset else 0)
    clock = str(start.clock)
    if offset is not None:
        clock = (f"{start.clock}->{end.clock} (offset {offset.offset_ns}±{offset.uncertainty_ns} ns,"
                 f" {offset.method})")
    value_ms = (end_ns - start.ns) / 1e6
    if value_ms < 0 and offset is None:
        # One clock cannot disagree with itself: the two marks were taken out of order.
        return Value(phase.metric, None, status=Status.FAILED, clock=clock,
                     reason=f"negative latency {value_ms:.3f} ms on the one clock {clock}: "
                            f"{phase.end!r} was marked before {phase.start!r}, a race in the "
                            "harness, not a clock disagreement")
    if value_ms < 0 and offset is not None:
        return Value(phase.metric, None, status=Status.FAILED, clock=clock,
                     reason=f"negative latency {value_ms:.3f} ms: the clocks disagree more than"
                            f" the offset's uncertainty ({offset.uncertainty_ns} ns) accounts "
                            "for")
    return Value(phase.metric, value_ms, clock=clock)


def not_applicable(phase: Phase, execution: Execution) -> Value | None:
    """The phase skipped with why, when the backend would time it but one of its marks never
    happens in this sandbox by design (Execution.not_applicable); else None."""
    skipped = execution.not_applicable
    reason = skipped.get(phase.start) or skipped.get(phase.end)
    timed = {*execution.planned, *skipped}
    if reason is None or phase.start not in timed or phase.end not in timed:
        return None
    return Value(phase.metric, None, status=Status.SKIPPED, reason=reason)


def _end_mark(rest: str, execution: Execution) -> list[Mark]:
    """The probe's stamp just before it exits, where the backend can relate the sandbox's
    clock to its own (locally; a VM's guest clock is not used) and the probe printed it (runs
    of older probes did not: their end phases simply do not apply)."""
    related = any(o.source == Clock.SANDBOX_REALTIME for o in execution.offsets)
    exit_on_wall = any(m.name == "exit" and m.clock == Clock.HOST_REALTIME
                       for m in execution.marks)
    if not (related and exit_on_wall):
        return []
    try:
        end, _ = probe_header(rest, "end")
    except ParseError:
        return []
    return [Mark("end", Clock.SANDBOX_REALTIME, realtime_stamp(end))]


#: A burst's own metrics (concurrency runs): how long until every sandbox ran its workload,
#: and what that is per second; and what the harness spent meanwhile, to show it was not the
#: bottleneck.
BURST_TO_LAST_WORKLOAD = Metric(
    "burst_to_last_workload", "ms", Better.LOWER,
    "the burst's first request (on a cluster: pod created) -> the last sandbox's first "
    "workload instruction")
BURST_THROUGHPUT = Metric(
    "burst_throughput", "sandboxes/s", Better.HIGHER,
    "sandboxes of the burst over burst_to_last_workload: starts per second")
HARNESS_CPU = Metric(
    "harness_cpu", "% of a core", Better.LOWER,
    "the harness's own CPU time (all its threads) over the burst's wall time, from its threads' "
    "start (the sandboxes' set-up included) until the last sandbox was deleted")
HARNESS_LATENESS = Metric(
    "harness_lateness", "ms", Better.LOWER,
    "the latest request of the burst against its scheduled arrival, counted from when every "
    "sandbox was set up: the harness's own delay (waking threads, spawning runtimes)")
BURST_METRICS = (BURST_TO_LAST_WORKLOAD, BURST_THROUGHPUT, HARNESS_CPU, HARNESS_LATENESS)


@dataclass(frozen=True)
class Arrived:
    """One sandbox of a burst as the burst's totals need it."""

    #: Its request, on the host's monotonic clock (ns); None when it was never requested.
    request_ns: int | None
    #: Its request_to_workload phase (ms); None when it failed.
    to_workload_ms: float | None
    #: Why it has no request_to_workload, when it has none.
    reason: str | None = None
    #: It has none by design (nothing runs in it: a pod on a KWOK fake node), not by failure.
    not_applicable: bool = False


def burst_totals(sandboxes: list[Arrived]) -> list[Value]:
    """burst_to_last_workload and burst_throughput of one burst; both failed, saying which
    sandbox and why, when any sandbox did not reach its workload (a total without it would
    flatter the runtime); both skipped when any sandbox ran no workload by design (a total of
    the others would not be the burst's either)."""
    count = len(sandboxes)
    idle = [one for one in sandboxes if one.not_applicable]
    if idle:
        reason = f"{len(idle)} of {count} sandboxes ran no workload: {idle[0].reason}"
        return [Value(m, None, status=Status.SKIPPED, reason=reason)
                for m in (BURST_TO_LAST_WORKLOAD, BURST_THROUGHPUT)]
    for number, one in enumerate(sandboxes, 1):
        if one.request_ns is None or one.to_workload_ms is None:
            reason = (f"sandbox {number} of {count} never ran its workload: "
                      f"{one.reason or 'no request_to_workload'}")
            return [Value(m, None, status=Status.FAILED, reason=reason)
                    for m in (BURST_TO_LAST_WORKLOAD, BURST_THROUGHPUT)]
    first = min(one.request_ns for one in sandboxes if one.request_ns is not None)
    total_ms = max((one.request_ns - first) / 1e6 + one.to_workload_ms
                   for one in sandboxes
                   if one.request_ns is not None and one.to_workload_ms is not None)
    if total_ms <= 0:
        reason = f"the burst took {total_ms:.3f} ms: marks out of order"
        return [Value(m, None, status=Status.FAILED, reason=reason)
                for m in (BURST_TO_LAST_WORKLOAD, BURST_THROUGHPUT)]
    return [Value(BURST_TO_LAST_WORKLOAD, total_ms, clock=str(Clock.HOST_MONOTONIC)),
            Value(BURST_THROUGHPUT, count / (total_ms / 1e3), clock=str(Clock.HOST_MONOTONIC))]


#: A sandbox's request and its time to the workload: the runtime invoked locally, the pod
#: created (its first event on the watch) on a cluster.
ARRIVALS = (("request", "request_to_workload"), ("create", "create_to_workload"))


def _arrived(execution: Execution, values: list[Value]) -> Arrived:
    marks = {m.name: m.ns for m in execution.marks if m.clock == Clock.HOST_MONOTONIC}
    mark, metric = next(((m, p) for m, p in ARRIVALS if m in marks), ARRIVALS[0])
    request = marks.get(mark)
    phase = next((v for v in values if v.metric.name == metric), None)
    if phase is not None and phase.status == Status.OK and phase.value is not None:
        return Arrived(request, phase.value)
    if phase is not None and phase.status == Status.SKIPPED:
        return Arrived(request, None, phase.reason, not_applicable=True)
    reason = phase.reason if phase is not None else None
    return Arrived(request, None, reason or execution.error)


def harness_values(cpu_s: float, wall_s: float, lateness_s: list[float | None]) -> list[Value]:
    """The harness's CPU share and lateness over one burst."""
    values = []
    if wall_s > 0:
        values.append(Value(HARNESS_CPU, 100.0 * cpu_s / wall_s))
    late = [s for s in lateness_s if s is not None]
    if late:
        values.append(Value(HARNESS_LATENESS, max(0.0, max(late)) * 1e3,
                            clock=str(Clock.HOST_MONOTONIC)))
    return values


class Start(Workload):
    name = "start"
    description = "start latency of a fresh sandbox, in phases"
    params_model = StartParams
    metrics = tuple(p.metric for p in PHASES)
    # The phase that prices the runtime (invoked or pod created, to the workload's first
    # instruction) and the whole life of a sandbox; the others split these up.
    headline = ("request_to_workload", "create_to_workload", "request_to_exit")
    headline_note = "the phases to the workload's first instruction and to exit"
    concurrent = True
    burst_metrics = BURST_METRICS
    times_start = True

    def cases(self, params: Params) -> list[Case]:
        # Which phases a sandbox yields depends on the backend; see unmeasured().
        assert isinstance(params, StartParams)
        linger = [str(params.linger_s)] if params.linger_s else []
        return [Case(self.name, "start", [PROBE, "start", *linger])]

    def burst(self, burst: Burst, values: list[list[Value]]) -> list[Value]:
        arrived = [_arrived(execution, mine) for execution, mine in zip(burst.executions, values)]
        return [*burst_totals(arrived),
                *harness_values(burst.harness_cpu_s, burst.wall_s, burst.lateness_s)]

    def unmeasured(self, case: Case, execution: Execution) -> list[tuple[Metric, dict[str, str]]]:
        # Every phase this backend would have measured failed; the others do not apply to it,
        # nor do those bounded by a mark that never happens in this sandbox (a KWOK fake pod's
        # running or workload: a failed pod there failed its API side only).
        seen = {*execution.planned, "workload"} - set(execution.not_applicable)
        failed = [p.metric for p in PHASES if p.start in seen and p.end in seen]
        return [(metric, {}) for metric in failed or [PHASES[0].metric]]

    def parse(self, case: Case, execution: Execution) -> list[Value]:
        marks = list(execution.marks)
        if "workload" not in execution.not_applicable:
            header, rest = probe_header(execution.stdout, "start")
            marks += [Mark("workload", Clock.SANDBOX_REALTIME, realtime_stamp(header)),
                      *_end_mark(rest, execution)]
        values = [not_applicable(p, execution)
                  or phase_value(p, marks, execution.offsets, execution.missing_offsets)
                  for p in PHASES]
        found = [v for v in values if v is not None]
        if not found:
            raise ParseError("the backend recorded no marks a phase could be computed from")
        return found
