"""The backend registry: where sandboxes run, by name. Adding one never touches a workload."""

from __future__ import annotations

from pathlib import Path

from sandbench.backends.base import Availability, Backend, BackendError
from sandbench.backends.local import LocalBackend
from sandbench.spec import Resources

BACKENDS = ("local",)


def create(name: str, *, cache_dir: Path, resources: Resources, run_id: str = "adhoc",
           settings: dict[str, str] | None = None) -> Backend:
    """The named backend; ``settings`` carries backend-specific options (a kubeconfig...)."""
    if name == "local":
        return LocalBackend(cache_dir, resources, run_id)
    raise BackendError(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")


__all__ = ["Availability", "BACKENDS", "Backend", "BackendError", "create"]
