"""The backend registry: where sandboxes run, by name. Adding one never touches a workload."""

from __future__ import annotations

from pathlib import Path

from sandbench.backends.base import Availability, Backend, BackendError
from sandbench.backends.local import LocalBackend
from sandbench.spec import KubernetesSettings, Resources

BACKENDS = ("local", "kubernetes")


def create(name: str, *, cache_dir: Path, resources: Resources, run_id: str = "adhoc",
           kubernetes: KubernetesSettings | None = None) -> Backend:
    """The named backend; ``kubernetes`` carries that backend's settings."""
    if name == "local":
        return LocalBackend(cache_dir, resources, run_id)
    if name == "kubernetes":
        # Imported here: the kubernetes client is slow to import and local runs need none of it.
        from sandbench.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(kubernetes or KubernetesSettings(), resources, run_id, cache_dir)
    raise BackendError(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")


__all__ = ["Availability", "BACKENDS", "Backend", "BackendError", "create"]
