"""The data sandbench measures: metrics, clocks, marks and samples.

Everything else in the package speaks these types; this module imports nothing of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Version of the on-disk results format (run.json and samples.jsonl); see sandbench.results for
#: how older versions are read.
FORMAT_VERSION = 1

#: Where every sandbox has its volume, whatever runs it: a bind mount, an emptyDir, a VM's
#: data disk. Workloads name it; backends provide it.
VOLUME = "/data"
#: Where a case's argv (and its peer's) names the peer's address: the backend writes there
#: the address it gave the peer (locally the host side of a veth pair; on a cluster, a pod's IP).
PEER = "{peer}"
#: The same for the sandbox's own address, where a case's sandbox is the server.
SANDBOX = "{sandbox}"


class Status(StrEnum):
    """What became of one measured value."""

    OK = "ok"
    #: The sandbox ran (or tried to) and the value could not be had: kept with its reason.
    FAILED = "failed"
    #: Deliberately not measured (for example direct I/O where the filesystem refuses it).
    SKIPPED = "skipped"


class Better(StrEnum):
    """Which direction of change is an improvement for a metric."""

    LOWER = "lower"
    HIGHER = "higher"


class Clock(StrEnum):
    """The clocks an event can be read on. Phases only subtract marks of one clock, or of two
    clocks whose offset was measured."""

    HOST_MONOTONIC = "host_monotonic"
    HOST_REALTIME = "host_realtime"
    #: CLOCK_REALTIME inside the sandbox (same kernel for containers, a guest kernel for VMs).
    SANDBOX_REALTIME = "sandbox_realtime"
    #: CLOCK_REALTIME of a cluster node, as its container runtime stamps log lines (a KubeVirt
    #: guest's serial console log).
    NODE_REALTIME = "node_realtime"


@dataclass(frozen=True)
class Metric:
    """A kind of measured value."""

    name: str
    unit: str
    better: Better
    description: str


@dataclass(frozen=True)
class Mark:
    """An event in a sandbox's life, read on a named clock, in nanoseconds."""

    name: str
    clock: Clock
    ns: int


@dataclass(frozen=True)
class ClockOffset:
    """How to bring a clock onto another: ``target = source + offset_ns``.

    ``uncertainty_ns`` bounds the error of the offset (half the round trip of its measurement).
    """

    source: Clock
    target: Clock
    offset_ns: int
    uncertainty_ns: int
    method: str


@dataclass(frozen=True)
class MissingOffset:
    """An offset a backend needed between two clocks and could not measure: a phase that
    would need it fails with ``reason``."""

    source: Clock
    target: Clock
    #: Why it is missing, in the words of whatever failed.
    reason: str


@dataclass(frozen=True)
class Value:
    """One measured value a workload parsed from a sandbox, before it becomes a Sample."""

    metric: Metric
    value: float | None
    labels: dict[str, str] = field(default_factory=dict)
    status: Status = Status.OK
    reason: str | None = None
    clock: str | None = None


#: Labels that describe the sandbox a value was measured in (how QEMU ran, gVisor's platform,
#: what an io target is under that runtime, which host processes a footprint counted and in
#: which cgroup), not what was measured: kept on every sample, but
#: not part of what makes two samples comparable, so a TCG guest's getpid still sits in one row
#: with the containers' getpid, and gVisor's rootfs with runc's; nor the net workload's path to
#: its peer (a veth, or a VM's tap behind it), so every runtime's throughput shares a row; nor
#: the pulled image's size and layer count and how its state was checked (the state itself,
#: ``pull``, is what is measured, and splits rows).
#: A sandbox's position in its burst (concurrency runs) is context too: every position of a
#: burst measures the same thing, and a row per position would hold one sample a round.
#: A burst's pod the scheduler first found no room for (``scheduler_wait``, its words) did not
#: start with the others: its create_to_scheduled holds that wait. Said, and kept with the row.
CONTEXT_LABELS = frozenset({"accel", "platform", "storage", "counted", "cgroup", "net_path",
                            "position", "image_size", "image_layers", "pull_check",
                            "pull_images", "scheduler_wait"})
