"""The runner: turns a spec into sandboxes, rounds into samples, and keeps every one of them.

Rounds are interleaved across runtimes so slow drift on the host spreads over all of them, in a
balanced order (round_order: A B C, B C A, ...) so no runtime always runs first or always right
after the same one; one measured sandbox runs at a time; warmup rounds are recorded but flagged. Each
sample is on disk the moment it exists. Ctrl-C or SIGTERM stops after deleting the sandbox in
flight, and the run is marked interrupted; what was measured stays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Callable, Iterator, TypeVar

from pydantic import ValidationError

from sandbench import __version__, owner, workloads
from sandbench.backends import Backend
from sandbench.backends.burst import arrival_order
from sandbench.errors import Interrupted, RuntimeUnavailable
from sandbench.facts import host as hostfacts
from sandbench.model import Case, Execution, Metric, Sample, Status, Value, utc_now
from sandbench.results import RunWriter, metrics_table
from sandbench.spec import Spec, SpecError, offsets_s, validation_message
from sandbench.workloads import Params, ParseError, Workload

#: Raw output kept inline with a failed sample; the whole output is in outputs/ anyway.
RAW_LIMIT = 8192
#: kube-burner's rule: a run with more failed samples than this is not valid.
MAX_FAILED_FRACTION = 0.10
#: The harness's CPU over a burst, in % of one core, above which run.json warns that it may
#: have slowed the sandboxes it measured: on a 2-core host half a core is a quarter of it.
HARNESS_CPU_WARNING = 50.0


@dataclass(frozen=True)
class Step:
    """One sandbox to run: a case of a workload on a runtime in a round."""

    workload: Workload
    case: Case
    runtime: str
    round: int
    warmup: bool
    #: Sandboxes of the case started together (a run with concurrency as its axis); None: one
    #: sandbox on its own, as in a run without that axis.
    concurrency: int | None = None


@dataclass(frozen=True)
class Plan:
    spec: Spec
    params: dict[str, Params]
    steps: list[Step] = field(default_factory=list)

    @property
    def metrics(self) -> list[Metric]:
        burst = self.spec.concurrency_axis
        return [m for name in self.params for m in (
            *workloads.get(name).metrics, *(workloads.get(name).burst_metrics if burst else ()))]

    @property
    def sandboxes(self) -> int:
        return sum(step.concurrency or 1 for step in self.steps)

    def started(self, width: int) -> int:
        """The sandboxes the run starts when each burst runs on ``width`` nodes at once
        (Backend.burst_width): a burst's ids each start one per node; a lone one, one."""
        return sum((step.concurrency * width) if step.concurrency else 1 for step in self.steps)

    def all_metrics(self, backend: Backend) -> list[Metric]:
        return [*self.metrics, *backend.extra_metrics]


def plan(spec: Spec, known_runtimes: dict[str, str], concurrent: bool = True,
         peer_paths: Callable[[], tuple[str, ...]] | None = None) -> Plan:
    """Check every name and parameter and lay out the steps; raises SpecError, runs nothing.
    ``concurrent``: whether the backend can start sandboxes together (Backend.concurrent);
    ``peer_paths``: the prepared backend's Backend.peer_paths, asked only when a case has a
    peer (None: one unnamed path, as before the backend is prepared)."""
    for runtime in spec.runtimes:
        if runtime not in known_runtimes:
            raise SpecError(f"unknown runtime {runtime!r} for backend {spec.backend!r}; "
                            f"known runtimes: {', '.join(known_runtimes)}")
    if not spec.workloads:
        raise SpecError(f"no workloads to run; known workloads: {', '.join(workloads.WORKLOADS)}")
    params: dict[str, Params] = {}
    for name, run in spec.workloads.items():
        try:
            params[name] = workloads.get(name).params(run.params)
        except workloads.UnknownWorkload as exc:
            raise SpecError(str(exc)) from None
        except ValidationError as exc:
            raise SpecError(validation_message(exc, spec.source,
                                               within=("workloads", name, "params"))) from None
    _check_concurrency(spec, concurrent)
    return Plan(spec, params, list(_steps(spec, params, _asked_once(peer_paths))))


def _asked_once(paths: Callable[[], tuple[str, ...]] | None) -> Callable[[], tuple[str, ...]]:
    """``paths`` called at most once (it may ask a cluster for its nodes), and only if needed."""
    known: list[tuple[str, ...]] = []

    def once() -> tuple[str, ...]:
        if not known:
            known.append(paths() if paths is not None else ())
        return known[0]
    return once


