"""Settings of where sandboxes run, as a spec gives them: each sandbox's resources, the
kubernetes backend's settings (with KubeVirt's) and a machine reached over SSH.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbench.spec.nodes import parse_nodes


class Strict(BaseModel):
    # strict: YAML's true is not 1, "5" is not 5; a number where a number is meant.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Resources(Strict):
    """What each sandbox may use, the same for every runtime so they are comparable."""

    cpus: float = Field(1.0, gt=0, le=1024, allow_inf_nan=False)
    """CPUs per sandbox (a cgroup quota for containers, vCPUs for VMs). One keeps a 2-core
    host's other core free for the harness. At most 1024, more than a host has: a quota or
    a vCPU count past it is a typo, not an experiment."""

    memory_mib: int = Field(512, gt=16, le=16 * 1024 * 1024)
    """Memory limit per sandbox in MiB; enough for fio's buffers at the default sizes. At most
    16 TiB, more than a host has (a cgroup limit past it is a typo)."""


class SshTarget(Strict):
    """A machine reached over SSH (paramiko), its host key checked against ``known_hosts`` or
    ``fingerprint``: an unknown or changed key is an error, never accepted."""

    host: str
    """Address or name; for a KubeVirt guest (reached through a port-forward) only the name
    its key is filed under in known_hosts."""

    user: str = "root"
    """Login name; root because the node facts (KSM, kata-runtime env) are root's to read."""

    port: int = Field(22, ge=1, le=65535)
    """TCP port of sshd (for a KubeVirt guest: the port forwarded to in its launcher pod)."""

    key_file: str | None = None
    """Private key file; None: the SSH agent and ~/.ssh's default keys."""

    known_hosts: str | None = None
    """known_hosts file the host key must be in; None: ~/.ssh/known_hosts (unless a
    fingerprint is given)."""

    fingerprint: str | None = Field(None, pattern=r"^SHA256:[A-Za-z0-9+/]{43}=?$")
    """The host key's SHA256 fingerprint as ``ssh-keygen -lf`` prints it (SHA256:...); given,
    it is the only key accepted and known_hosts is not read."""


class KubevirtSettings(Strict):
    """How the kubernetes backend runs runtimes of kind ``kubevirt`` (one VirtualMachineInstance
    per sandbox, booting the guest the local qemu runtime boots)."""

    containerdisk_image: str | None = None
    """Image of the workload disk; None: the name `sandbench image build` gives it, which must
    then be on the node or in a registry under that name."""

    datadisk_image: str | None = None
    """Image of the empty ext4 /data disk; None: the built one's name."""

    kernelboot_image: str | None = None
    """Image holding the guest kernel and initrd; None: the built one's name."""

    controller_timeout_s: float = Field(30.0, gt=0)
    """How long a new VMI may go unprocessed by KubeVirt (no phase past Pending, no launcher
    pod) before the harness says KubeVirt is not running: virt-controller acts in well under
    a second, so 30 s only ever catches a missing or stuck controller."""

    guest_ssh: SshTarget | None = None
    """Reach the guest over SSH through a port-forward to its launcher pod, for clusters whose
    serial console log is disabled; needs a guest with sshd (sandbench's own guest has none)."""