#: Context labels that differ between the samples of one row (each sandbox of a burst has its
#: own position): a series made of a row's samples cannot carry them.
PER_SANDBOX_LABELS = frozenset({"position", "scheduler_wait"})


def comparable_labels(labels: dict[str, str] | None) -> dict[str, str]:
    """The labels that make two samples comparable: without the context labels; without
    ``concurrency`` and ``arrival`` on a sandbox started alone (concurrency 1), which measures
    what a run without a concurrency axis measures; and without ``pull`` when the image was
    present (warm), which is what every start measured before the pull state was a label. So
    a concurrency run's level 1 and a warm start share their rows with older runs, and
    `sandbench compare` matches them; a cold start keeps a row of its own."""
    kept = {k: v for k, v in (labels or {}).items() if k not in CONTEXT_LABELS}
    if kept.get("concurrency") == "1":
        kept.pop("concurrency")
        kept.pop("arrival", None)
    if kept.get("pull") == "warm":
        kept.pop("pull")
    return kept


def utc_now() -> str:
    """Wall-clock time for records, ISO 8601 in UTC with microseconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Sample:
    """One tidy row of results: one measured value (or one failure to measure it)."""

    run_id: str
    backend: str
    runtime: str
    workload: str
    metric: str
    unit: str
    value: float | None
    round: int
    warmup: bool
    status: Status
    time: str
    labels: dict[str, str] = field(default_factory=dict)
    #: Why a sample failed or was skipped; None when it is OK.
    reason: str | None = None
    #: The raw output of a failed sample (trimmed), so the failure can be read without re-running.
    raw: str | None = None
    #: Which clocks the value was read on, e.g. "host_monotonic" or
    #: "host_realtime->sandbox_realtime (offset 0 ns, same kernel)".
    clock: str | None = None
    #: The file under the run directory that holds this sandbox's full output.
    output: str | None = None

    def to_json(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["status"] = str(self.status)
        return row


@dataclass(frozen=True)
class Observe:
    """A case that asks the backend to measure the running sandbox from the host: the probe
    idles while the backend counts what the sandbox's host processes hold and spend."""

    #: Seconds after the workload started before memory is read: the runtime's start-up
    #: allocations settle (a sentry's first GC, a VM's guest finishing its init).
    settle_s: float
    #: Seconds over which the host CPU the idle sandbox spends is read.
    window_s: float
    #: For sandboxes held together: stop starting more once the host's MemAvailable would
    #: fall below this many MiB (the next sandbox priced at the dearest one so far).
    floor_mib: int = 0


@dataclass(frozen=True)
class HostProcess:
    """One host process a sandbox added, as measured: how it was found and what it held."""

    pid: int
    comm: str
    #: How it was found: "cgroup" (in the sandbox's cgroup), "tree" (below the process the
    #: runtime started), or both ("cgroup+tree").
    found_by: str
    rss_kib: int
    pss_kib: int
    uss_kib: int


@dataclass(frozen=True)
class HostFootprint:
    """What one running sandbox cost the host, read from the host while it idled."""

    processes: tuple[HostProcess, ...]
    #: The sandbox's memory cgroup (a v1 path under /sys/fs/cgroup/memory, or v2) and what it
    #: charged (memory.usage_in_bytes, which includes its page cache); None without one.
    cgroup: str | None
    cgroup_memory_kib: int | None
    #: CPU time of the counted processes over the window, in ms per second of wall time.
    idle_cpu_ms_per_s: float | None
    window_s: float
    #: Sandboxes measured together (density), and how much the host's MemAvailable fell
    #: from before the first was started to when they were measured (other tenants move it).
    sandboxes: int = 1
    available_drop_kib: int | None = None


@dataclass(frozen=True)
class PodFootprint:
    """What one running pod cost its node, as the kubelet's summary API reports it (its
    cAdvisor/CRI stats): the pod's cgroup and its containers' working sets."""

    #: The pod cgroup's working set (memory.usage minus inactive file), KiB.
    pod_working_set_kib: int
    #: Its containers' working sets, KiB, by container name.
    containers_kib: dict[str, int]
    #: The pod's CPU rate as the kubelet computed it (usageNanoCores), in ms per second.
    cpu_ms_per_s: float | None
    #: Where the figures came from, in words (e.g. "kubelet /stats/summary via the API
    #: server's node proxy").
    source: str
    #: Pods measured together (density), and how much the node's available memory fell from
    #: before the first was created to when they were measured.
    pods: int = 1
    available_drop_kib: int | None = None


