"""The one workload image every sandbox runs: Debian's fio plus the static probe."""

from __future__ import annotations

from sandbench.image.build import WorkloadImage, build_image, load_cached
from sandbench.image.inputs import input_hash
from sandbench.image.rootfs import ImageBuildError

__all__ = ["ImageBuildError", "WorkloadImage", "build_image", "input_hash", "load_cached"]
