"""The node's CRI image service, asked through crictl: ImageStatus (`crictl inspecti`),
RemoveImage (`crictl rmi`) and PullImage (`crictl pull`).

This is how the harness knows, rather than assumes, whether a pod's image is on its node:
the same call the kubelet makes before it decides to pull. crictl runs on the harness's host,
so the harness must run on the node (as it does on the test cluster), or reach the node over
SSH: every call is an argv handed to a ``Run``, here (``run_here``) or on the node through the
spec's ``kubernetes.ssh`` (``over_ssh``: the same host-key checks as the node facts).

The parsers are pure functions of crictl's exit status and output (golden files in
tests/data/crictl/, captured from crictl v1.34.0 and containerd 1.6.20).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any, Callable

from sandbench.errors import RunFailed
from sandbench.facts import ssh

#: What crictl says when ImageStatus answers without an image (cri-tools' inspecti).
NOT_PRESENT = "no such image"


class CriError(RunFailed):
    """A crictl call that failed: the node's CRI could not be asked, or refused."""


@dataclass(frozen=True)
class Answer:
    """What a command printed and how it ended."""

    returncode: int
    stdout: str
    stderr: str


#: Runs an argv where the CRI socket is, within a timeout in seconds.
Run = Callable[[list[str], float], Answer]


def run_here(argv: list[str], timeout_s: float) -> Answer:
    """Run on the harness's own host (a harness on the node)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except FileNotFoundError:
        raise CriError(f"crictl {argv[0]!r} not found; give its path (kubernetes.crictl, "
                       "--crictl), e.g. the one tests/cluster/build-crictl.sh builds") from None
    except subprocess.TimeoutExpired:
        raise CriError(f"{' '.join(argv[-2:])} took more than {timeout_s:.0f} s") from None
    return Answer(done.returncode, done.stdout, done.stderr)


def over_ssh(target: ssh.Endpoint) -> Run:
    """Run on the node over SSH: a connection per call, its host key checked every time
    (a handful of calls per pod, none inside a timed phase)."""
    def run(argv: list[str], timeout_s: float) -> Answer:
        try:
            with ssh.connect(target) as connection:
                done = ssh.run(connection, shlex.join(argv), timeout_s)
        except ssh.SshError as exc:
            raise CriError(f"crictl over SSH: {exc}") from None
        return Answer(done.exit_status, done.stdout, done.stderr)
    return run


@dataclass(frozen=True)
class ImageStatus:
    """ImageStatus's answer for one reference: present or not, and what it is."""

    present: bool
    image_id: str | None = None
    #: The size the runtime reports for the image (containerd: its content, compressed).
    size_bytes: int | None = None
    #: Layers in the image's config (rootfs.diff_ids); None when the runtime gave no config.
    layers: int | None = None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _message(answer: Answer) -> str:
    """crictl's error in its own words: logrus' msg="..." when it is there."""
    line = _last_line(answer.stderr) or _last_line(answer.stdout)
    start = line.find('msg="')
    if start < 0:
        return line or f"exit status {answer.returncode}"
    body = line[start + 5:]
    end = body.rfind('"')
    return (body[:end] if end >= 0 else body).replace('\\"', '"')


def parse_status(answer: Answer) -> ImageStatus:
    """`crictl inspecti -o json REF` as an ImageStatus; raises CriError when the CRI could
    not be asked (an absent image is an answer, not an error)."""
    if answer.returncode != 0:
        message = _message(answer)
        if message.startswith(NOT_PRESENT):
            return ImageStatus(False)
        raise CriError(f"ImageStatus failed: {message}")
    try:
        found: Any = json.loads(answer.stdout)
    except json.JSONDecodeError as exc:
        raise CriError(f"crictl inspecti printed no JSON ({exc}): "
                       f"{answer.stdout[:200]!r}") from None
    if isinstance(found, list):  # several references asked for at once
        found = found[0] if found else {}
    status = found.get("status") if isinstance(found, dict) else None
    if not isinstance(status, dict) or not status.get("id"):
        raise CriError(f"crictl inspecti answered without an image status: "
                       f"{answer.stdout[:200]!r}")
    size = status.get("size")
    return ImageStatus(True, str(status["id"]), int(size) if size is not None else None,
                       _layers(found.get("info")))