def _check_concurrency(spec: Spec, concurrent: bool) -> None:
    if not spec.concurrency_axis:
        return
    levels = ", ".join(str(level) for level in spec.concurrency)
    if not concurrent and max(spec.concurrency) > 1:
        raise SpecError(f"concurrency [{levels}]: backend {spec.backend!r} starts one sandbox "
                        "at a time; concurrency above 1 runs on local or kubernetes")
    alone = [name for name in spec.workloads if not workloads.get(name).concurrent]
    if alone:
        can = ", ".join(n for n, w in workloads.WORKLOADS.items() if w.concurrent)
        raise SpecError(f"concurrency [{levels}]: workload {alone[0]!r} runs one sandbox at a "
                        f"time and cannot be run concurrently; only {can} can (e.g. "
                        f"--workloads {can.split(',')[0]}), or leave concurrency at [1]")


def _steps(spec: Spec, params: dict[str, Params],
           peer_paths: Callable[[], tuple[str, ...]]) -> Iterator[Step]:
    for name, workload_params in params.items():
        workload = workloads.get(name)
        warmup = spec.warmup_of(name)
        # Levels interleave as runtimes do, so none always runs first in a round.
        levels: list[int | None] = (list(spec.concurrency) if spec.concurrency_axis
                                    and workload.concurrent else [None])
        for number in range(1, warmup + spec.rounds_of(name) + 1):
            cases = [one for case in workload.cases(workload_params)
                     for one in _over_paths(case, peer_paths)]
            for case in cases:
                for pulled in _pulled(case, spec, workload, number):
                    for level in round_order(levels, number):
                        for runtime in round_order(spec.runtimes, number):
                            yield Step(workload, pulled, runtime, number, number <= warmup,
                                       level)


def _over_paths(case: Case, peer_paths: Callable[[], tuple[str, ...]]) -> list[Case]:
    """A case with a peer once per network path the backend has to it (a cluster's peer on
    the same node and on another), each labelled ``path``; any other case as it is."""
    paths = peer_paths() if case.peer is not None else ()
    return [dataclasses.replace(case, peer_path=path, labels={**case.labels, "path": path})
            for path in paths] or [case]


def _pulled(case: Case, spec: Spec, workload: Workload, number: int) -> list[Case]:
    """The case once per image state the spec asks for, when the workload times starts on
    a backend that pulls; both states alternate which goes first, round by round, so neither
    always runs right after the other's pod."""
    states = spec.pull_states() if workload.times_start else ()
    if not states:
        return [case]
    order = states if number % 2 else states[::-1]
    return [dataclasses.replace(case, pull=state) for state in order]


Named = TypeVar("Named")


def round_order(runtimes: list[Named], number: int) -> list[Named]:
    """The order round ``number`` (from 1) runs the runtimes in: a Williams design. Over every
    k rounds (2k when k is odd) each runtime runs once in each position and once right after
    each other runtime. With a fixed A B C order the sandbox after a container's teardown paid
    for it: native measured 11-18% slower right after runc than right after native."""
    k = len(runtimes)
    first = [0]
    low, high = 1, k - 1
    while len(first) < k:
        first.append(low)
        low += 1
        if len(first) < k:
            first.append(high)
            high -= 1
    rows = [[(i + shift) % k for i in first] for shift in range(k)]
    if k % 2:
        rows += [row[::-1] for row in rows]
    return [runtimes[i] for i in rows[(number - 1) % len(rows)]]


def order_period(runtime_count: int) -> int:
    """Rounds after which round_order repeats: a block of them is balanced, one round is not
    (so a run is split into halves by whole blocks, never by odd and even rounds)."""
    return runtime_count if runtime_count % 2 == 0 else 2 * runtime_count


Progress = Callable[[int, int, Step], None]


def add_variants(backend: Backend, spec: Spec) -> None:
    """Teach the backend the spec's runtime variants (same-run A/B) before the plan checks
    names; raises BackendError for one it cannot run."""
    for name, variant in spec.variants.items():
        backend.add_variant(name, variant.runtime, list(variant.wrapper), variant.description)


