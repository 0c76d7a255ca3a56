"""The guest's serial console as KubeVirt logs it: the ``guest-console-log`` container of the
VMI's virt-launcher pod (label kubevirt.io/created-by=<vmi uid>).

Read with ``timestamps=True``, each line carries the RFC 3339 time (nanoseconds) at which the
node's container runtime read it from that container's output: the node's CLOCK_REALTIME, so
the marks made from it are on Clock.NODE_REALTIME and a phase relates them to the harness's
clock only through a measured offset. The line's text is what the guest wrote (less its \\r),
parsed by the same guest_protocol.read_console the local qemu runtime uses.
"""

from __future__ import annotations

import calendar
import json
import re
from typing import Any

from kubernetes.client.exceptions import ApiException

from sandbench.backends.guest_protocol import ConsoleLine
from sandbench.backends.kubernetes.api import api_message
from sandbench.backends.kubernetes.kubevirt.manifests import CREATED_BY
from sandbench.errors import SandboxFailed

CONTAINER = "guest-console-log"
#: The launcher pod's container that runs virt-launcher, virtqemud and QEMU.
COMPUTE = "compute"
#: libvirt's first line in a domain's QEMU log, which virt-launcher forwards to its own output
#: (subcomponent "qemu"): "... starting up libvirt version: 11.3.0, package: 1 (Debian),
#: qemu version: 10.0.2Debian 1:10.0.2+ds-1, kernel: ..., hostname: ...".
_STARTING_UP = re.compile(r"starting up libvirt version: (?P<libvirt>[^,]+)"
                          r"(?:, package: (?P<package>.*?))?, qemu version: (?P<qemu>.*?)"
                          r"(?:, kernel: |, hostname: |$)")
_STAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
                    r"(Z|[+-]\d\d:\d\d)$")


class ConsoleUnavailable(SandboxFailed):
    """The serial console log cannot be read (no launcher pod, or the log is disabled)."""


def rfc3339_ns(stamp: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time with up to nine fractional digits
    (datetime keeps only six)."""
    match = _STAMP.match(stamp)
    if match is None:
        raise ValueError(f"{stamp!r} is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def parse_log(text: str) -> list[ConsoleLine]:
    """A container log read with timestamps=True, as console lines on the node's clock.
    A line without a parseable stamp (never seen; a torn final line at worst) is kept with
    the previous line's time, so no output is lost."""
    lines: list[ConsoleLine] = []
    for raw in text.splitlines():
        stamp, _, rest = raw.partition(" ")
        try:
            ns = rfc3339_ns(stamp)
        except ValueError:
            ns, rest = (lines[-1].ns if lines else 0), raw
        lines.append(ConsoleLine(ns, rest.rstrip("\r")))
    return lines


def launcher_pod(core: Any, namespace: str, vmi_uid: str) -> dict[str, Any] | None:
    """The VMI's virt-launcher pod (the newest, should there be more than one)."""
    found = core.list_namespaced_pod(namespace, label_selector=f"{CREATED_BY}={vmi_uid}")
    pods = sorted(found.items, key=lambda p: str(p.metadata.creation_timestamp or ""))
    if not pods:
        return None
    return dict(core.api_client.sanitize_for_serialization(pods[-1]))


def has_console_log(pod: dict[str, Any]) -> bool:
    """Whether the launcher pod runs the console logger. KubeVirt v1.7.0 adds it as a native
    sidecar (an init container with restartPolicy Always, virt-controller's
    serialconsolelog.go); older releases as an ordinary container. Either is read the same."""
    spec = pod.get("spec") or {}
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    return any(c.get("name") == CONTAINER for c in containers)


def read(core: Any, namespace: str, pod: dict[str, Any]) -> list[ConsoleLine]:
    """The whole console so far, timestamped; raises ConsoleUnavailable."""
    name = pod["metadata"]["name"]
    if not has_console_log(pod):
        raise ConsoleUnavailable(f"launcher pod {name} has no {CONTAINER} container: the "
                                 "serial console log is disabled on this cluster or VMI (set "
                                 "kubernetes.kubevirt.guest_ssh to read the guest over SSH)")
    try:
        text = core.read_namespaced_pod_log(name, namespace, container=CONTAINER,
                                            timestamps=True)
    except ApiException as exc:
        raise ConsoleUnavailable(f"cannot read {name}/{CONTAINER}: {api_message(exc)}") from exc
    return parse_log(str(text))


def launcher_versions(text: str) -> dict[str, str] | None:
    """The libvirt and QEMU versions a launcher pod's compute container log names (libvirt's
    "starting up" line of the domain's QEMU log, as virt-launcher forwards it), with that line;
    None when the log has no such line."""
    for raw in text.splitlines():
        message = raw
        if raw.startswith("{"):
            try:
                message = str(json.loads(raw).get("msg", ""))
            except (ValueError, AttributeError):
                pass
        match = _STARTING_UP.search(message)
        if match is not None:
            # QEMU's version and its package run together ("10.0.2Debian 1:10.0.2+ds-1").
            qemu = match["qemu"].strip()
            number = re.match(r"\d+(?:\.\d+)+", qemu)
            found = {"libvirt": match["libvirt"].strip(),
                     "qemu": number.group(0) if number else qemu, "line": message.strip()}
            if match["package"]:
                found["libvirt_package"] = match["package"].strip()
            if number and qemu[number.end():].strip():
                found["qemu_package"] = qemu[number.end():].strip()
            return found
    return None


def read_versions(core: Any, namespace: str, pod: dict[str, Any]) -> dict[str, str] | None:
    """launcher_versions of the pod's compute container; None when it has not said (raises
    what the API client raises)."""
    text = core.read_namespaced_pod_log(pod["metadata"]["name"], namespace, container=COMPUTE)
    return launcher_versions(str(text))
