"""The kubernetes backend: each runtime is a RuntimeClass, each sandbox a pod.

One namespace per run, labelled with the run id; every pod labelled and pinned to one node;
one measured pod at a time (each is deleted, and gone, before the next is created), unless
concurrency is the axis: then a burst's pods start together on every selected node
(fanout.py). Start phases come from watch receive times on the harness's monotonic clock; the
in-sandbox stamp is brought onto the harness clock by an offset measured per RuntimeClass and
node (clock.py).
"""

from __future__ import annotations

import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from sandbench import image, owner
from sandbench.backends.base import Backend, BackendError, BackendInputError, Finding, Progress
from sandbench.backends.kubernetes import (access, api, classes, clock, cri, fanout, kubelet,
                                           kubevirt, manifests, netpeer, podfootprint, podstats,
                                           pull)
from sandbench.backends.kubernetes.lifecycle import (PLANNED, PodFailed, PodProgress, PodRun,
                                                     exit_code, terminated_reason)
from sandbench.backends.kubernetes.nodes import (KWOK_ANNOTATION, KWOK_FAKE, NOTHING_RUNS,
                                                 _selectors, choose_node, hostname, is_fake,
                                                 node_facts, select_nodes)
from sandbench.backends.kubernetes.watcher import RunWatch
from sandbench.facts import ssh
from sandbench.facts import node as sshfacts
from sandbench.image.inputs import PROBE_IN_IMAGE as PROBE
from sandbench.model import (Burst, Case, Clock, ClockOffset, Execution, MissingOffset, Status,
                             Value)
from sandbench.spec import KubernetesSettings, Resources

#: The start phases read across the harness's clock and a pod's (a VM's console stamps are
#: on the node's clock): what a drift of that clock's offset makes uncertain.
POD_CROSS_CLOCK = ("create_to_workload",)
VM_CROSS_CLOCK = ("create_to_kernel", "create_to_init", "create_to_workload")
#: How long deleting the run's namespace may take before cleanup gives up waiting.
NAMESPACE_DELETE_S = 120.0