def check_runtimes(backend: Backend, spec: Spec) -> tuple[Spec, list[str]]:
    """Fail before anything is measured when a requested runtime cannot run here. A default
    that is optional (spec.optional_runtimes) is left out instead: the spec without it, and a
    note saying why and how to get it."""
    notes: list[str] = []
    skipped: list[str] = []
    for runtime in spec.runtimes:
        availability = backend.check(runtime)
        if availability.ok:
            continue
        fix = f"; fix: {availability.fix}" if availability.fix else ""
        if runtime in spec.optional_runtimes and len(spec.runtimes) > len(skipped) + 1:
            skipped.append(runtime)
            notes.append(f"{runtime} left out: {availability.detail}{fix}")
            continue
        raise RuntimeUnavailable(f"runtime {runtime!r} is not usable here: "
                                 f"{availability.detail}{fix}")
    if not skipped:
        return spec, notes
    kept = [r for r in spec.runtimes if r not in skipped]
    baseline = spec.baseline if spec.baseline in kept else None
    return spec.model_copy(update={"runtimes": kept, "baseline": baseline}), notes


def run_metadata(run_id: str, the_plan: Plan, backend: Backend,
                 notes: list[str] | None = None) -> dict[str, object]:
    """run.json's content at the start; ``notes`` (runtimes left out, say) open its warnings."""
    environment = backend.environment()
    return {
        "run_id": run_id,
        "sandbench_version": __version__,
        "git_commit": hostfacts.git_commit(),
        "backend": the_plan.spec.backend,
        "baseline": the_plan.spec.baseline_runtime,
        "spec": the_plan.spec.model_dump(mode="json"),
        "host": environment.pop("host", hostfacts.host_facts()),
        "host_state": {"start": hostfacts.host_state()},
        "runtimes": {r: environment.get("runtimes", {}).get(r, {}) for r in the_plan.spec.runtimes},
        "environment": environment,
        "metrics": metrics_table(the_plan.all_metrics(backend)),
        "clocks": {
            "host_monotonic": "CLOCK_MONOTONIC of the harness host (Python time.monotonic_ns)",
            "host_realtime": "CLOCK_REALTIME of the harness host (time.time_ns)",
            "sandbox_realtime": "CLOCK_REALTIME inside the sandbox, read by the probe",
            "node_realtime": "CLOCK_REALTIME of the cluster node, as its container runtime "
                             "stamps log lines (a KubeVirt guest's serial console log)",
            "sandbox_monotonic": "CLOCK_MONOTONIC inside the sandbox (syscall loops)",
        },
        "warnings": [*(notes or []), *(w for w in [hostfacts.busy_warning(
            hostfacts.host_state(), "start")] if w)],
    }


def trial(backend: Backend, runtime: str, workload: str, params: dict[str, Any],
          sandbox_id: str, timeout_s: float) -> tuple[Execution, list[Value], str | None]:
    """One sandbox of ``workload``'s first case on a prepared backend, outside any run (doctor's
    proof that a runtime really works): the execution, its values, and why it failed (None
    when it did not)."""
    chosen = workloads.get(workload)
    case = chosen.cases(chosen.params(params))[0]
    execution = backend.execute(runtime, case, sandbox_id, timeout_s)
    values, reason = _values(Step(chosen, case, runtime, 0, False), execution)
    return execution, values, reason


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SIGTERM as an exception, so cleanup runs on the way out as it does for Ctrl-C.
    raise Interrupted("SIGTERM")


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises Interrupted for the block, as Ctrl-C raises KeyboardInterrupt: a whole
    command then stops the same way on both (the default would end it on the spot, before
    anything it made is deleted)."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class CleanupSkipped(Exception):
    """A second stop signal while a stopped run was deleting its sandboxes."""


