"""Where the non-Python files sandbench ships live: workloads/ and runtimeclasses/.

They sit at the repository root, beside bench/, so that they read as the project's own
inputs rather than package internals. An installed wheel cannot reach the repository, so the
build force-includes both trees as ``sandbench/_data/``; a checkout has no ``_data`` and uses
the repository copy. The wheel copy wins so that an installed sandbench never picks up a
stray checkout by accident.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The repository root when running from a checkout: bench/sandbench/resources.py -> root.
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _data_dir(name: str) -> Path:
    packaged = resources.files("sandbench") / "_data" / name
    # files() of a regular (non-zip) install is a real directory; a zipped one is not
    # supported because mmdebstrap, gcc and runtimes need real paths.
    if packaged.is_dir():
        return Path(str(packaged))
    fallback = _REPO_ROOT / name
    if not fallback.is_dir():
        raise FileNotFoundError(
            f"sandbench data directory {name!r} not found: looked in {str(packaged)!r} "
            f"(installed wheel) and {str(fallback)!r} (repository checkout)"
        )
    return fallback


def workloads_dir() -> Path:
    """The workloads/ tree: the probe's C source and the fio job file."""
    return _data_dir("workloads")


def runtimeclasses_dir() -> Path:
    """The runtimeclasses/ tree: the one place runtime names are declared."""
    return _data_dir("runtimeclasses")
