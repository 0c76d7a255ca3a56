"""`sandbench doctor`: which runtimes work here, and for each one that does not, why and how
to fix it.

local.py checks the local backend; cluster.py and kubevirt.py a
Kubernetes cluster; ssh.py reads node facts over SSH. Every check is a backends.Finding, the
type Backend.check answers with, so a runtime's availability and doctor's other findings are
shown alike. Doctor asks backends only through their public methods, and proves a runtime
works with runner.trial, the runner's own way to run one sandbox.
"""

from __future__ import annotations

from sandbench.backends import Finding
from sandbench.doctor.local import diagnose

__all__ = ["Finding", "diagnose"]
