"""`sandbench runtimeclasses apply`: create or update the RuntimeClasses a user asks for."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from sandbench.backends.kubernetes.api import Apis, api_message, is_conflict
from sandbench.backends.kubernetes.classes import manifests
from sandbench.errors import BadInput


class ApplyError(BadInput):
    pass


def apply(apis: Apis, names: list[str]) -> list[str]:
    """Create each named RuntimeClass, or replace it when it exists; returns what was done."""
    known = manifests()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ApplyError(f"unknown runtime {unknown[0]!r}; known runtimes: {', '.join(known)}")
    done = []
    for name in names:
        body: Any = known[name]
        try:
            apis.node.create_runtime_class(body)
            done.append(f"created RuntimeClass {name}")
        except ApiException as exc:
            if not is_conflict(exc):  # it exists: update it in place
                raise ApplyError(f"cannot create RuntimeClass {name!r}: {api_message(exc)}") from exc
            current = apis.node.read_runtime_class(name)
            version = current.metadata.resource_version if current.metadata else None
            updated: Any = {**body, "metadata": {**body["metadata"], "resourceVersion": version}}
            apis.node.replace_runtime_class(name, updated)
            done.append(f"updated RuntimeClass {name}")
    return done
