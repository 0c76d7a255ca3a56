"""A stand-in for KubeVirt's controllers, for the cluster tests only: none of virt-operator,
virt-controller, virt-handler or virt-launcher can run here (no images, no KVM).

For each VMI in one namespace it does, through the real API, what KubeVirt's pieces do that the
harness observes: moves status.phase through Pending, Scheduling, Scheduled, Running and
Succeeded (with phaseTransitionTimestamps), and creates a "launcher" pod labelled
kubevirt.io/created-by=<vmi uid> and owned by the VMI, whose container is named
guest-console-log. That container runs the VMI's workload (the command the guest protocol put
on its kernel command line, decoded), with the guest init's console markers around it, so its
log, read with timestamps, is what a guest's serial console log would be, kernel aside (the
"kernel" line is a shell echo). It proves the harness's side of the contract: the watch, the
phases, the launcher pod lookup, the log, the markers, the node clock offset, cleanup. It proves
nothing about KubeVirt itself or about a real guest's boot times.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import shlex
import threading
import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from sandbench.backends.kubernetes.api import Apis
from sandbench.backends.kubernetes.kubevirt.manifests import CREATED_BY, GROUP, PLURAL, VERSION

GUEST = r"""
echo "[    0.000000] Linux version stand-in (a shell, not a guest kernel)"
echo "SANDBENCH-INIT $NONCE"
echo "SANDBENCH-BEGIN $NONCE"
"$@" 2>/scratch/stderr
rc=$?
echo "SANDBENCH-END $NONCE rc=$rc"
echo "SANDBENCH-STDERR $NONCE"
cat /scratch/stderr
echo "SANDBENCH-STDERR-END $NONCE"
"""


def kernel_params(vmi: dict[str, Any]) -> dict[str, str]:
    args = vmi["spec"]["domain"]["firmware"]["kernelBoot"]["kernelArgs"]
    return dict(word.partition("=")[::2] for word in args.split() if "=" in word)


def _words(b64: str) -> list[str]:
    return shlex.split(base64.b64decode(b64).decode()) if b64 else []


def launcher_pod(vmi: dict[str, Any], image: str) -> dict[str, Any]:
    params = kernel_params(vmi)
    env = [{"name": "NONCE", "value": params["sandbench_nonce"]}]
    env += [{"name": k, "value": v} for k, _, v in
            (word.partition("=") for word in _words(params.get("sandbench_env", "")))]
    meta = vmi["metadata"]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"virt-launcher-{meta['name']}-{secrets.token_hex(3)}"[:63],
            "labels": {**meta.get("labels", {}), "kubevirt.io": "virt-launcher",
                       CREATED_BY: meta["uid"]},
            "ownerReferences": [{"apiVersion": f"{GROUP}/{VERSION}",
                                 "kind": "VirtualMachineInstance", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True,
                                 "blockOwnerDeletion": True}]},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": vmi["spec"].get("nodeSelector", {}),
            "containers": [{
                "name": "guest-console-log", "image": image, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", GUEST, "guest"] + _words(params["sandbench_argv"]),
                "env": env,
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"},
                                 {"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "data", "emptyDir": {}}],
            "dnsPolicy": "Default", "enableServiceLinks": False,
            "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
        },
    }


class StandIn(threading.Thread):
    def __init__(self, apis: Apis, namespace: str, image: str) -> None:
        super().__init__(name="kubevirt-stand-in", daemon=True)
        self.apis = apis
        self.namespace = namespace
        self.image = image
        self.stopped = threading.Event()
        self.handled: dict[str, str] = {}
        """VMI uid -> the phase it was last given."""
        self.errors: list[str] = []

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self._pass()
            except ApiException as exc:
                if exc.status != 404:  # the namespace or VMI went away: nothing to do
                    self.errors.append(f"{exc.status} {exc.reason}")
            time.sleep(0.2)

    def _pass(self) -> None:
        found: Any = self.apis.custom.list_namespaced_custom_object(GROUP, VERSION,
                                                                     self.namespace, PLURAL)
        for vmi in found.get("items", []):
            if not vmi["metadata"].get("deletionTimestamp"):
                self._step(vmi)

    def _set_phase(self, vmi: dict[str, Any], phase: str) -> None:
        status = vmi.get("status") or {}
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        stamps = [*(status.get("phaseTransitionTimestamps") or []),
                  {"phase": phase, "phaseTransitionTimestamp": now}]
        self.apis.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, vmi["metadata"]["name"],
            {"status": {"phase": phase, "phaseTransitionTimestamps": stamps}})
        self.handled[vmi["metadata"]["uid"]] = phase

    def _pod_phase(self, uid: str) -> str | None:
        pods = self.apis.core.list_namespaced_pod(self.namespace,
                                                  label_selector=f"{CREATED_BY}={uid}").items
        return pods[0].status.phase if pods and pods[0].status else None

    def _step(self, vmi: dict[str, Any]) -> None:
        uid = vmi["metadata"]["uid"]
        phase = self.handled.get(uid)
        if phase is None:
            self._set_phase(vmi, "Pending")  # as KubeVirt's admission webhook
        elif phase == "Pending":  # as virt-controller
            self.apis.core.create_namespaced_pod(self.namespace, launcher_pod(vmi, self.image))
            self._set_phase(vmi, "Scheduling")
        else:
            self._follow_pod(vmi, uid, phase)

    def _follow_pod(self, vmi: dict[str, Any], uid: str, phase: str) -> None:
        pod = self._pod_phase(uid)
        if phase == "Scheduling" and pod in ("Running", "Succeeded", "Failed"):
            self._set_phase(vmi, "Scheduled")  # as virt-handler
            vmi = self.apis.custom.get_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, self.namespace, PLURAL, vmi["metadata"]["name"])
            self._set_phase(vmi, "Running")
        elif phase == "Running" and pod in ("Succeeded", "Failed"):
            self._set_phase(vmi, "Succeeded" if pod == "Succeeded" else "Failed")
