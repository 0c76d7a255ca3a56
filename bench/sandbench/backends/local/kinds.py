"""The local drivers by kind, and runtimeclasses/local.yaml read into their typed entries.

A runtime's ``kind`` in local.yaml is a key of KINDS; the kind's entry model says which other
keys it takes. A new kind of local sandbox is a driver module with its Kind and one entry here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from sandbench.backends.base import BackendInputError
from sandbench.backends.local.driver import Kind, RuntimeEntry
from sandbench.backends.local.native import Process
from sandbench.backends.local.oci import Oci
from sandbench.backends.local.qemu import Vm
from sandbench.errors import quoted
from sandbench.resources import runtimeclasses_dir
from sandbench.spec import validation_message

KINDS: dict[str, Kind[Any]] = {"process": Process(), "oci": Oci(), "vm": Vm()}

SOURCE = "runtimeclasses/local.yaml"


class RuntimeClassError(BackendInputError):
    """runtimeclasses/local.yaml that cannot be used; the message names the bad value."""


class _LocalFile(BaseModel):
    """The file's shape; each entry is checked against its kind's model after."""

    model_config = ConfigDict(extra="forbid", strict=True)
    runtimes: dict[str, dict[str, Any]]


def runtime_table(path: Path | None = None) -> dict[str, RuntimeEntry]:
    """runtimeclasses/local.yaml (or ``path``), the only place local runtime names are written,
    each runtime's entry checked by its kind."""
    path = path or runtimeclasses_dir() / "local.yaml"
    source = SOURCE if path == runtimeclasses_dir() / "local.yaml" else str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RuntimeClassError(f"cannot read {source}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RuntimeClassError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    try:
        runtimes = _LocalFile.model_validate(data).runtimes
    except ValidationError as exc:
        raise RuntimeClassError(validation_message(exc, source)) from exc
    return {name: _entry(name, raw, source) for name, raw in runtimes.items()}


def _entry(name: str, raw: dict[str, Any], source: str) -> RuntimeEntry:
    kind_name = raw.get("kind")
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise RuntimeClassError(f"{source}: runtimes.{name}.kind: {quoted(kind_name)} is not a "
                                f"kind of local driver; known kinds: {', '.join(KINDS)}")
    try:
        return kind.entry_model.model_validate(raw)
    except ValidationError as exc:
        raise RuntimeClassError(validation_message(exc, source, ("runtimes", name))) from exc
