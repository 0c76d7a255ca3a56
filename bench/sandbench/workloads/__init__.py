"""The workload registry: workloads by name. Adding one never touches a runtime."""

from __future__ import annotations

from sandbench.errors import BadInput
from sandbench.workloads.base import Params, ParseError, Workload
from sandbench.workloads.density import Density
from sandbench.workloads.footprint import Footprint
from sandbench.workloads.io import Io
from sandbench.workloads.net import Net
from sandbench.workloads.start import Start
from sandbench.workloads.syscall import Syscall


class UnknownWorkload(BadInput, LookupError):
    pass


def _registry(*workloads: Workload) -> dict[str, Workload]:
    known: dict[str, Workload] = {}
    for workload in workloads:
        if workload.name in known:
            raise ValueError(f"workload {workload.name!r} is registered twice")
        known[workload.name] = workload
    return known


WORKLOADS = _registry(Start(), Syscall(), Io(), Footprint(), Density(), Net())


def get(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise UnknownWorkload(
            f"unknown workload {name!r}; known workloads: {', '.join(WORKLOADS)}") from None


__all__ = ["WORKLOADS", "Params", "ParseError", "UnknownWorkload", "Workload", "get"]
