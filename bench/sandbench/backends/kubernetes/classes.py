"""Runtimes of the kubernetes backend: the RuntimeClass manifests in runtimeclasses/kubernetes.

A runtime's name is its RuntimeClass's metadata.name; nothing else in sandbench spells it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sandbench.resources import runtimeclasses_dir


def manifests_dir() -> Path:
    return runtimeclasses_dir() / "kubernetes"


def manifests() -> dict[str, dict[str, Any]]:
    """RuntimeClass manifests by name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(manifests_dir().glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "RuntimeClass":
                found[document["metadata"]["name"]] = document
    return found


def describe(manifest: dict[str, Any]) -> str:
    handler = manifest.get("handler", "?")
    overhead = (manifest.get("overhead") or {}).get("podFixed")
    text = f"RuntimeClass with handler {handler}"
    return text + (f", overhead {overhead}" if overhead else "")
