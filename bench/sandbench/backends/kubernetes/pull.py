"""The image's state on the node around a timed pod start: cold or warm, made so and verified
through the node's CRI, never assumed (kube-burner #1165: preloads nobody checked made false
regressions).

Before each pod: ImageStatus of the pod's image. Cold: the exited containers of this run's
own pods that used the image are removed first (RemoveContainer): the kubelet removes a
deleted pod's containers only at its next garbage collection, up to a minute later, and until
then their root filesystems keep the image's unpacked layers, so the pull would download but
not unpack (measured: 0.1 s instead of 4 s). Another pod's exited container of it is waited
for (the kubelet removes it), a running one fails the state. Then RemoveImage if it is there,
and ImageStatus of its name and of the image ID last seen must both say absent, so that no
other name keeps the same image on the node. Warm: present, or PullImage'd by the harness
and then present. After the pod: ImageStatus again, which must find it (for cold, the
kubelet pulled it). A state that cannot be reached or confirmed fails the pod's samples with
the reason; the pod is then not created.

Without the node's CRI (no ``cri_endpoint``) only warm can be asked for, and it is not
verified: every sample says so (``pull_check=none``) and so do run.json and the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sandbench.backends.kubernetes.cri import CriError, ImageStatus, NodeCri

#: The pull_check label: how the state a sample's ``pull`` label names was established.
VERIFIED = "cri-imagestatus"
UNVERIFIED = "none"
#: How long a container of this run's deleted pod may take to stop (the kubelet stops it
#: after the pod left the API), or another's exited one to be removed (the kubelet's container
#: garbage collection runs every minute), before a cold state gives up on it.
RELEASE_WAIT_S = 90.0


class StateNotReached(Exception):
    """The image could not be put in, or confirmed in, the state asked for."""


@dataclass
class PullStates:
    """Sets and checks one image's state on one node, pod after pod."""

    image: str
    cri: NodeCri | None
    #: The run's namespace: exited containers of its pods are the harness's to remove.
    namespace: str = ""
    #: The image's ID the last time ImageStatus found it: checked absent as well, for cold.
    known_id: str | None = None
    #: Pods whose state was verified, by state (for run.json).
    verified: dict[str, int] = field(default_factory=dict)

    def before(self, state: str) -> dict[str, str]:
        """Make the state so and verify it; the sample labels that say what it was."""
        if self.cri is None:
            if state != "warm":  # the spec refuses this; a programming error if seen here
                raise StateNotReached(f"pull {state!r} needs the node's CRI (cri_endpoint)")
            return {"pull": state, "pull_check": UNVERIFIED}
        try:
            found = self._status(self.image)
            if state == "cold":
                self._make_cold(found)
                return {"pull": state, "pull_check": VERIFIED}
            if not found.present:
                self.cri.pull(self.image)
                found = self._status(self.image)
                if not found.present:
                    raise StateNotReached(f"warm not reached: ImageStatus finds no {self.image} "
                                          "even after PullImage")
        except CriError as exc:
            raise StateNotReached(f"{state} not verified: {exc}") from None
        return {"pull": state, "pull_check": VERIFIED, **size_labels(found)}

    def _make_cold(self, found: ImageStatus) -> None:
        assert self.cri is not None
        if self.known_id:
            self._release(self.known_id)
        if found.present:
            self.cri.remove(self.image)
        for ref in dict.fromkeys(r for r in (self.image, self.known_id) if r):
            if self.cri.status(ref).present:
                raise StateNotReached(f"cold not reached: ImageStatus still finds {ref} after "
                                      f"RemoveImage of {self.image}")

    def _release(self, image_id: str) -> None:
        """Remove this run's exited containers of the image, once the kubelet has stopped
        those of pods just deleted (a pod deleted at grace 0 leaves the API before its
        container stops). Anyone else's running container fails the state at once; anyone
        else's exited one is waited for, as the kubelet's garbage collection removes it
        once its pod is gone."""
        assert self.cri is not None
        deadline = time.monotonic() + RELEASE_WAIT_S
        while True:
            users = [c for c in self.cri.containers() if c.image_id == image_id]
            others = [c for c in users if c.namespace != self.namespace]
            blocking = [c for c in others if not c.exited]
            waiting = [c for c in users if not c.exited or c.namespace != self.namespace]
            if blocking or (waiting and time.monotonic() > deadline):
                container = (blocking or waiting)[0]
                raise StateNotReached(
                    f"cold not reached: container {container.id[:13]} of pod "
                    f"{container.namespace}/{container.pod} ({container.state}) uses the image, "
                    "so its layers stay on the node")
            if not waiting:
                break
            time.sleep(0.5)
        for container in users:
            self.cri.remove_container(container.id)

    def after(self, state: str) -> dict[str, str]:
        """The pod ran: its image must be on the node now; the labels that describe it."""
        if self.cri is None:
            return {}
        try:
            found = self._status(self.image)
        except CriError as exc:
            raise StateNotReached(f"{state}: the image's state after the pod not read: "
                                  f"{exc}") from None
        if not found.present:
            raise StateNotReached(f"{state}: ImageStatus finds no {self.image} after the pod "
                                  "ran (removed meanwhile by someone else?)")
        self.verified[state] = self.verified.get(state, 0) + 1
        return size_labels(found)

    def _status(self, ref: str) -> ImageStatus:
        assert self.cri is not None
        found = self.cri.status(ref)
        if found.present and found.image_id:
            self.known_id = found.image_id
        return found

    def facts(self, asked: str, endpoint_runtime: str | None) -> dict[str, Any]:
        """How the states were made and checked, for run.json and the report."""
        if self.cri is None:
            return {"asked": asked, "verified": False,
                    "how": "not verified: no kubernetes.cri_endpoint, so the node's CRI was not "
                           "asked; the image was whatever the node had (warm assumed)"}
        return {
            "asked": asked, "verified": True, "image": self.image,
            "crictl": self.cri.crictl, "endpoint": self.cri.endpoint,
            "runtime": endpoint_runtime, "pods_verified": dict(self.verified),
            "how": "before every start pod the node's CRI was asked (ImageStatus, crictl "
                   "inspecti): warm = the image present (PullImage'd by the harness first when "
                   "it was not); cold = this run's exited containers of the image removed "
                   "(RemoveContainer: they would keep its unpacked layers), RemoveImage (crictl "
                   "rmi), then ImageStatus of its name and of its image ID both absent. After "
                   "every pod ImageStatus found it present. Samples carry pull=cold|warm and "
                   "pull_check=cri-imagestatus",
        }


def size_labels(found: ImageStatus) -> dict[str, str]:
    """The image's size and layer count as sample labels (those the runtime reported)."""
    labels = {}
    if found.size_bytes is not None:
        labels["image_size"] = str(found.size_bytes)
    if found.layers is not None:
        labels["image_layers"] = str(found.layers)
    return labels