class KubernetesSettings(Strict):
    """Where and how the kubernetes backend runs pods; each can also be given as a flag."""

    kubeconfig: str | None = None
    """Path of a kubeconfig; None: $KUBECONFIG, then ~/.kube/config, then in-cluster config."""

    context: str | None = None
    """kubeconfig context; None: the current one."""

    node: str | None = None
    """Node every pod is pinned to; None: the first Ready node every RuntimeClass can use."""

    nodes: str | None = None
    """Fan-out: the nodes every burst runs on at once, each getting the burst's pods (so
    ``concurrency: [4]`` on three nodes is twelve pods together): ``all`` (every Ready node
    without a cordon or NoSchedule/NoExecute taint that the RuntimeClasses' scheduling
    admits), a comma list of names, or a label selector (``role=bench``; ``selector:KEY`` for a
    bare key). Makes concurrency an axis (every start sample labelled with its node, even at
    [1]); None: pods run on ``node``, one at a time unless ``concurrency`` says otherwise."""

    image: str | None = None
    """Workload image reference; None: the name `sandbench image build` gives, which must
    then be present on the node (imported, or pushed to a registry under that name)."""

    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """imagePullPolicy of every pod. Never on a cluster whose image was imported; a cold pull
    needs IfNotPresent (the kubelet pulls what is missing) or Always."""

    pull: Literal["warm", "cold", "both"] = "warm"
    """The image's state on the node before each pod of the start workload: warm (present),
    cold (removed first, so the kubelet pulls it) or both (every round measures each, labelled
    ``pull``). Warm is the default because the other start phases are about the runtime, not
    the registry; with ``cri_endpoint`` it is verified before every pod, not assumed."""

    cri_endpoint: str | None = None
    """The node's CRI socket as crictl's --runtime-endpoint takes it (e.g.
    unix:///run/containerd/containerd.sock), for ImageStatus before each start pod and
    RemoveImage for a cold one. crictl runs on the harness's host, so the harness must run on
    the node (as on the test cluster) unless ``cri_over_ssh``; None: the image's state is not
    verified, and the run says so. Needed for a cold pull."""

    cri_over_ssh: bool = False
    """Run crictl on the node through ``ssh`` (host key checked as for the node facts)
    instead of on the harness's host: for a harness off the node."""

    crictl: str = "crictl"
    """crictl binary (a path, or a name on PATH) that speaks to ``cri_endpoint``; Debian has
    none: tests/cluster/build-crictl.sh builds v1.34.0 (Kubernetes 1.34's) from the Go module
    proxy."""

    cri_timeout_s: float = Field(120.0, gt=0, le=3600)
    """Seconds one crictl call may take: a warm state may need a whole pull of the image."""

    schedule_timeout_s: float = Field(30.0, gt=0)
    """How long a pod may stay unschedulable before the runtime is failed with the
    scheduler's reason: long enough for a busy scheduler, short of the round timeout."""

    clock_samples: int = Field(20, ge=3, le=1000)
    """Clock-offset exchanges per runtime; the one with the smallest round trip is kept."""

    kubelet_metrics: bool = True
    """Read the kubelet's own sandbox-creation and pod-start histograms around each start
    round (needs nodes/proxy get); skipped with a note when refused."""

    kubelet_url: str | None = None
    """Read the kubelet's metrics from this URL instead of through the API server (for a
    harness on the node, or an API server that will not proxy to the node's address, as
    with a node named 127.0.0.1); its certificate is not verified."""

    peer_runtime: Literal["default", "measured"] = "default"
    """What the net workload's peer pods run under: ``default``, no runtimeClassName (the
    node's default handler, runc on the test cluster), so only the measured pod's
    RuntimeClass differs between runtimes and each is compared against one peer; or
    ``measured``, the same RuntimeClass as the pod it talks to (both ends pay the sandbox,
    as two sandboxed services would). Samples say which (``peer_runtime``)."""

    kubevirt: KubevirtSettings = Field(default_factory=KubevirtSettings)
    """Settings of the runtimes of kind kubevirt (runtimeclasses/kubevirt)."""

    ssh: SshTarget | None = None
    """The node, reached over SSH, for facts the API does not give (kernel command line, CPU
    governor, KSM, THP, kata-runtime env); None: only what the API says about the node."""

    @field_validator("nodes")
    @classmethod
    def _nodes_spelled(cls, value: str | None) -> str | None:
        if value is not None:
            parse_nodes(value)
        return value

    @model_validator(mode="after")
    def _pull_can_be_had(self) -> KubernetesSettings:
        if self.nodes is not None and self.node is not None:
            raise ValueError(f"node {self.node!r} pins every pod to one node and nodes "
                             f"{self.nodes!r} fans bursts out over several; give one of them")
        if self.cri_over_ssh and self.ssh is None:
            raise ValueError("cri_over_ssh true needs ssh, the node reached over SSH (host, "
                             "user, key); give ssh, or leave cri_over_ssh out")
        if self.pull == "warm":
            return self
        if self.cri_endpoint is None:
            raise ValueError(f"pull {self.pull!r} removes the image from the node before a pod, "
                             "which needs the node's CRI: give cri_endpoint (--cri-endpoint), "
                             "or pull 'warm'")
        if self.pull_policy == "Never":
            raise ValueError(f"pull {self.pull!r} needs pull_policy IfNotPresent or Always (a "
                             "removed image must be pulled), not 'Never'")
        return self