class _StopGuard:
    """While a run cleans up and records its end, Ctrl-C and SIGTERM no longer cut it short:
    the first says what is going on, the next one skips the rest of the deleting (what is left
    is the next `sandbench gc`'s, as this run's owner will be dead by then). run.json is written
    either way."""

    def __init__(self, notice: Callable[[str], None]) -> None:
        self.notice = notice
        self.signals = 0
        self.skippable = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_signal)
                              for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.skippable and self.signals > 1:
            self.skippable = False
            raise CleanupSkipped()
        if self.signals == 1:
            self.notice("stopping: deleting the sandboxes and saving the run; press Ctrl-C "
                        "again to skip the deleting (`sandbench gc` finishes it later)")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Runner:
    def __init__(self, the_plan: Plan, backend: Backend, writer: RunWriter,
                 progress: Progress | None = None,
                 notice: Callable[[str], None] = _to_stderr) -> None:
        self.plan = the_plan
        self.backend = backend
        self.writer = writer
        self.progress = progress
        self.notice = notice
        self.failed = 0
        self.cleanup_skipped = False
        self.runnable: list[int] = []
        #: Each burst's harness CPU (% of a core) and lateness (s), for run.json.
        self.harness: list[tuple[float, float | None]] = []

    def run(self) -> str:
        """Run every step; returns the run's final status. Cleans up on every path."""
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        status, reason = "failed", "the harness stopped unexpectedly"
        try:
            self._run_steps()
            self.writer.meta.setdefault("warnings", []).extend(self.backend.after_last_step())
            status, reason = "completed", ""
        except (KeyboardInterrupt, Interrupted) as exc:
            status, reason = "interrupted", f"stopped by {exc or 'Ctrl-C'}"
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            with _StopGuard(self.notice) as guard:
                status = self._finish(guard, status, reason)
        return status

    def _finish(self, guard: _StopGuard, status: str, reason: str) -> str:
        """Delete what is left, judge the run and record its end; the final status."""
        interference = self.backend.interference()
        guard.skippable = True
        try:
            deleted = self.backend.cleanup()
        except CleanupSkipped:
            deleted = []
            self.cleanup_skipped = True
            self.writer.meta.setdefault("warnings", []).append(
                "cleanup was skipped (a second Ctrl-C or SIGTERM): run `sandbench gc` to delete "
                "the sandboxes, mounts and cgroups this run left")
        guard.skippable = False
        if deleted:
            self.writer.meta.setdefault("cleanup", []).extend(deleted)
        self.writer.meta.setdefault("environment", {}).update(self.backend.final_facts())
        self._host_state_at_end()
        self._harness_at_end()
        self._judge(interference)
        if guard.signals and status == "completed":
            status, reason = "interrupted", "stopped by a signal while it was cleaning up"
        self.writer.finish(status, reason or None)
        return status

    def _sample_runnable(self) -> None:
        """How many tasks besides the harness (this thread, reading) are runnable, before
        each sandbox: a tenant that comes or goes during a run shows here at once, where the
        load average trails by a minute (nightly/hostdrift.py compares runs by it)."""
        running = hostfacts.runnable()
        if running is not None:
            self.runnable.append(max(running - 1, 0))

    def _host_state_at_end(self) -> None:
        state = hostfacts.host_state()
        host_state = self.writer.meta.setdefault("host_state", {})
        host_state["end"] = state
        if self.runnable:
            host_state["during"] = {
                "others_runnable_mean": round(sum(self.runnable) / len(self.runnable), 3),
                "others_runnable_max": max(self.runnable),
                "samples": len(self.runnable),
                "how": "/proc/stat procs_running - 1, read before each sandbox",
            }
        warning = hostfacts.busy_warning(state, "end")
        if warning:
            self.writer.meta.setdefault("warnings", []).append(warning)

    def _harness_at_end(self) -> None:
        """What the harness itself spent during the bursts, and a warning when it may have
        been what slowed them."""
        if not self.harness:
            return
        shares = [share for share, _ in self.harness]
        late = [s for _, s in self.harness if s is not None]
        self.writer.meta["harness"] = {
            "bursts": len(shares),
            "cpu_percent_of_core_mean": round(sum(shares) / len(shares), 1),
            "cpu_percent_of_core_max": round(max(shares), 1),
            "lateness_ms_max": round(max(late) * 1e3, 3) if late else None,
            "how": "getrusage(RUSAGE_SELF) user+system time of every harness thread over each "
                   "burst's wall time (its threads' start, set-up included, to the last "
                   "delete); lateness: the latest request against its scheduled arrival, "
                   "counted from when every sandbox of the burst was ready",
        }
        if max(shares) > HARNESS_CPU_WARNING:
            self.writer.meta.setdefault("warnings", []).append(
                f"the harness used up to {max(shares):.0f}% of a core during a burst (over "
                f"{HARNESS_CPU_WARNING:.0f}%): at that concurrency it may have slowed the "
                "sandboxes it measured")

    def _judge(self, interference: list[str]) -> None:
        total = self.writer.count
        warnings = self.writer.meta.setdefault("warnings", [])
        self.writer.meta["valid"] = not interference
        warnings += [f"{line}: the run is not valid" for line in interference]
        if total and self.failed / total > MAX_FAILED_FRACTION:
            warning = (f"{self.failed} of {total} samples failed (over "
                       f"{MAX_FAILED_FRACTION:.0%}): the run is not valid")
            self.writer.meta["valid"] = False
            warnings.append(warning)

    def _run_steps(self) -> None:
        steps = self.plan.steps
        prefix = owner.sandbox_prefix(self.writer.meta["run_id"])
        for index, step in enumerate(steps):
            if self.progress:
                self.progress(index, len(steps), step)
            sandbox_id = f"{prefix}-{index:05d}"
            self._sample_runnable()
            if step.concurrency is not None:
                self._run_burst(step, sandbox_id)
            else:
                execution = self.backend.execute(step.runtime, step.case, sandbox_id,
                                                 self.plan.spec.timeout_s)
                self._record(step, sandbox_id, execution)
            if index + 1 == len(steps) or _round(steps[index + 1]) != _round(step):
                self.writer.sync()
        if self.progress and steps:
            self.progress(len(steps), len(steps), steps[-1])

    def _record(self, step: Step, sandbox_id: str, execution: Execution) -> list[Value]:
        """Write the sandbox's samples and output; its values, as the samples hold them."""
        values, reason = _values(step, execution)
        output = self.writer.output_path(sandbox_id)
        samples = [self._sample(step, v, execution, output, reason) for v in values]
        self.failed += sum(1 for s in samples if s.status == Status.FAILED)
        # Samples first: they are the results, the output only explains them, so a disk
        # that fills up loses an output, never a measured sandbox.
        self.writer.append(samples)
        self.writer.save_output(sandbox_id, execution.raw())
        return values

    def _run_burst(self, step: Step, sandbox_id: str) -> None:
        """``step.concurrency`` sandboxes of the step's case started together, each recorded
        as a lone one is, labelled with the burst; then the burst's own values."""
        assert step.concurrency is not None
        spec = self.plan.spec
        ids = [f"{sandbox_id}-{position:03d}" for position in range(step.concurrency)]
        burst = self.backend.execute_burst(step.runtime, step.case, ids, spec.timeout_s,
                                           offsets_s(spec.arrival, step.concurrency, step.round))
        labels = {"concurrency": str(step.concurrency), "arrival": spec.arrival.label}
        values = []
        for one, execution, position in zip(burst.sandbox_ids or ids, burst.executions,
                                            arrival_order(burst.executions)):
            execution.labels = {**execution.labels, **labels, "position": str(position)}
            values.append(self._record(step, one, execution))
        extra = step.workload.burst(burst, values)
        self.writer.append(self._burst_sample(step, v, labels) for v in extra)
        late = [s for s in burst.lateness_s if s is not None]
        self.harness.append((100.0 * burst.harness_cpu_s / burst.wall_s if burst.wall_s else 0.0,
                             max(late) if late else None))

    def _burst_sample(self, step: Step, value: Value, labels: dict[str, str]) -> Sample:
        failed = value.status == Status.FAILED
        self.failed += failed
        return Sample(
            run_id=self.writer.meta["run_id"], backend=self.plan.spec.backend,
            runtime=step.runtime, workload=step.workload.name, metric=value.metric.name,
            unit=value.metric.unit, value=value.value, round=step.round, warmup=step.warmup,
            status=value.status, time=utc_now(),
            labels={**step.case.labels, **labels, **value.labels}, reason=value.reason,
            clock=value.clock)

    def _sample(self, step: Step, value: Value, execution: Execution, output: str,
                reason: str | None) -> Sample:
        failed = value.status == Status.FAILED
        raw = execution.raw()[-RAW_LIMIT:] if failed else None
        return Sample(
            run_id=self.writer.meta["run_id"], backend=self.plan.spec.backend,
            runtime=step.runtime, workload=step.workload.name, metric=value.metric.name,
            unit=value.metric.unit, value=value.value, round=step.round, warmup=step.warmup,
            status=value.status, time=utc_now(),
            labels={**step.case.labels, **execution.labels, **value.labels},
            reason=value.reason or (reason if failed else None), raw=raw, clock=value.clock,
            output=output)


def _round(step: Step) -> tuple[str, int]:
    return step.workload.name, step.round


def _values(step: Step, execution: Execution) -> tuple[list[Value], str | None]:
    """The step's values, or one failed value per unmeasured metric with the reason."""
    # The exit status comes first: a sandbox the OOM killer ended is that, not "no fio JSON".
    reason = execution.exit_reason() or execution.error
    if reason is None:
        try:
            return [*step.workload.parse(step.case, execution), *execution.extra], None
        except ParseError as exc:
            reason = f"unparseable output: {exc}"
    missing = step.workload.unmeasured(step.case, execution)
    failed = [Value(m, None, dict(labels), Status.FAILED, reason) for m, labels in missing]
    return failed, reason