@dataclass(frozen=True)
class Case:
    """One sandbox execution a workload asks for in a round: what runs inside, with what."""

    workload: str
    #: Distinguishes a workload's cases in names and results, e.g. "rootfs" for io.
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    #: (metric, labels) the case yields when it works, so a failure can be recorded against
    #: exactly the values that were not measured.
    expected: list[tuple[Metric, dict[str, str]]] = field(default_factory=list)
    #: Directories inside the sandbox the case writes to on the sandbox's own root filesystem
    #: (not the volume). A runtime without a root filesystem of its own (native) gives each a
    #: fresh host directory, so a case never writes where the host keeps its files.
    rootfs_dirs: tuple[str, ...] = ()
    #: Set when the backend is to measure the sandbox from the host while it runs.
    observe: Observe | None = None
    #: How many identical sandboxes of this case the backend holds alive together and
    #: measures as one (density); None: one sandbox, run to its end.
    together: int | None = None
    #: A process the sandbox talks to over the network, which the backend runs beside it and
    #: ends with it; None: the sandbox has no network but its own loopback.
    peer: Peer | None = None
    #: The state the backend puts the sandbox's image in on the node first, and verifies:
    #: "cold" (removed, so it is pulled) or "warm" (present); None: not a start being timed,
    #: or a backend that pulls no images.
    pull: str | None = None
    #: Which of the backend's network paths to the peer the case takes (Backend.peer_paths,
    #: also the sample's ``path`` label: a cluster's same-node or cross-node); None: the
    #: backend's only one (a local sandbox's veth).
    peer_path: str | None = None


@dataclass(frozen=True)
class Peer:
    """The other end of a network case: a command the backend runs outside the sandbox, on
    the far side of the sandbox's network path, started and listening before the sandbox."""

    #: The peer's command; the workload image's paths in it (the probe) are mapped to where
    #: the backend keeps them, and model.PEER in it becomes the peer's address.
    argv: tuple[str, ...]
    #: TCP ports the peer listens on once it is ready: the sandbox starts after that. None:
    #: the peer is the client of a server in the sandbox; it starts first, retries until the
    #: sandbox listens, and what it prints is the measurement (Execution.peer_stdout).
    ports: tuple[int, ...] = ()


