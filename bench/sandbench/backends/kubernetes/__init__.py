"""The kubernetes backend: each runtime a RuntimeClass, each sandbox a pod (backend.py).

api.py is the client and the one place the client's errors are read; lifecycle.py and
watcher.py follow one pod; clock.py measures a runtime's clock offset; kubevirt/ runs the
runtimes of kind kubevirt as VMIs in the same namespace.
"""

from __future__ import annotations

from sandbench.backends.kubernetes.backend import KubernetesBackend

__all__ = ["KubernetesBackend"]