def _layers(info: Any) -> int | None:
    spec = info.get("imageSpec") if isinstance(info, dict) else None
    rootfs = spec.get("rootfs") if isinstance(spec, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return len(diff_ids) if isinstance(diff_ids, list) else None


@dataclass(frozen=True)
class Container:
    """A container the node's CRI knows, running or exited, and the pod it belongs to."""

    id: str
    image_id: str
    state: str
    namespace: str
    pod: str

    @property
    def exited(self) -> bool:
        return self.state == "CONTAINER_EXITED"


def parse_containers(answer: Answer) -> list[Container]:
    """`crictl ps -a -o json` (ListContainers) as Containers."""
    check(answer, "ListContainers")
    try:
        found = json.loads(answer.stdout).get("containers") or []
    except (json.JSONDecodeError, AttributeError) as exc:
        raise CriError(f"crictl ps printed no container list ({exc}): "
                       f"{answer.stdout[:200]!r}") from None
    return [Container(str(c.get("id", "")), str(c.get("imageRef") or
                                                 (c.get("image") or {}).get("image", "")),
                      str(c.get("state", "")),
                      str((c.get("labels") or {}).get("io.kubernetes.pod.namespace", "")),
                      str((c.get("labels") or {}).get("io.kubernetes.pod.name", "")))
            for c in found if isinstance(c, dict)]


def check(answer: Answer, what: str) -> None:
    """Raise CriError unless a call that answers nothing (rmi, pull) succeeded."""
    if answer.returncode != 0:
        raise CriError(f"{what} failed: {_message(answer)}")


@dataclass(frozen=True)
class NodeCri:
    """One node's CRI, through its crictl."""

    crictl: str
    endpoint: str
    timeout_s: float
    run: Run = run_here

    def argv(self, *args: str) -> list[str]:
        # Both endpoints given and no config file read: crictl otherwise tries a list of
        # default sockets in turn, and /etc/crictl.yaml could point elsewhere.
        return [self.crictl, "--config", "/dev/null", "--runtime-endpoint", self.endpoint,
                "--image-endpoint", self.endpoint, "--timeout", f"{self.timeout_s:.0f}s", *args]

    def status(self, ref: str) -> ImageStatus:
        """ImageStatus of a reference (a name or an image ID)."""
        return parse_status(self._call(self.argv("inspecti", "-o", "json", ref)))

    def containers(self) -> list[Container]:
        """ListContainers, exited ones included."""
        return parse_containers(self._call(self.argv("ps", "-a", "-o", "json")))

    def remove_container(self, container_id: str) -> None:
        """RemoveContainer: an exited container goes, with its root filesystem's snapshot."""
        check(self._call(self.argv("rm", container_id)), f"RemoveContainer of {container_id}")

    def remove(self, ref: str) -> None:
        """RemoveImage: the image goes with every name it has on the node."""
        check(self._call(self.argv("rmi", ref)), f"RemoveImage of {ref}")

    def pull(self, ref: str) -> None:
        """PullImage: what makes an absent image warm."""
        check(self._call(self.argv("pull", ref)), f"PullImage of {ref}")

    def version(self) -> str:
        """The runtime's name and version, as the CRI Version call reports them."""
        answer = self._call(self.argv("version"))
        check(answer, "the CRI Version call")
        fields = dict(line.split(":", 1) for line in answer.stdout.splitlines() if ":" in line)
        return " ".join(fields.get(k, "").strip() for k in ("RuntimeName", "RuntimeVersion"))

    def _call(self, argv: list[str]) -> Answer:
        # The CRI's own deadline (--timeout) first, the process's a little later.
        return self.run(argv, self.timeout_s + 10)