@dataclass
class Execution:
    """What a backend observed of one sandbox: its output and the events it timed."""

    stdout: str = ""
    stderr: str = ""
    #: The sandbox's exit status: the code, or minus the signal that ended it (as
    #: os.waitstatus_to_exitcode gives it); None when the backend could not learn it.
    exit_code: int | None = None
    #: Set when the kernel's OOM killer ended the sandbox: the limit it hit, in words.
    oom: str | None = None
    marks: list[Mark] = field(default_factory=list)
    offsets: list[ClockOffset] = field(default_factory=list)
    #: Offsets the backend could not measure, each with why (carried to the failed phases).
    missing_offsets: list[MissingOffset] = field(default_factory=list)
    #: Set when the sandbox itself failed (could not be created, timed out, was killed).
    error: str | None = None
    #: Labels the backend adds to every sample of this execution, e.g. {"accel": "tcg"}.
    labels: dict[str, str] = field(default_factory=dict)
    #: The marks this backend observes when all goes well, so a failure can name what it missed.
    planned: tuple[str, ...] = ()
    #: Marks that by design never happen in this sandbox, each with why (a pod on a KWOK fake
    #: node runs nothing: no container start, no workload stamp). A phase bounded by one is
    #: recorded as skipped with that reason: not measured, and not a failure.
    not_applicable: dict[str, str] = field(default_factory=dict)
    #: What the case's peer printed (a peer that measures: Peer.ports empty), once it exited.
    peer_stdout: str = ""
    #: Values the backend measured itself, beside the workload's (the kubelet's own
    #: sandbox creation time, say); recorded only when the workload's output parses.
    extra: list[Value] = field(default_factory=list)
    #: What the host measured of the running sandbox (a case with ``observe``); when it could
    #: not, ``footprint_error`` says why.
    footprint: HostFootprint | None = None
    footprint_error: str | None = None
    #: The same on a cluster, from the node's kubelet (a pod's processes are not the harness's
    #: to read).
    pod_footprint: PodFootprint | None = None

    def relate(self, offset: ClockOffset | MissingOffset) -> None:
        """Add an offset between two clocks, measured or with why it is missing."""
        if isinstance(offset, ClockOffset):
            self.offsets.append(offset)
        else:
            self.missing_offsets.append(offset)

    def mark(self, name: str, clock: Clock, ns: int) -> None:
        self.marks.append(Mark(name, clock, ns))

    def mark_now(self, name: str) -> None:
        """The event happens now: read on the monotonic clock (for phases on this host) and
        the wall clock (to meet a stamp taken inside the sandbox)."""
        self.mark(name, Clock.HOST_MONOTONIC, time.monotonic_ns())
        self.mark(name, Clock.HOST_REALTIME, time.time_ns())

    def mark_monotonic(self, name: str, monotonic_ns: int) -> None:
        """An event read on the monotonic clock (a pidfd's wake), also put on the wall clock
        by the two clocks' difference read now, to meet a stamp taken inside the sandbox."""
        self.mark(name, Clock.HOST_MONOTONIC, monotonic_ns)
        self.mark(name, Clock.HOST_REALTIME, monotonic_ns + time.time_ns() - time.monotonic_ns())

    def not_after(self, name: str, monotonic_ns: int) -> None:
        """Move the host marks ``name`` back to ``monotonic_ns`` if they were taken later.

        An orchestrator's create call is marked by the thread that made it, after the answer
        arrived; on a loaded host the watch thread can receive the object's first events
        before that thread runs again. The object existed when its first event was received,
        so that receive time bounds the create from above, and every phase read from the
        same watch stays non-negative. Both host clocks move by the same amount: they run
        at one rate over milliseconds."""
        marks = {m.clock: m for m in self.marks if m.name == name}
        monotonic = marks.get(Clock.HOST_MONOTONIC)
        if monotonic is None or monotonic.ns <= monotonic_ns:
            return
        shift = monotonic.ns - monotonic_ns
        host = (Clock.HOST_MONOTONIC, Clock.HOST_REALTIME)
        self.marks = [dataclasses.replace(m, ns=m.ns - shift)
                      if m.name == name and m.clock in host else m for m in self.marks]

    def exit_reason(self) -> str | None:
        """Why the sandbox's exit status makes its samples fail, or None for a clean exit."""
        if self.oom is not None:
            return f"killed by the OOM killer ({self.oom})"
        code = self.exit_code
        if code is None or code == 0:
            return None
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "an unknown signal"
            return f"killed by signal {-code} ({name})"
        return f"the workload exited with code {code}"

    def raw(self) -> str:
        """The output as kept with a failed sample."""
        text = self.stdout or ""
        if self.stderr:
            text += "\n--- stderr ---\n" + self.stderr
        if self.peer_stdout:
            text += "\n--- the peer's stdout ---\n" + self.peer_stdout
        return text


@dataclass
class Burst:
    """Sandboxes of one case started together (a concurrency level), as a backend ran them."""

    #: One per sandbox, in the order they were asked for (the arrival schedule's order).
    executions: list[Execution]
    #: The harness's own CPU time (user + system, all its threads) from the start of the
    #: burst's threads (the sandboxes' set-up included) until the last sandbox was deleted,
    #: in seconds.
    harness_cpu_s: float
    #: Wall time of the same span, in seconds.
    wall_s: float
    #: How late each request was against its scheduled arrival, counted from the moment every
    #: sandbox was set up and ready, in seconds: the harness's own delay (waking threads,
    #: spawning the runtimes' processes); None where a sandbox was never requested.
    lateness_s: list[float | None] = field(default_factory=list)
    #: Each execution's sandbox id, where the backend started more sandboxes than it was
    #: given ids (a cluster's fan-out: every id once per node); empty: the ids it was given.
    sandbox_ids: list[str] = field(default_factory=list)
