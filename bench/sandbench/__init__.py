"""sandbench: run identical workloads under different sandboxes and show what isolation costs."""

from __future__ import annotations

__version__ = "0.1.0"