class KubernetesBackend(Backend):
    name = "kubernetes"
    extra_metrics = (kubelet.RUN_PODSANDBOX, kubelet.IMAGE_PULL)
    concurrent = True

    def __init__(self, settings: KubernetesSettings, resources: Resources, run_id: str,
                 cache_dir: Path) -> None:
        self.settings = settings
        self.resources = resources
        self.run_id = run_id
        self.cache_dir = cache_dir
        self.namespace = manifests.namespace_name(run_id)
        self._apis: api.Apis | None = None
        self._watch: RunWatch | None = None
        self._node: dict[str, Any] | None = None
        #: The nodes a burst runs on (kubernetes.nodes; else the one node).
        self._fanout: list[dict[str, Any]] = []
        #: Offsets on the fan-out's other nodes, by (runtime, node name).
        self._node_offsets: dict[tuple[str, str], ClockOffset | MissingOffset] = {}
        self._image: str | None = None
        self._offsets: dict[str, ClockOffset | MissingOffset] = {}
        #: Runtimes whose offset a start phase used: measured again at the end of the run.
        self._offset_used: set[str] = set()
        self._drifts: dict[str, clock.Drift] = {}
        #: The same for the fan-out's other nodes, by (runtime, node name).
        self._node_drifts: dict[tuple[str, str], clock.Drift] = {}
        self._metrics_ok = settings.kubelet_metrics
        self._live: dict[str, PodRun] = {}
        self._namespace_created = False
        self.notes: list[str] = []
        #: (runtime, concurrency) of bursts whose pods waited for room (noted once each).
        self._waits_noted: set[tuple[str, int]] = set()
        # Runtimes of kind kubevirt (runtimeclasses/kubevirt) run as VMIs, the others as pods.
        try:
            self.vm_runtimes = set(kubevirt.runtimes())
        except ValueError as exc:
            raise BackendInputError(str(exc)) from exc
        self._vms: kubevirt.VmSandboxes | None = None
        self._ssh_facts: dict[str, Any] | None = None
        self._pulls: pull.PullStates | None = None
        self._cri_runtime: str | None = None
        #: The net workload's peer pods (netpeer.py), made once prepared.
        self._peers: netpeer.Peers | None = None

    @property
    def apis(self) -> api.Apis:
        if self._apis is None:
            try:
                self._apis = api.connect(self.settings.kubeconfig, self.settings.context)
            except api.ClusterError as exc:
                raise BackendError(str(exc)) from exc
        return self._apis

    @property
    def vms(self) -> kubevirt.VmSandboxes:
        if self._vms is None:
            self._vms = kubevirt.VmSandboxes(self.apis, self.settings, self.resources,
                                             self.run_id, self.namespace, self.cache_dir)
        return self._vms

    def known_runtimes(self) -> dict[str, str]:
        known = {name: classes.describe(m) for name, m in classes.manifests().items()}
        for name, runtime in kubevirt.runtimes().items():
            if name in known:
                raise BackendInputError(f"runtime {name!r} is declared both as a RuntimeClass "
                                        f"and as a kubevirt runtime ({runtime.source}); rename "
                                        "one")
            known[name] = kubevirt.describe(runtime)
        return known

    def check(self, runtime: str) -> Finding:
        if runtime in self.vm_runtimes:
            return self.vms.check(runtime)
        try:
            found = self.apis.node.read_runtime_class(runtime)
        except ApiException as exc:
            if api.is_not_found(exc):
                return Finding(runtime, False, f"RuntimeClass {runtime!r} does not exist in "
                                    "the cluster", fix=f"sandbench runtimeclasses apply {runtime}")
            return Finding(runtime, False, f"cannot read RuntimeClass {runtime!r}: "
                                f"{api.api_message(exc)}")
        except Exception as exc:  # unreachable API server, TLS, auth
            return Finding(runtime, False, f"cannot reach the cluster: {exc}")
        return Finding(runtime, True, f"RuntimeClass with handler {found.handler}",
                            facts={"handler": found.handler})

    # -- what doctor asks ------------------------------------------------------------------

    def server(self) -> tuple[str, str]:
        """The API server's version and where its configuration came from; raises
        BackendError when the cluster cannot be reached."""
        return str(self.apis.version.get_code().git_version), self.apis.source

    def missing_permissions(self, manifest: str = access.LEAST_PRIVILEGE
                            ) -> list[access.Permission]:
        """What the harness would need that its identity may not do (access reviews), of the
        least-privilege manifest or another shipped one (access.KUBELET_METRICS)."""
        return access.missing(self.apis, manifest=manifest)

    def node_labels(self, label: str) -> dict[str, str | None]:
        """Every node's value of ``label`` (None where it has none), by node name."""
        nodes = self.apis.core.list_node().items
        return {str(n.metadata.name): (n.metadata.labels or {}).get(label)
                for n in nodes if n.metadata is not None}

    def kubevirt_installation(self) -> kubevirt.Installation:
        """How KubeVirt is installed in the cluster (read once)."""
        return self.vms.installation

    # -- preparation ----------------------------------------------------------------------

    def prepare(self, runtimes: list[str], progress: Progress | None = None) -> None:
        report = progress or (lambda line: None)
        if self.settings.nodes is not None:
            self._fanout, left_out = select_nodes(self.apis, runtimes, self.settings.nodes)
            self.notes += left_out
            self._node = self._fanout[0]
        else:
            self._node = choose_node(self.apis, runtimes, self.settings.node)
            self._fanout = [self._node]
        self._image = self.settings.image or self._local_image_name()
        report(f"node {self._node['metadata']['name']}, image {self._image}")
        if self.settings.nodes is not None:
            report(f"fan-out over {len(self._fanout)} node(s): "
                   + ", ".join(str(n["metadata"]["name"]) for n in self._fanout))
        node_cri = self._node_cri()
        self._pulls = pull.PullStates(self._image, node_cri, self.namespace)
        report(self._pull_summary())
        # What can fail without the cluster is done before the namespace exists.
        vms = bool(self.vm_runtimes.intersection(runtimes))
        if vms:
            report(self.vms.prepare(self._hostname(), node_cri))
        if self.settings.ssh is not None:
            self._ssh_facts = self._collect_ssh_facts(self.settings.ssh)
            report(f"node facts over SSH: {sshfacts.summary(self._ssh_facts)}")
        self._create_namespace()
        self._watch = RunWatch(self.apis.core, self.namespace)
        self._watch.start()
        if vms:
            self.vms.start_watch()

    def _node_cri(self) -> cri.NodeCri | None:
        """The node's CRI, checked with its Version call; None when none is configured."""
        endpoint = self.settings.cri_endpoint
        if endpoint is None:
            return None
        run: cri.Run = cri.run_here
        if self.settings.cri_over_ssh and self.settings.ssh is not None:
            run = cri.over_ssh(self.settings.ssh)
        node_cri = cri.NodeCri(self.settings.crictl, endpoint, self.settings.cri_timeout_s, run)
        try:
            self._cri_runtime = node_cri.version()
        except cri.CriError as exc:
            raise BackendError(f"the node's CRI at {endpoint} (cri_endpoint) cannot be asked: "
                               f"{exc}") from exc
        return node_cri

    def _pull_summary(self) -> str:
        if self._cri_runtime is None:
            return "image state: warm, NOT verified (no cri_endpoint to ask the node's CRI)"
        return (f"image state: {self.settings.pull}, verified before every start pod or VMI "
                f"through "
                f"{self._cri_runtime}'s CRI ImageStatus at {self.settings.cri_endpoint}")

    def _collect_ssh_facts(self, target: Any) -> dict[str, Any]:
        try:
            return sshfacts.collect(target)
        except ssh.SshError as exc:
            raise BackendError(f"node facts over SSH (kubernetes.ssh): {exc}") from exc

    def _hostname(self) -> str:
        assert self._node is not None
        return hostname(self._node)

    def _local_image_name(self) -> str:
        built = image.load_cached(self.cache_dir)
        if built is None:
            raise BackendError("no workload image given (--image) and none built here; run "
                               "`sandbench image build` and push or import it")
        return built.name

    def _create_namespace(self) -> None:
        try:
            # The client takes plain dicts too. The owner: `sandbench gc` leaves it alone.
            body: Any = manifests.namespace(self.run_id, owner.me())
            self.apis.core.create_namespace(body)
        except ApiException as exc:
            raise BackendError(f"cannot create namespace {self.namespace!r}: "
                               f"{api.api_message(exc)}") from exc
        self._namespace_created = True
        # Pods are refused until the controller manager made the namespace's default account.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.apis.core.read_namespaced_service_account("default", self.namespace)
                return
            except ApiException:
                time.sleep(0.2)
        raise BackendError(f"namespace {self.namespace!r} got no default ServiceAccount in 60 s: "
                           "is kube-controller-manager running?")

    @property
    def node_name(self) -> str:
        if self._node is None:
            raise BackendError("the backend is not prepared; call prepare() first")
        return str(self._node["metadata"]["name"])

    def _pod(self, name: str, runtime: str, case: Case, role: str = "measured",
             port: int | None = None, node: dict[str, Any] | None = None,
             labels: dict[str, str] | None = None) -> PodRun:
        """A pod pinned to ``node`` (None: the run's node)."""
        if self._watch is None or self._image is None or self._node is None:
            raise BackendError("the backend is not prepared; call prepare() first")
        manifest = manifests.pod(
            name=name, run_id=self.run_id, runtime_class=runtime, case=case, image=self._image,
            pull_policy=self.settings.pull_policy, node=hostname(node or self._node),
            resources=self.resources, role=role, port=port, labels=labels)
        return PodRun(self.apis.core, self._watch, self.namespace, manifest,
                      self.settings.schedule_timeout_s)

    # -- clock offset ---------------------------------------------------------------------

    def offset(self, runtime: str, node: dict[str, Any] | None = None
               ) -> ClockOffset | MissingOffset:
        """This RuntimeClass's clock offset on ``node`` (None: the run's node), measured once
        per run (on the run's node again at its end, see after_last_step), or why it could
        not be. Each node has a clock of its own: a pod's stamp is read against its node's."""
        if node is not None and node["metadata"]["name"] != self.node_name:
            key = (runtime, str(node["metadata"]["name"]))
            if key not in self._node_offsets:
                self._node_offsets[key] = self._measure_offset(runtime, node)
            return self._node_offsets[key]
        if runtime not in self._offsets:
            self._offsets[runtime] = self._measure_offset(runtime)
        return self._offsets[runtime]

    def after_last_step(self) -> list[str]:
        """Measure every used offset again, before the namespace goes: a drift over the run
        is recorded per runtime, and warned of when it is more than the measurements allow."""
        for runtime in sorted(self._offset_used):
            start = self._offsets.get(runtime)
            if isinstance(start, ClockOffset):
                affects = VM_CROSS_CLOCK if runtime in self.vm_runtimes else POD_CROSS_CLOCK
                self._drifts[runtime] = clock.Drift(runtime, start,
                                                    self._measure_offset(runtime), affects)
        # Every other node of a fan-out has a clock of its own: its pods' phases were read
        # against its offset, so it is measured again too (a clock pod each, in parallel).
        again = [(key, start) for key, start in sorted(self._node_offsets.items())
                 if isinstance(start, ClockOffset) and key[0] in self._offset_used]
        by_name = {str(n["metadata"]["name"]): n for n in self._fanout}

        def remeasure(item: tuple[tuple[str, str], ClockOffset]) -> None:
            (runtime, name), start = item
            end = self._measure_offset(runtime, by_name[name])
            self._node_drifts[(runtime, name)] = clock.Drift(f"{runtime} on node {name}", start,
                                                             end, POD_CROSS_CLOCK)

        if again:
            with ThreadPoolExecutor(max_workers=len(again)) as pool:
                list(pool.map(remeasure, again))
        drifts = [*self._drifts.values(), *(d for _, d in sorted(self._node_drifts.items()))]
        return [w for d in drifts if (w := d.warning())]

    def _measure_offset(self, runtime: str, node: dict[str, Any] | None = None
                        ) -> ClockOffset | MissingOffset:
        case = Case("clock", "clock", [PROBE, "clock", str(clock.PORT)])
        name = f"sandbench-clock-{runtime}"
        if node is not None:  # another node of a fan-out: a name of its own, as short
            name += f"-{zlib.crc32(str(node['metadata']['name']).encode()):08x}"
        run = self._pod(name[:63], runtime, case, "clock", clock.PORT, node=node)
        vm = runtime in self.vm_runtimes
        if vm:  # the node's default runtime reads the node's clock, which stamps VMI logs
            del run.manifest["spec"]["runtimeClassName"]
        self._live[run.name] = run
        assert self._watch is not None
        events = self._watch.subscribe(run.name)
        try:
            progress = PodProgress(Execution())
            run.create(progress.execution)
            run.follow(events, progress, time.monotonic() + 120, until_ready=True)
            measured = clock.measure(self.apis.core, self.namespace, run.name,
                                     self.settings.clock_samples, run.pod_ip())
            return kubevirt.node_offset(measured) if vm else measured
        except Exception as exc:
            sandbox = Clock.NODE_REALTIME if vm else Clock.SANDBOX_REALTIME
            return MissingOffset(sandbox, Clock.HOST_REALTIME,
                                 f"clock offset of {runtime} not measured: {exc}")
        finally:
            self._watch.unsubscribe(run.name)
            run.delete()
            self._live.pop(run.name, None)

    # -- sandboxes ------------------------------------------------------------------------

    def execute(self, runtime: str, case: Case, sandbox_id: str, timeout_s: float) -> Execution:
        if case.peer is not None:
            return self._net_case(runtime, case, sandbox_id, timeout_s)
        if case.together is not None and runtime not in self.vm_runtimes:
            return podfootprint.together(self._held(), runtime, case, sandbox_id, timeout_s)
        offset = self.offset(runtime)
        if case.workload == "start":
            self._offset_used.add(runtime)
        if runtime in self.vm_runtimes and self._watch is not None:
            return self.vms.execute(runtime, case, sandbox_id, timeout_s, self._watch, offset)
        execution = Execution(planned=PLANNED)
        execution.relate(offset)
        if case.pull is not None and not self._pull_before(case.pull, execution):
            return execution  # failed with the reason: the pod would not be what it says
        run = self._pod(sandbox_id, runtime, case)
        assert self._watch is not None
        events = self._watch.subscribe(run.name)
        self._live[run.name] = run
        before = self._scrape() if case.workload == "start" else None
        try:
            progress = PodProgress(execution)
            run.create(execution)
            if case.observe is not None:
                podfootprint.observe(self._held(), run, events, progress, case.observe,
                                     execution, timeout_s)
                return execution
            run.follow(events, progress, time.monotonic() + timeout_s, until_ready=False)
            if case.pull is not None and self._pulls is not None:
                execution.labels.update(self._pulls.after(case.pull))
            status = run.status()
            execution.exit_code = exit_code(status)
            if terminated_reason(status) == "OOMKilled":
                execution.oom = f"memory limit {self.resources.memory_mib} MiB, as the pod's"
            execution.stdout = run.log()
            self._kubelet_value(before, case, execution)
        except (PodFailed, pull.StateNotReached) as exc:
            execution.error = str(exc)
            execution.stdout = run.log() if "create" in {m.name for m in execution.marks} else ""
        finally:
            self._watch.unsubscribe(run.name)
            run.delete()
            self._live.pop(run.name, None)
        return execution

    def execute_burst(self, runtime: str, case: Case, sandbox_ids: list[str], timeout_s: float,
                      offsets_s: list[float]) -> Burst:
        """The burst's pods on every node of the fan-out at once (fanout.py): one per id per
        node, each labelled with its node."""
        if runtime in self.vm_runtimes or case.workload != "start":
            why = ("a kubevirt runtime starts one VM at a time" if runtime in self.vm_runtimes
                   else f"workload {case.workload!r} runs one pod at a time")
            ids = fanout.pod_names(sandbox_ids, [n["metadata"]["name"] for n in self._fanout])
            return Burst([Execution(error=f"not run: {why}", labels={"node": node})
                          for _, node in ids], 0.0, 0.0, [None] * len(ids),
                         [name for name, _ in ids])
        if self._watch is None:
            raise BackendError("the backend is not prepared; call prepare() first")
        # Every node's offset before the burst (a clock pod each, in parallel the first
        # time), so none is measured while the burst's pods start. A KWOK fake node has no
        # clock to read (nothing runs there) and no phase that would use one.
        offsets: dict[str, ClockOffset | MissingOffset] = {
            str(n["metadata"]["name"]): MissingOffset(Clock.SANDBOX_REALTIME,
                                                      Clock.HOST_REALTIME, NOTHING_RUNS)
            for n in self._fanout if is_fake(n)}
        real = [n for n in self._fanout if not is_fake(n)]
        if real:
            self._offset_used.add(runtime)
            with ThreadPoolExecutor(max_workers=len(real)) as pool:
                measured = list(pool.map(lambda node: self.offset(runtime, node), real))
            offsets.update((str(n["metadata"]["name"]), o) for n, o in zip(real, measured))
        lent = fanout.Cluster(self.apis.core, self.namespace, self._watch, self._live,
                              self._burst_pod, self.resources.memory_mib)
        burst = fanout.run_fanout(lent, self._fanout, runtime, case, sandbox_ids, timeout_s,
                                  offsets_s, offsets)
        note = fanout.waited(burst)
        if note is not None and (runtime, len(sandbox_ids)) not in self._waits_noted:
            self._waits_noted.add((runtime, len(sandbox_ids)))  # the first such burst's words
            self.notes.append(f"{runtime}, concurrency {len(sandbox_ids)}: {note}")
        return burst

    def burst_width(self) -> int:
        return len(self._fanout) if self.settings.nodes is not None else 1

    def _burst_pod(self, name: str, runtime: str, case: Case, node: dict[str, Any],
                   labels: dict[str, str]) -> PodRun:
        return self._pod(name, runtime, case, node=node, labels=labels)

    # -- the net workload: its peer as pods (netpeer.py) ------------------------------------

    def _net(self) -> netpeer.Peers:
        if self._peers is None:
            if self._watch is None or self._node is None:
                raise BackendError("the backend is not prepared; call prepare() first")
            self._peers = netpeer.Peers(self.apis, self.settings.peer_runtime, self._node,
                                        self._watch, self._live, self._pod)
        return self._peers

    def peer_paths(self, runtimes: list[str]) -> tuple[str, ...]:
        try:
            return self._net().paths(_selectors(self.apis, runtimes))
        except netpeer.PeerFailed as exc:
            raise BackendError(str(exc)) from exc

    def _net_case(self, runtime: str, case: Case, sandbox_id: str,
                  timeout_s: float) -> Execution:
        if runtime in self.vm_runtimes:
            # Failed with the reason, never run: a VMI's network is not a pod's.
            return Execution(error=f"{runtime} runs as a KubeVirt VM, whose path to a peer "
                                   "pod the kubernetes backend does not measure yet")
        return self._net().execute(runtime, case, sandbox_id, timeout_s,
                                   lambda pod_case: self._pod(sandbox_id, runtime, pod_case),
                                   self.resources.memory_mib)

    def _pull_before(self, state: str, execution: Execution) -> bool:
        """Put the image in ``state`` and verify it; False (the execution failed with why)
        when that could not be done."""
        assert self._pulls is not None
        execution.labels["pull"] = state
        try:
            execution.labels.update(self._pulls.before(state))
            return True
        except pull.StateNotReached as exc:
            execution.error = f"image state {state!r} not reached before the pod: {exc}"
            return False

    def _held(self) -> podfootprint.Held:
        assert self._watch is not None
        return podfootprint.Held(self.apis.core, self.node_name, self.namespace,
                                 podstats.summary_url(self.settings.kubelet_url), self._watch,
                                 self._live, self._pod)

    def _scrape(self) -> dict[str, kubelet.Totals] | None:
        if not self._metrics_ok:
            return None
        try:
            if self.settings.kubelet_url:
                return kubelet.scrape_url(self.settings.kubelet_url)
            return kubelet.scrape_proxy(self.apis.core, self.node_name)
        except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
            self._metrics_ok = False
            reason = api.api_message(exc) if isinstance(exc, ApiException) else str(exc)
            self.notes.append(f"kubelet metrics not read ({reason}); the kubelet's own "
                              "figures are not recorded")
            return None

    def _kubelet_value(self, before: dict[str, kubelet.Totals] | None, case: Case,
                       execution: Execution) -> None:
        after = self._scrape() if before is not None else None
        if before is None or after is None:
            return
        for metric in self.extra_metrics:
            value = kubelet.round_ms(before, after, metric.name)
            if value is not None:
                execution.extra.append(Value(metric, value, clock="kubelet histogram"))
        pulls = kubelet.observations(before, after, kubelet.IMAGE_PULL.name)
        if case.pull == "cold" and pulls != 1:
            # Verified absent, yet the kubelet did not pull it once: not a cold start.
            execution.extra.append(Value(
                kubelet.IMAGE_PULL, None, status=Status.FAILED, clock="kubelet histogram",
                reason=f"the kubelet recorded {pulls} image pulls for this pod, whose image "
                       "was verified absent before it (another pod pulling on the node?)"))

    # -- cleanup --------------------------------------------------------------------------

    def cleanup(self) -> list[str]:
        deleted = []
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        for run in list(self._live.values()):
            run.delete()
            deleted.append(f"pod {run.name}")
        self._live.clear()
        if self._vms is not None:
            deleted += self._vms.cleanup()
        if self._namespace_created:
            self._delete_namespace(self.namespace)
            deleted.append(f"namespace {self.namespace}")
            self._namespace_created = False
        return deleted

    def _delete_namespace(self, name: str) -> None:
        core = self.apis.core
        if api.delete(lambda: core.delete_namespace(name, grace_period_seconds=0)):
            api.wait_gone(lambda: api.absent(lambda: core.read_namespace(name)),
                          NAMESPACE_DELETE_S, 0.5)

    def gc(self) -> list[str]:
        """Delete the namespaces of runs whose owner is dead (sandbench.owner), with what is
        in them; one whose owner still runs on this host, or ran on another (this host cannot
        tell whether it still does), is kept and said so. One without an owner (by hand, or
        from a sandbench before owners were recorded) is deleted as before."""
        selector = f"{manifests.PART_OF}=sandbench,{manifests.RUN_ID}"
        items = self.apis.core.list_namespace(label_selector=selector).items
        names, self.gc_kept = [], []
        for item in items:
            if item.metadata is None:
                continue
            name, made_by = str(item.metadata.name), manifests.namespace_owner(item)
            if made_by is not None:
                live = owner.alive(made_by)
                if live:
                    self.gc_kept.append(f"namespace {name}: its run is still going (pid "
                                        f"{made_by.get('pid')} on this host)")
                    continue
                if live is None:
                    self.gc_kept.append(
                        f"namespace {name}: its run was started on host "
                        f"{made_by.get('hostname')!r}, where it may still be going; run gc "
                        f"there, or `kubectl delete namespace {name}`")
                    continue
            names.append(name)
        for name in names:
            kubevirt.release_leftovers(self.apis, name)
            self._delete_namespace(name)
        return [f"namespace {name}" for name in names]

    # -- metadata -------------------------------------------------------------------------

    def environment(self) -> dict[str, Any]:
        version = self.apis.version.get_code()
        facts: dict[str, Any] = {
            "cluster": {"server_version": version.git_version, "platform": version.platform,
                        "api_source": self.apis.source, "namespace": self.namespace},
            "runtimes": {},
        }
        if self._node is not None:
            facts["node"] = node_facts(self._node)
            facts["host"] = {**facts["node"], "harness": "kubernetes backend"}
        # What the client was set to: a burst's creates must never wait on it.
        facts["cluster"]["client"] = fanout.CLIENT
        if self.settings.nodes is not None:
            facts["fanout"] = {"nodes_asked": self.settings.nodes,
                               "nodes": [node_facts(n) for n in self._fanout]}
            fake = [str(n["metadata"]["name"]) for n in self._fanout if is_fake(n)]
            if fake:  # said only where there are some: a real fan-out's facts stay as they were
                facts["fanout"]["fake_nodes"] = {
                    "names": fake, "rule": f"annotation {KWOK_ANNOTATION}={KWOK_FAKE} (KWOK)",
                    "recorded": "create_to_scheduled only; the runtime-side phases are skipped: "
                                + NOTHING_RUNS}
        for name, manifest in classes.manifests().items():
            facts["runtimes"][name] = self._runtime_facts(name, manifest)
        for name in sorted(self.vm_runtimes):
            facts["runtimes"][name] = self.vms.facts(name)
        if self._ssh_facts is not None:
            facts["node_ssh"] = self._ssh_facts
            facts.setdefault("host", {}).update(sshfacts.host_view(self._ssh_facts))
        facts["image"] = {"name": self._image, "pull_policy": self.settings.pull_policy,
                          "pull": self.settings.pull}
        return facts

    def final_facts(self) -> dict[str, Any]:
        offsets = {r: ({"offset_ns": o.offset_ns, "uncertainty_ns": o.uncertainty_ns,
                        "method": o.method} if isinstance(o, ClockOffset) else o.reason)
                   for r, o in self._offsets.items()}
        final: dict[str, Any] = {"clock_offsets": offsets, "notes": self.notes}
        if self._node_offsets:
            by_node: dict[str, dict[str, Any]] = {}
            for (runtime, node), o in sorted(self._node_offsets.items()):
                by_node.setdefault(node, {})[runtime] = (
                    {"offset_ns": o.offset_ns, "uncertainty_ns": o.uncertainty_ns,
                     "method": o.method} if isinstance(o, ClockOffset) else o.reason)
            final["clock_offsets_by_node"] = by_node
        if self._pulls is not None:
            final["image_state"] = self._pulls.facts(self.settings.pull, self._cri_runtime)
        if self._drifts:
            final["clock_drift"] = {r: d.record() for r, d in self._drifts.items()}
        if self._node_drifts:
            drift_by_node: dict[str, dict[str, Any]] = {}
            for (runtime, node), d in sorted(self._node_drifts.items()):
                drift_by_node.setdefault(node, {})[runtime] = d.record()
            final["clock_drift_by_node"] = drift_by_node
        if self._vms is not None:
            final["kubevirt"] = self._vms.final_facts()
        if self._peers is not None:
            final["net"] = self._peers.facts()
        return final

    def _runtime_facts(self, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        try:
            live = self.apis.api_client.sanitize_for_serialization(
                self.apis.node.read_runtime_class(name))
        except ApiException:
            return {"kind": "runtimeclass", "installed": False, "manifest_handler":
                    manifest.get("handler")}
        return {"kind": "runtimeclass", "installed": True, "handler": live.get("handler"),
                "overhead": live.get("overhead"), "scheduling": live.get("scheduling")}
