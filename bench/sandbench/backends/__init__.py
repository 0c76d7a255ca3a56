"""The backend registry: where sandboxes run, by name. Adding one never touches a workload.

``BACKENDS`` maps each name to the function that makes it, so the names offered on the
command line and the backends ``create`` can make are one list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from sandbench.backends.base import Backend, BackendError, BackendInputError, Finding
from sandbench.backends.local import LocalBackend
from sandbench.spec import KubernetesSettings, Resources

#: Makes a backend from the cache directory, the spec's resources, the run id and the
#: kubernetes backend's settings (ignored by the others).
Factory = Callable[[Path, Resources, str, KubernetesSettings], Backend]


def _local(cache_dir: Path, resources: Resources, run_id: str,
           kubernetes: KubernetesSettings) -> Backend:
    return LocalBackend(cache_dir, resources, run_id)


def _kubernetes(cache_dir: Path, resources: Resources, run_id: str,
                kubernetes: KubernetesSettings) -> Backend:
    # Imported here: the kubernetes client is slow to import and local runs need none of it.
    from sandbench.backends.kubernetes import KubernetesBackend

    return KubernetesBackend(kubernetes, resources, run_id, cache_dir)


BACKENDS: dict[str, Factory] = {"local": _local, "kubernetes": _kubernetes}
#: Each backend in a few words, for ``--help``; one entry per name of BACKENDS.
DESCRIPTIONS: dict[str, str] = {
    "local": "this host: runtimes run directly, QEMU VMs too",
    "kubernetes": "a cluster through its kubeconfig: a runtime is a RuntimeClass or KubeVirt",
}
if DESCRIPTIONS.keys() != BACKENDS.keys():
    raise ValueError(f"backend descriptions {sorted(DESCRIPTIONS)} do not match the backends "
                     f"{sorted(BACKENDS)}")


def create(name: str, *, cache_dir: Path, resources: Resources, run_id: str = "adhoc",
           kubernetes: KubernetesSettings | None = None) -> Backend:
    """The named backend; ``kubernetes`` carries that backend's settings."""
    factory = BACKENDS.get(name)
    if factory is None:
        raise BackendInputError(f"unknown backend {name!r}; known backends: "
                                f"{', '.join(BACKENDS)}")
    return factory(cache_dir, resources, run_id, kubernetes or KubernetesSettings())


__all__ = ["BACKENDS", "DESCRIPTIONS", "Backend", "BackendError", "BackendInputError", "Factory", "Finding",
           "create"]
